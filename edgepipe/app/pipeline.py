"""Wiring of the stages: SampleBatch -> ring/window -> features -> detectors -> alerts.

``Pipeline`` is the ``Sink`` every source reports to. Windows that become due in one
event-loop turn are evaluated together, so the features and the ONNX models run batched
across PMUs. Nothing here reads the wall clock: alerts depend on event time only, so a
replay on a virtual clock yields the alerts of the live run.

A flush hands the alert engine its scores in event-time order (window end, stream,
detector; ``AlertEngine.process_flush``), not detector by detector and stream by
stream: two streams of one asset share its alert keys, and a live read (a few frames of
every PMU of a PDC) and a replay tick (a second or more of every stream) must lead the
engine through the same sequence. No reorder buffer waits for late streams, with one
exception: while a model reads site context (``edgepipe/pipeline/site.py``), each PMU
window waits in a ``SiteHold`` until every PMU of the site has delivered that moment (at
most ``[windows] site_hold_ms`` of event time), so that the moment is scored whole, live
and in replay alike unless a PMU was later than that (``site_released_late``). Status
alerts (QUIET,
RESUMED) go out with the next flush, merged by time among the window alerts, so the
output order, too, is the same for any tick.
"""

from __future__ import annotations

__all__ = ["Pipeline", "PipelineStats", "build_detectors"]

import asyncio
import heapq
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np
import structlog

from edgepipe.app.config import AppConfig
from edgepipe.app.routing import Router
from edgepipe.app.site_stage import SiteStage
from edgepipe.core import (
    Alert,
    SampleBatch,
    SourceStatus,
    StatusKind,
    StreamInfo,
    Window,
)
from edgepipe.core.errors import ModelError
from edgepipe.core.source import Sink
from edgepipe.inference import ModelStore, OnnxDetector
from edgepipe.pipeline import AlertEngine, Detector, WindowStage, build_rules

log = structlog.get_logger("edgepipe.pipeline")

AlertCallback = Callable[[Alert], None]


@dataclass(slots=True)
class PipelineStats:
    batches: int = 0
    rows: int = 0
    windows: int = 0
    evaluations: int = 0  # flushes: one feature/model pass over all due windows
    alerts: int = 0
    alerts_by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, state)


def build_detectors(config: AppConfig) -> tuple[list[Detector], list[ModelStore]]:
    """The rules of ``[rules]`` plus one ONNX detector per enabled model.

    Raises ``ModelError`` when an enabled model fails its checks at start.
    """
    detectors: list[Detector] = build_rules(config.rules)
    stores = [ModelStore(config.models.path, name) for name in config.models.enabled]
    by_kind: dict[str, str] = {}
    for s in stores:  # two models behind one alert key would raise and clear each other's
        kind = s.current.spec.alert_kind
        if kind in by_kind:
            raise ModelError(
                f"models.enabled: {by_kind[kind]} and {s.name} both raise {kind}; enable one"
            )
        by_kind[kind] = s.name
    limits = config.models.thresholds
    detectors.extend(OnnxDetector(s, thresholds=limits.get(s.name)) for s in stores)
    return detectors, stores


class Pipeline(Sink):
    def __init__(
        self, config: AppConfig, detectors: Sequence[Detector], on_alert: AlertCallback
    ) -> None:
        self._windows = WindowStage(config.windows)
        self._windows_config = config.windows
        self._detectors = list(detectors)
        # PMU windows go to ``detectors``; transformer and DGA windows to asset health.
        self.router = Router(config.models.path, config.health)
        self._engine = AlertEngine(config.site, config.alerts)
        self._on_alert = on_alert
        self._assets: dict[str, str] = {}
        self._infos: dict[str, StreamInfo] = {}
        self.stream_state: dict[str, SourceStatus] = {}  # last status per stream
        self.last_data: dict[str, float] = {}  # monotonic s of each stream's last batch
        self._pending: list[Window] = []
        self._held: list[Alert] = []  # status alerts, emitted in time order by the flush
        # (stream, window end) -> event time of the row that completed the window, for
        # the pending windows whose own last frame never arrived (see ``_note_late``)
        self._late: dict[tuple[str, int], int] = {}
        self._pending_since = 0.0  # monotonic s of the oldest unevaluated window
        self._flush_handle: asyncio.Handle | None = None
        self.stats = PipelineStats()
        # PMU windows wait here for the site's other PMUs while a model uses site context
        self._site = SiteStage(self.router, config.windows.site_hold_ms, self._detectors)

    @property
    def engine(self) -> AlertEngine:
        return self._engine

    @property
    def windows(self) -> WindowStage:
        return self._windows

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    def reconfigure(self, config: AppConfig, detectors: Sequence[Detector]) -> None:
        """Take a reloaded config: new detectors and alert settings at once; raised alerts
        keep their state. Only a change of ``[windows]`` restarts the rings."""
        windows_changed = config.windows != self._windows_config
        if windows_changed:  # new rings and hold: what the hold has now goes out first
            self._take(self._site.drain())
        self.flush()
        self._detectors = list(detectors)  # a change of context use: at the next flush
        self._engine.config = config.alerts
        self.router.configure(config.health)
        self._windows_config = config.windows
        if windows_changed:
            self._windows = WindowStage(config.windows)
            self._site.restart(config.windows.site_hold_ms)
            for info in self._infos.values():
                self._windows.on_stream(info)

    def stalled_for(self) -> float:
        """Seconds the oldest due window has waited for evaluation (0 when none waits)."""
        return time.monotonic() - self._pending_since if self._pending else 0.0

    def on_stream(self, info: StreamInfo) -> None:
        self._assets[info.stream] = info.asset
        self._infos[info.stream] = info
        self._windows.on_stream(info)
        self._site.join(info)
        log.info(
            "stream_configured",
            stream=info.stream,
            source=info.source,
            asset=info.asset,
            idcode=info.idcode,
            channels=len(info.channels),
            rate_hz=info.rate_hz,
        )

    def on_batch(self, batch: SampleBatch) -> None:
        self.last_data[batch.stream] = time.monotonic()
        self.stats.batches += 1
        self.stats.rows += len(batch)
        due = self._windows.on_batch(batch)
        if not due:
            return
        self._note_late(batch, due)
        if self._site.takes(due[0]):
            # Released by the flush, once per event-loop turn: after every PMU frame of a
            # PDC read, or every stream's rows of a replay tick, have been added.
            self._site.add(due)
            self._schedule_flush()
            return
        self._take(due)

    def _take(self, due: list[Window]) -> None:
        if not due:
            return
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(due)
        self._schedule_flush()

    @property
    def site_held(self) -> int:
        """PMU windows waiting for the site's other PMUs (site context)."""
        return self._site.held

    @property
    def site_released_late(self) -> int:
        """Moments scored without a PMU that had not delivered them within the hold."""
        return self._site.released_late

    def finish(self) -> None:
        """Evaluate everything, the windows held for site context too (stop, reload)."""
        self._take(self._site.drain())
        self.flush()

    def _note_late(self, batch: SampleBatch, due: list[Window]) -> None:
        """Windows of ``batch`` that ended on a frame that never arrived became due at a
        later row; the flush orders them by that row's time, which is where a live read
        and a replay tick of any size both see them (``AlertEngine.process_flush``)."""
        t = batch.times_ns
        if len(t) == 1:
            t0 = int(t[0])
            for w in due:
                if w.end_ns != t0:
                    self._late[(w.info.stream, w.end_ns)] = t0
            return
        horizon = np.maximum.accumulate(t)
        ends = np.fromiter((w.end_ns for w in due), np.int64, len(due))
        at = horizon[np.minimum(np.searchsorted(horizon, ends), len(t) - 1)]
        for k in np.flatnonzero(at != ends).tolist():
            self._late[(batch.stream, int(ends[k]))] = int(at[k])

    def on_status(self, status: SourceStatus) -> None:
        self.stream_state[status.stream or status.source] = status
        level = log.warning if status.kind in _BAD_STATUS else log.info
        level(
            f"source_{status.kind.value}",
            source=status.source,
            stream=status.stream,
            detail=status.detail,
        )
        if status.kind in _BAD_STATUS and status.stream:
            self._site.leave(status.stream)  # the site's other PMUs no longer wait for it
            self._schedule_flush()
        elif status.stream in self._infos:
            self._site.join(self._infos[status.stream])
        alerts = self._engine.stream_status(status, self._assets.get(status.stream, ""))
        if alerts:  # out with the flush, in event-time order among the window alerts
            self._held.extend(alerts)
            self._schedule_flush()

    def flush(self) -> None:
        """Evaluate every window that is due now, in one batch across streams."""
        self._flush_handle = None
        # A reloaded model may start or stop reading site context (same name, new spec).
        self._pending.extend(self._site.sync(self._detectors))
        self._pending.extend(self._site.release())
        held, self._held = self._held, []
        held.sort(key=_ALERT_TIME)  # stable: statuses of one time in their arrival order
        if not self._pending:
            self._emit(held)
            return
        windows, self._pending = self._pending, []
        late, self._late = self._late, {}
        if self._site.held:  # the late times of windows still held stay for their flush
            keep = [k for k in late if self._site.holds(*k)]
            self._late = {k: late.pop(k) for k in keep}
        self.stats.windows += len(windows)
        self.stats.evaluations += 1
        timings = self.router.timings
        with timings.time("flush"):
            items = self.router.evaluate_batches(self._detectors, windows, site=self._site.on)
            with timings.time("alerts"):
                # All scores of the flush in event-time order, not detector by detector
                # and stream by stream: two streams of one asset share its alert keys.
                alerts = self._engine.process_flush(items, late)
            self._emit(list(heapq.merge(alerts, held, key=_ALERT_TIME)) if held else alerts)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop: a synchronous caller (replay, tests) flushes at once
            return
        self._flush_handle = loop.call_soon(self.flush)

    def _emit(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.stats.alerts += 1
            self.stats.alerts_by_kind[(alert.kind, alert.state.value)] += 1
            log.info(
                "alert",
                id=alert.id,
                state=alert.state.value,
                kind=alert.kind,
                asset=alert.asset,
                stream=alert.stream,
                severity=alert.severity.value,
                event_time_ns=alert.event_time_ns,
            )
            self._on_alert(alert)


_BAD_STATUS = frozenset({StatusKind.QUIET, StatusKind.DISCONNECTED})


# The order of a flush's alerts: ``process_flush`` emits by window end; a status alert's
# window ends at the status's time.
_ALERT_TIME = attrgetter("window_end_ns")
