"""A Detector backed by an ONNX model described in the manifest.

One ``evaluate`` call is one ``session.run``: every window handed in (typically one per
PMU at the same instant) is scored in a single batch, because the fixed cost of a run
dominates at small batch sizes.
"""

from __future__ import annotations

__all__ = ["DetectorStats", "OnnxDetector"]

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.core import Score, ScoreBatch, Severity, Window
from edgepipe.inference.loader import LoadedModel, ModelStore
from edgepipe.pipeline.features import window_assets
from edgepipe.pipeline.site import uses_site_context

F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class DetectorStats:
    """Counters for metrics: windows scored, and windows refused for missing features."""

    scored: int = 0
    skipped_nan: int = 0
    runs: int = 0


class OnnxDetector:
    """Score PMU windows with an ONNX model; thresholds and classes come from the manifest
    unless ``thresholds`` (the site's ``[models.thresholds.<name>]``) replaces the former.

    ``features`` is the pipeline's matrix (one row per window, columns in
    ``FEATURE_NAMES`` order, then ``CONTEXT_NAMES`` when the model uses site context);
    the model's columns are picked by name through the manifest. A window with a NaN or
    infinite value in any feature the model uses is **not scored** and gets no ``Score``
    from this detector: the model never saw such input in training and its output would
    be meaningless. Missing data is the data-quality detector's job (design.md
    "Quality"); ``stats.skipped_nan`` counts these windows. An alert already raised
    stays raised until a scored window clears it.

    Pass a ``ModelStore`` to follow its reloads: the current model is read on every call.
    """

    def __init__(
        self,
        model: LoadedModel | ModelStore,
        alert_kind: str | None = None,
        severity: Severity | None = None,
        *,
        name: str | None = None,
        top_k: int = 3,
        thresholds: tuple[float, float] | None = None,
    ) -> None:
        self._source = model
        # (raise, clear) of the site's config in place of the manifest's, for every model
        # the store swaps in
        self.thresholds = thresholds
        first = self._model()
        self.alert_kind = alert_kind or first.spec.alert_kind
        self.severity = severity or first.spec.severity
        self.name = name or f"onnx:{first.spec.name}"
        self.top_k = top_k
        self.stats = DetectorStats()
        self._explained: tuple[LoadedModel, F64, F64, F64] | None = None

    def _model(self) -> LoadedModel:
        src = self._source
        return src.current if isinstance(src, ModelStore) else src

    @property
    def model(self) -> LoadedModel:
        """The model the next ``evaluate`` will use."""
        return self._model()

    @property
    def uses_site_context(self) -> bool:
        """Whether the current model reads site context columns (``SiteFeatures``)."""
        return uses_site_context(self._model().spec.features)

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]:
        """One Score per window with finite model features, in the order of ``windows``."""
        return self.evaluate_batch(windows, features).scores()

    def evaluate_batch(self, windows: Sequence[Window], features: np.ndarray) -> ScoreBatch:
        """``evaluate`` in columns: one model run, a ``Score`` only for rows asked for."""
        if features.shape[0] != len(windows):
            raise ValueError(f"{len(windows)} windows but {features.shape[0]} feature rows")
        model = self._model()
        if not windows:
            return self._batch(model, [], np.zeros(0, dtype=np.bool_), _no_row)
        x = features.take(model.columns, axis=1).astype(np.float32)  # take: cheaper than [:, idx]
        # One reduction for the common case: a finite sum means every value is finite (a
        # NaN or an infinity makes the sum so); a sum that overflows only takes the row
        # by row check below.
        if math.isfinite(x.sum()):
            index: Sequence[int] = range(len(windows))
            x_ok = x
        else:
            ok = np.flatnonzero(np.isfinite(x).all(axis=1))
            index, x_ok = ok.tolist(), x[ok]
        n_ok = len(index)
        self.stats.skipped_nan += len(windows) - n_ok
        if n_ok == 0:
            return self._batch(model, [], np.zeros(0, dtype=np.bool_), _no_row)
        out = model.run_raw(x_ok)  # float32: a float64 copy would cost a numpy call
        self.stats.runs += 1
        self.stats.scored += n_ok
        values = model.scores(out)
        # a float64 threshold makes numpy compare in float64, as ``Score.active`` does
        # (against a Python float it would round the threshold to float32)
        active = values >= np.float64(self._limits(model)[0])
        assets = (
            window_assets(windows)
            if isinstance(index, range)
            else [windows[k].info.asset for k in index]
        )

        def make(r: int) -> Score:
            # Built for the rows that raise (and their evidence explained) only: a quiet
            # window costs the model run and one comparison. Python lists per row:
            # per-element numpy access costs more than the model.
            w, xr = windows[index[r]], x_ok[r].tolist()
            t = self._top_features(model, x_ok[r : r + 1])[0].tolist()
            value, o = float(values[r]), out[r].tolist()
            return self._score(model, w, value=value, out=o, top=t, x=xr)

        return self._batch(model, assets, active, make)

    def _limits(self, model: LoadedModel) -> tuple[float, float]:
        return self.thresholds or (model.spec.raise_at, model.spec.clear_at)

    def _batch(
        self,
        model: LoadedModel,
        assets: Sequence[str],
        active: npt.NDArray[np.bool_],
        make: Callable[[int], Score],
    ) -> ScoreBatch:
        return ScoreBatch(self.alert_kind, model.spec.ref, assets, active, make)

    def _top_features(self, model: LoadedModel, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        """Indices of the ``top_k`` model features that stand out most, per row."""
        k = min(self.top_k, x.shape[1])
        explain = model.spec.explain
        if explain is None or k == 0:
            return np.tile(np.arange(k), (x.shape[0], 1))
        if self._explained is None or self._explained[0] is not model:
            # Tuples in the spec, arrays here: converted once per model, not per call.
            self._explained = (
                model,
                np.asarray(explain.mean),
                1.0 / np.asarray(explain.scale),
                np.asarray(explain.importance),
            )
        _, mean, inv_scale, importance = self._explained
        # importance * |z|: how unusual the value is, weighted by how much the model uses it.
        weight = np.abs(x - mean) * (inv_scale * importance)
        return np.argsort(-weight, axis=1, kind="stable")[:, :k]

    def _score(
        self,
        model: LoadedModel,
        w: Window,
        *,
        value: float,
        out: list[float],
        top: list[int],
        x: list[float],
    ) -> Score:
        spec = model.spec
        raise_at, clear_at = self._limits(model)
        evidence: dict[str, Any] = {
            "top_features": [{"name": spec.features[j], "value": round(x[j], 6)} for j in top],
            "thresholds": {"raise": raise_at, "clear": clear_at},
        }
        if spec.classes:
            evidence["probabilities"] = {
                c: round(p, 6) for c, p in zip(spec.classes, out, strict=False)
            }
        return Score(
            stream=w.info.stream,
            asset=w.info.asset,
            kind=self.alert_kind,
            severity=self.severity,
            score=value,
            active=value >= raise_at,
            clear=value <= clear_at,
            model=spec.ref,
            event_time_ns=w.end_ns,
            window_start_ns=w.start_ns,
            window_end_ns=w.end_ns,
            evidence=evidence,
        )


def _no_row(k: int) -> Score:
    raise IndexError(k)
