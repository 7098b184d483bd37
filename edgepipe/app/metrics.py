"""Prometheus metrics of the running service, read from the stages' own counters at
scrape time (nothing is added to the per-frame path)."""

from __future__ import annotations

__all__ = ["ServiceCollector", "render"]

import dataclasses
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from edgepipe.app.timings import BUCKETS_S

if TYPE_CHECKING:
    from edgepipe.app.service import Service


class ServiceCollector:
    """A prometheus-client collector over one ``Service``."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        yield from self._sources()
        yield from self._pipeline()
        yield from self._buffers()
        yield from self._models()
        yield from self._delivery()

    def _sources(self) -> Iterator[Metric]:
        sup = self._service.supervisor
        counters: dict[str, CounterMetricFamily] = {}
        for name, source in sup.sources.items():
            for field, value in _numbers(getattr(source, "stats", None)).items():
                fam = counters.get(field)
                if fam is None:
                    fam = counters[field] = CounterMetricFamily(
                        f"edgepipe_source_{field}", f"Source counter {field}", labels=["source"]
                    )
                fam.add_metric([name], value)
        yield from counters.values()
        crashes = CounterMetricFamily(
            "edgepipe_source_crashes", "Source tasks restarted after an error", labels=["source"]
        )
        for name in sup.sources:
            crashes.add_metric([name], sup.crashes.get(name, 0))
        yield crashes
        state = GaugeMetricFamily(
            "edgepipe_stream_up",
            "1 while the stream delivers data, 0 when quiet or disconnected",
            labels=["stream"],
        )
        for stream, status in self._service.pipeline.stream_state.items():
            state.add_metric([stream], 0.0 if status.kind.value in _DOWN else 1.0)
        yield state
        age = GaugeMetricFamily(
            "edgepipe_stream_staleness_seconds", "Seconds since the stream's last data",
            labels=["stream"],
        )  # fmt: skip
        now = time.monotonic()
        for stream, last in self._service.pipeline.last_data.items():
            age.add_metric([stream], now - last)
        yield age

    def _pipeline(self) -> Iterator[Metric]:
        stats = self._service.pipeline.stats
        for field in ("batches", "rows", "windows", "evaluations"):
            yield CounterMetricFamily(
                f"edgepipe_pipeline_{field}",
                f"Pipeline {field} processed",
                value=getattr(stats, field),
            )
        alerts = CounterMetricFamily("edgepipe_alerts", "Alerts emitted", labels=["kind", "state"])
        for (kind, state), n in sorted(stats.alerts_by_kind.items()):
            alerts.add_metric([kind, state], n)
        yield alerts
        yield self._stages()
        yield GaugeMetricFamily(
            "edgepipe_pipeline_stalled_seconds",
            "Age of the oldest window waiting for evaluation",
            value=self._service.pipeline.stalled_for(),
        )
        yield GaugeMetricFamily(
            "edgepipe_site_held_windows",
            "PMU windows waiting for the site's other PMUs (a model reads site context)",
            value=self._service.pipeline.site_held,
        )
        yield CounterMetricFamily(
            "edgepipe_site_released_late",
            "Moments scored without a PMU that had not delivered them within site_hold_ms",
            value=self._service.pipeline.site_released_late,
        )

    def _stages(self) -> Metric:
        timings = self._service.pipeline.router.timings
        hist = HistogramMetricFamily(
            "edgepipe_stage_seconds",
            "Latency per stage: flush (all of it), features:<route>, detector:<name> "
            "(model inference for ONNX detectors), alerts",
            labels=["stage"],
        )
        bounds = [str(b) for b in BUCKETS_S] + ["+Inf"]
        for stage, counts in sorted(timings.counts.items()):
            cumulative = list(itertools.accumulate(counts))
            hist.add_metric(
                [stage], list(zip(bounds, cumulative, strict=True)), timings.sums[stage]
            )
        return hist

    def _buffers(self) -> Iterator[Metric]:
        used = GaugeMetricFamily("edgepipe_ring_used", "Rows held", labels=["stream"])
        cap = GaugeMetricFamily("edgepipe_ring_capacity", "Ring capacity", labels=["stream"])
        dropped = CounterMetricFamily(
            "edgepipe_ring_dropped", "Rows lost (overwritten or out of order)", labels=["stream"]
        )
        for stream, ws in self._service.pipeline.windows.statistics().items():
            used.add_metric([stream], ws.ring.used)
            cap.add_metric([stream], ws.ring.capacity)
            dropped.add_metric([stream], ws.ring.dropped)
        yield from (used, cap, dropped)

    def _models(self) -> Iterator[Metric]:
        scored = CounterMetricFamily(
            "edgepipe_model_windows_scored", "Windows scored by a model", labels=["model"]
        )
        skipped = CounterMetricFamily(
            "edgepipe_model_windows_skipped", "Windows a model refused (NaN features)",
            labels=["model"],
        )  # fmt: skip
        for det in self._service.pipeline.detectors:
            stats = _numbers(getattr(det, "stats", None))
            if "scored" in stats:
                scored.add_metric([det.name], stats["scored"])
                skipped.add_metric([det.name], stats.get("skipped_nan", 0))
        yield from (scored, skipped)

    def _delivery(self) -> Iterator[Metric]:
        delivery = self._service.relay
        yield GaugeMetricFamily(
            "edgepipe_outbox_depth", "Alerts and health messages not yet acknowledged",
            value=delivery.pending,
        )  # fmt: skip
        forwarder = getattr(delivery, "forwarder", None)
        if forwarder is None:
            return
        stats = forwarder.statistics()
        for field in ("submitted", "committed", "delivered", "failures", "rewinds", "ack_timeouts"):
            if field in stats:
                yield CounterMetricFamily(
                    f"edgepipe_outbox_{field}", f"Outbox messages {field}", value=stats[field]
                )
        dropped = CounterMetricFamily(
            "edgepipe_outbox_dropped", "Messages dropped by the outbox bounds", labels=["priority"]
        )
        for priority, n in sorted(stats.get("dropped", {}).items()):
            dropped.add_metric([str(priority)], n)
        yield dropped
        oldest = forwarder_oldest_age_s(forwarder)
        if oldest is not None:
            yield GaugeMetricFamily(
                "edgepipe_outbox_oldest_age_seconds",
                "Age of the oldest undelivered message (0 when empty)",
                value=oldest,
            )
        up = GaugeMetricFamily(
            "edgepipe_destination_up", "1 while connected to the broker", labels=["destination"]
        )
        active = GaugeMetricFamily(
            "edgepipe_destination_active", "1 for the destination in use", labels=["destination"]
        )
        sent = CounterMetricFamily(
            "edgepipe_destination_published", "Messages acknowledged by the broker",
            labels=["destination"],
        )  # fmt: skip
        for dest in forwarder.destinations:
            pub = dest.publisher
            up.add_metric([dest.name], 1.0 if pub.connected else 0.0)
            active.add_metric([dest.name], 1.0 if stats.get("active") == dest.name else 0.0)
            sent.add_metric([dest.name], getattr(pub, "published", 0))
        yield from (up, active, sent)


def forwarder_oldest_age_s(forwarder: Any) -> float | None:
    """From the forwarder's last status round (no database access on the scrape path)."""
    status = getattr(forwarder, "last_status", None)
    if isinstance(status, dict) and "oldest_age_s" in status:
        return float(status["oldest_age_s"])
    return None


_DOWN = frozenset({"quiet", "disconnected"})


def _numbers(stats: Any) -> dict[str, float]:
    if stats is None or not dataclasses.is_dataclass(stats):
        return {}
    out = {}
    for f in dataclasses.fields(stats):
        value = getattr(stats, f.name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f.name] = float(value)
    return out


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
