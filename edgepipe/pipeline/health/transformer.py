"""Transformer thermal detector: hot-spot limit, aging rate, cooling failure.

Windows of a ``kind = "transformer"`` stream carry (by channel name, from the device
profile): ``load_a``/``load_b``/``load_c`` phase currents in A (or ``load_pu``),
``ambient_c``, ``top_oil_c``, optionally ``winding_c`` (a measured hot spot, e.g. a
fibre-optic probe) and ``cooling_stage`` (0 = ONAN, 1 = ONAF, 2 = OFAF...). The stream's
``params`` give ``rated_current_a``, the thermal constants (``ThermalParams.from_params``)
and the limits below.

Unlike the PMU rules this detector has state: the IEEE C57.91 model integrates over
hours, far longer than a window, so it keeps one ``ThermalTrack`` per stream and feeds it
each row once (rows already seen in an overlapping window are skipped). The state
depends only on the rows in event-time order, so a replay reproduces the live verdicts.

- ``hot_spot`` (critical): hot spot above ``hot_spot_limit_c`` (default 140 C, the
  C57.91 Table 7 short-time emergency limit for 65 C rise insulation); clears 10 K below.
- ``aging_rate`` (warning): F_AA above ``aging_raise`` (default 2: the insulation ages
  twice as fast as at 110 C); clears below 1.
- ``cooling_failure`` (critical): measured top oil above the modelled one by more than
  ``residual_raise_k`` (default 5 K) over a whole window: the cooling does less than its
  stage says. Clears below half that.
"""

from __future__ import annotations

__all__ = ["ThermalTrack", "TransformerDetector", "transformer_features", "TRANSFORMER_FEATURES"]

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepipe.core import BAD_QUALITY, Score, Severity, Window
from edgepipe.pipeline.health.config import TRANSFORMER_DEFAULTS
from edgepipe.pipeline.health.thermal import (
    ThermalParams,
    ThermalState,
    aging_factor,
    loss_of_life_pct,
    steady_state,
    step,
)

_NS = 1_000_000_000
_BAD = int(BAD_QUALITY)

#: Features of a transformer window, for the ONNX anomaly model (order = its columns).
TRANSFORMER_FEATURES = (
    "load_pu_mean", "load_pu_max", "ambient_c_mean", "top_oil_c_mean", "top_oil_rise_k",
    "top_oil_slope_k_min", "winding_c_max", "cooling_stage_mean", "load_imbalance_pct",
)  # fmt: skip


def _col(w: Window, name: str) -> np.ndarray:
    try:
        return w.values[:, w.info.index(name)]
    except KeyError:
        return np.full(len(w), np.nan)


def load_pu(w: Window) -> np.ndarray:
    """Per-row load in per unit of ``rated_current_a``: the mean of the phase currents."""
    if "load_pu" in (c.name for c in w.info.channels):
        return _col(w, "load_pu")
    rated = w.info.param("rated_current_a", math.nan)
    phases = np.column_stack([_col(w, f"load_{p}") for p in "abc"])
    ok = np.isfinite(phases)
    n = ok.sum(axis=1)
    # The mean of the phases a row has (NaN for a row with none, without nanmean's warning).
    mean = np.where(ok, phases, 0.0).sum(axis=1) / np.maximum(n, 1)
    return np.where(n > 0, mean, np.nan) / rated


def transformer_features(windows: Sequence[Window]) -> np.ndarray:
    """One row of ``TRANSFORMER_FEATURES`` per window (NaN where a channel is missing)."""
    out = np.full((len(windows), len(TRANSFORMER_FEATURES)), np.nan)
    for i, w in enumerate(windows):
        good = (w.quality.astype(np.int64) & _BAD) == 0
        if not good.any():
            continue
        load = load_pu(w)[good]
        amb, oil = _col(w, "ambient_c")[good], _col(w, "top_oil_c")[good]
        minutes = (w.times_ns[good] - w.times_ns[good][0]) / 60e9
        minutes = minutes * w.info.param("time_scale", 1.0)
        slope = float(np.polyfit(minutes, oil, 1)[0]) if np.ptp(minutes) > 0 else 0.0
        phases = np.column_stack([_col(w, f"load_{p}")[good] for p in "abc"])
        winding = _col(w, "winding_c")[good]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_ph = phases.mean(axis=1)
            imb = np.abs(phases - mean_ph[:, None]).max(axis=1) / mean_ph * 100.0
        out[i] = (
            np.mean(load), np.max(load), np.mean(amb), np.mean(oil), np.mean(oil - amb), slope,
            np.max(winding), np.mean(_col(w, "cooling_stage")[good]), np.mean(imb),
        )  # fmt: skip
    return out


@dataclass(slots=True)
class ThermalTrack:
    """The model of one transformer, fed row by row in event-time order."""

    params: ThermalParams
    time_scale: float = 1.0
    state: ThermalState | None = None
    last_ns: int = 0
    last_inputs: tuple[float, float] = (0.0, 0.0)  # load pu, cooling stage
    aging_s: float = 0.0  # integral of F_AA dt, seconds (model time)
    elapsed_s: float = 0.0
    residuals: list[float] = field(default_factory=list)

    def feed(self, t_ns: int, load: float, stage: float, ambient: float, top_oil: float) -> float:
        """Advance to ``t_ns`` and return the modelled hot spot (C)."""
        if self.state is None:
            # Start from the measured top oil; the winding settles in minutes, so its
            # steady rise for the present load is a good start.
            self.state = ThermalState(top_oil - ambient, steady_state(self.params, load, stage).dh)
        else:
            dt = (t_ns - self.last_ns) / _NS * self.time_scale
            self.state = step(self.params, self.state, *self.last_inputs, dt)
            hot = self.state.hot_spot(ambient)
            self.aging_s += aging_factor(hot) * dt
            self.elapsed_s += dt
        self.last_ns, self.last_inputs = t_ns, (load, stage)
        return self.state.hot_spot(ambient)

    @property
    def f_eqa(self) -> float:
        return self.aging_s / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def loss_of_life_pct(self) -> float:
        return loss_of_life_pct(self.f_eqa, self.elapsed_s / 3600.0) if self.elapsed_s else 0.0


@dataclass(frozen=True, slots=True)
class _Row:
    hot_spot: float
    residual: float
    f_aa: float


class TransformerDetector:
    """Hot spot, aging rate and cooling failure for ``kind = "transformer"`` windows."""

    name = "health/transformer"

    def __init__(self, defaults: Mapping[str, float] = TRANSFORMER_DEFAULTS) -> None:
        self.defaults = defaults  # the [health] limits; a stream's params override them
        self.tracks: dict[str, ThermalTrack] = {}
        self.latest: dict[str, dict[str, float]] = {}  # asset -> factors for the health index

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]:
        scores: list[Score] = []
        for w in windows:
            rows = self._feed(w)
            if rows:
                scores.extend(self._scores(w, rows))
        return scores

    def _track(self, w: Window) -> ThermalTrack:
        track = self.tracks.get(w.info.stream)
        if track is None:
            params = ThermalParams.from_params(dict(w.info.params))
            track = ThermalTrack(params, w.info.param("time_scale", 1.0))
            self.tracks[w.info.stream] = track
        return track

    def _feed(self, w: Window) -> list[_Row]:
        track = self._track(w)
        load, stage = load_pu(w), _col(w, "cooling_stage")
        amb, oil, wind = _col(w, "ambient_c"), _col(w, "top_oil_c"), _col(w, "winding_c")
        stage = np.where(np.isfinite(stage), stage, 0.0)
        rows: list[_Row] = []
        for k in range(len(w)):
            t = int(w.times_ns[k])
            vals = (load[k], amb[k], oil[k])
            if int(w.quality[k]) & _BAD or not all(math.isfinite(v) for v in vals):
                continue
            if track.state is not None and t <= track.last_ns:
                continue  # seen in an earlier, overlapping window
            model_hot = track.feed(t, load[k], stage[k], amb[k], oil[k])
            assert track.state is not None
            hot = wind[k] if math.isfinite(wind[k]) else model_hot
            residual = oil[k] - track.state.top_oil(amb[k])
            rows.append(_Row(hot, residual, aging_factor(hot)))
        return rows

    def _scores(self, w: Window, rows: list[_Row]) -> list[Score]:
        p = w.info.param
        track = self.tracks[w.info.stream]
        hot = max(r.hot_spot for r in rows)
        f_aa = rows[-1].f_aa
        residual = float(np.mean([r.residual for r in rows]))
        keys = ("hot_spot_limit_c", "aging_raise", "residual_raise_k")
        limit, aging, res_k = (p(k, self.defaults[k]) for k in keys)
        self.latest[w.info.asset] = {
            "hot_spot_c": hot, "hot_spot_limit_c": limit, "f_aa": f_aa, "f_eqa": track.f_eqa,
            "loss_of_life_pct": track.loss_of_life_pct, "top_oil_residual_k": residual,
            "residual_raise_k": res_k, "time_ns": float(w.end_ns),
        }  # fmt: skip
        lol = {"f_eqa": round(track.f_eqa, 4), "loss_of_life_pct": round(track.loss_of_life_pct, 6)}
        return [
            _score(w, "hot_spot", Severity.CRITICAL, hot, hot > limit, hot < limit - 10.0,
                   {"hot_spot_c": round(hot, 2), "limit_c": limit, "unit": "degC"}),
            _score(w, "aging_rate", Severity.WARNING, f_aa, f_aa > aging, f_aa < 1.0,
                   {"f_aa": round(f_aa, 4), "raise": aging, **lol}),
            _score(w, "cooling_failure", Severity.CRITICAL, residual, residual > res_k,
                   residual < res_k / 2.0,
                   {"top_oil_residual_k": round(residual, 2), "raise_k": res_k,
                    "cooling_stage": float(track.last_inputs[1])}),
        ]  # fmt: skip


def _score(  # noqa: PLR0917 - private; mirrors Score's fields in order
    w: Window, kind: str, sev: Severity, value: float, active: bool, clear: bool,
    evidence: Mapping[str, object],
) -> Score:  # fmt: skip
    return Score(
        stream=w.info.stream, asset=w.info.asset, kind=kind, severity=sev, score=float(value),
        active=bool(active), clear=bool(clear), model=f"health/{kind}",
        event_time_ns=w.end_ns, window_start_ns=w.start_ns, window_end_ns=w.end_ns,
        evidence=dict(evidence),
    )  # fmt: skip
