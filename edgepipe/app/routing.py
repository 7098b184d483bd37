"""Windows to detectors by stream kind, and the periodic asset health index.

A table maps ``StreamInfo.kind`` to a route: the feature function and the detectors that
judge such windows. PMU streams (kind ``""`` or ``"pmu"``) keep the pipeline's own
detectors (rules + PMU models) and ``pmu_features``; ``"transformer"`` streams go to
the thermal detector and the transformer anomaly model; ``"dga"`` streams to the DGA
detector. A window of an unknown kind is counted and judged by nobody, never by the
wrong model.

The health index of each asset (``edgepipe.pipeline.health.index``) is computed from
what the detectors saw last and handed to ``on_health`` at most once per
``[health] publish_interval_s`` of event time per asset; the ``[health]`` section also
gives the index weights, the IEC 60599 typical gas levels and rates, and the default
transformer limits (``HealthConfig``), re-taken on reload by ``configure``.
"""

from __future__ import annotations

__all__ = ["HEALTH_MODEL", "ROUTE_OF_KIND", "Router", "needs_site_context"]

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import structlog

from edgepipe.app.timings import StageTimings
from edgepipe.core import Score, ScoreBatch, Window
from edgepipe.inference import ModelStore, OnnxDetector
from edgepipe.inference.manifest import read_manifest
from edgepipe.pipeline import Detector, SiteFeatures, pmu_features
from edgepipe.pipeline.detectors import BatchDetector
from edgepipe.pipeline.health import (
    TRANSFORMER_FEATURES,
    DgaDetector,
    HealthConfig,
    TransformerDetector,
    dga_features,
    health_index,
    transformer_features,
)

log = structlog.get_logger("edgepipe.pipeline")

#: The ONNX anomaly model of transformer windows, loaded when the manifest lists it.
HEALTH_MODEL = "transformer_anomaly"

#: Stream kind -> route name.
ROUTE_OF_KIND: dict[str, str] = {"": "pmu", "pmu": "pmu", "transformer": "transformer",
                                 "dga": "dga"}  # fmt: skip

HealthCallback = Callable[[str, Mapping[str, Any]], None]
Features = Callable[[Sequence[Window]], np.ndarray]
_NS = 1_000_000_000


def needs_site_context(detectors: Sequence[Detector]) -> bool:
    """Whether a PMU detector's current model reads site context columns."""
    return any(isinstance(d, OnnxDetector) and d.uses_site_context for d in detectors)


class Router:
    """Evaluate windows of any kind: each kind's features once, then its detectors."""

    def __init__(self, models_dir: Path | None = None, health: HealthConfig | None = None) -> None:
        self.transformer = TransformerDetector()
        self.dga = DgaDetector()
        self.anomaly_store = _anomaly_store(models_dir)
        self.anomaly = None if self.anomaly_store is None else OnnxDetector(self.anomaly_store)
        thermal: list[Detector] = [self.transformer]
        if self.anomaly is not None:
            thermal.append(self.anomaly)
        self.routes: dict[str, tuple[Features, list[Detector]]] = {
            "transformer": (transformer_features, thermal),
            "dga": (dga_features, [self.dga]),
        }
        self.on_health: HealthCallback | None = None
        self.health = HealthConfig()
        self.health_interval_ns = 0
        self.configure(health or HealthConfig())
        self.unrouted: Counter[str] = Counter()
        self.timings = StageTimings()
        # PMU features with site context, for a model that reads it (the pipeline sets
        # how long a scored moment is remembered for PMUs later than the site hold)
        self.site_features = SiteFeatures(keep_ns=_NS)
        self._published: dict[str, int] = {}
        self._anomaly_score: dict[str, float] = {}

    def configure(self, health: HealthConfig) -> None:
        """Take the ``[health]`` settings (at start and on reload); detector state stays."""
        self.health = health
        self.health_interval_ns = round(health.publish_interval_s * _NS)
        self.transformer.defaults = health.transformer
        self.dga.limits = health.gas_limits

    def evaluate(self, pmu: Sequence[Detector], windows: Sequence[Window]) -> list[Score]:
        """Scores of every window; PMU windows go to ``pmu`` (the pipeline's detectors)."""
        return [
            s
            for item in self.evaluate_batches(pmu, windows)
            for s in (item.scores() if isinstance(item, ScoreBatch) else item)
        ]

    def evaluate_batches(
        self, pmu: Sequence[Detector], windows: Sequence[Window], *, site: bool | None = None
    ) -> list[ScoreBatch | list[Score]]:
        """``evaluate`` per detector, in the same order, as columns where the detector
        can give them (``AlertEngine.process_flush`` then builds few ``Score`` records).
        ``site``: whether the PMU windows get site context (``needs_site_context(pmu)``
        when not given; the pipeline passes what its site stage already decided)."""
        groups: dict[str, list[Window]] = defaultdict(list)
        for w in windows:
            groups[ROUTE_OF_KIND.get(w.info.kind, "?")].append(w)
        items: list[ScoreBatch | list[Score]] = []
        for route, ws in groups.items():
            feats: Features
            dets: Sequence[Detector]
            if route == "pmu":
                if site is None:
                    site = needs_site_context(pmu)
                feats = self.site_features if site else pmu_features
                dets = pmu
            elif route in self.routes:
                feats, dets = self.routes[route]
            else:
                for w in ws:
                    if not self.unrouted[w.info.kind]:
                        log.warning("stream_kind_unrouted", stream=w.info.stream, kind=w.info.kind)
                    self.unrouted[w.info.kind] += 1
                continue
            with self.timings.time(f"features:{route}"):
                matrix = feats(ws)
            for det in dets:
                with self.timings.time(f"detector:{det.name}"):
                    if _columnar(det):
                        items.append(det.evaluate_batch(ws, matrix))
                    else:
                        items.append(det.evaluate(ws, matrix))
        self._health(windows, items)
        return items

    def _health(self, windows: Sequence[Window], items: Sequence[ScoreBatch | list[Score]]) -> None:
        for item in items:
            if self.anomaly is None:
                break
            if isinstance(item, ScoreBatch) and not item.model.startswith(HEALTH_MODEL):
                continue
            for s in item.scores() if isinstance(item, ScoreBatch) else item:
                if s.model.startswith(HEALTH_MODEL):
                    raise_at = max(self.anomaly.model.spec.raise_at, 1e-9)
                    self._anomaly_score[s.asset] = s.score / raise_at
        if self.on_health is None:
            return
        latest: dict[str, int] = {}
        for w in windows:
            if ROUTE_OF_KIND.get(w.info.kind) in self.routes:
                latest[w.info.asset] = max(latest.get(w.info.asset, 0), w.end_ns)
        for asset, t in latest.items():
            last = self._published.get(asset)
            if last is not None and t - last < self.health_interval_ns:
                continue
            hi = health_index(
                asset, t, thermal=self.transformer.latest.get(asset),
                dga=self.dga.latest.get(asset), anomaly=self._anomaly_score.get(asset),
                weights=self.health.weights,
            )  # fmt: skip
            if hi is None:
                continue
            self._published[asset] = t
            body = hi.to_dict() | {"time_ns": t}
            log.info("asset_health", asset=asset, index=round(hi.index, 1))
            self.on_health(asset, body)


_COLUMNAR: dict[type, bool] = {}


def _columnar(det: Detector) -> TypeGuard[BatchDetector]:
    """``isinstance(det, BatchDetector)``, cached per class: a runtime protocol check
    walks the class's attributes (tens of µs), and it ran once per detector per flush."""
    cls = type(det)
    known = _COLUMNAR.get(cls)
    if known is None:
        known = _COLUMNAR[cls] = isinstance(det, BatchDetector)
    return known


def _anomaly_store(models_dir: Path | None) -> ModelStore | None:
    """The transformer anomaly model when the manifest lists it; a listed but broken
    model raises ``ModelError`` at start, like every other model."""
    if models_dir is None or not (models_dir / "manifest.json").is_file():
        return None
    if HEALTH_MODEL not in read_manifest(models_dir):
        return None
    return ModelStore(models_dir, HEALTH_MODEL, known_features=TRANSFORMER_FEATURES)
