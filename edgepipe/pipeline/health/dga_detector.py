"""DGA detector: Duval Triangle 1 diagnosis and IEC 60599 levels and rates of increase.

Windows of a ``kind = "dga"`` stream carry ``h2``, ``ch4``, ``c2h2``, ``c2h4``, ``c2h6``,
``co``, ``co2`` (ppm) and optionally ``moisture`` (ppm). Per window, from its good rows:

- ``dga_<zone>`` (``dga_d1``, ``dga_t3``...; severity by zone): the last sample lies in
  that Duval zone *and* some gas is above its typical level or rate (IEC 60599 clause 9:
  the triangle is only applied to a transformer with a problem). When the diagnosis
  changes (T2 -> D1) the old zone's alert clears and the new one raises: each zone is
  its own alert key, so the change is an alert of its own.
- ``dga_rate`` (warning): some gas rises faster than its typical rate (least-squares
  slope over the window, ppm/day; a simulator's ``time_scale`` param stretches time).

Stateless across windows: every verdict is a function of the window alone.
"""

from __future__ import annotations

__all__ = ["DGA_FEATURES", "DgaDetector", "dga_features"]

from collections.abc import Mapping, Sequence

import numpy as np

from edgepipe.core import BAD_QUALITY, Score, Severity, Window
from edgepipe.pipeline.health.dga import GASES, GasLimits, Zone, duval_triangle_1, exceeded
from edgepipe.pipeline.health.dga import rates_per_day as _rates

_BAD = int(BAD_QUALITY)
DGA_FEATURES = tuple(f"{g}_ppm" for g in GASES) + tuple(f"{g}_ppm_day" for g in GASES)

#: How bad each zone is (IEC 60599 Table 2 lists discharges of high energy as the worst).
ZONE_SEVERITY: dict[Zone, Severity] = {
    Zone.PD: Severity.WARNING, Zone.T1: Severity.WARNING, Zone.T2: Severity.WARNING,
    Zone.T3: Severity.CRITICAL, Zone.D1: Severity.CRITICAL, Zone.D2: Severity.CRITICAL,
    Zone.DT: Severity.CRITICAL,
}  # fmt: skip


def _good(w: Window) -> np.ndarray:
    good: np.ndarray = (w.quality.astype(np.int64) & _BAD) == 0
    return good


def _gases(w: Window, rows: np.ndarray) -> np.ndarray:
    names = {c.name: i for i, c in enumerate(w.info.channels)}
    n = int(rows.sum())
    cols = [w.values[rows, names[g]] if g in names else np.full(n, np.nan) for g in GASES]
    out: np.ndarray = np.column_stack(cols)
    return out


def dga_features(windows: Sequence[Window]) -> np.ndarray:
    """Per window: the last good sample of each gas and each gas's rate (ppm/day)."""
    out = np.full((len(windows), len(DGA_FEATURES)), np.nan)
    for i, w in enumerate(windows):
        good = _good(w)
        if good.sum() == 0:
            continue
        ppm = _gases(w, good)
        out[i, : len(GASES)] = ppm[-1]
        out[i, len(GASES) :] = _rates(w.times_ns[good], ppm, w.info.param("time_scale", 1.0))
    return out


class DgaDetector:
    """Duval zone alerts and rate alerts for ``kind = "dga"`` windows."""

    name = "health/dga"

    def __init__(self, limits: GasLimits | None = None) -> None:
        self.limits = limits or GasLimits()
        self.latest: dict[str, dict[str, float | str]] = {}  # asset -> health factors

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]:
        if features.shape != (len(windows), len(DGA_FEATURES)):
            features = dga_features(windows)
        scores: list[Score] = []
        n = len(GASES)
        for w, row in zip(windows, features, strict=True):
            if not np.isfinite(row[:n]).any():
                continue
            level = dict(zip(GASES, row[:n].tolist(), strict=True))
            rate = dict(zip(GASES, row[n:].tolist(), strict=True))
            scores.extend(self._window(w, level, rate))
        return scores

    def _window(
        self, w: Window, level: Mapping[str, float], rate: Mapping[str, float]
    ) -> list[Score]:
        over_level = exceeded(level, self.limits.levels)
        over_rate = exceeded(rate, self.limits.rates)
        zone = duval_triangle_1(level["ch4"], level["c2h4"], level["c2h2"])
        problem = bool(over_level or over_rate)
        worst = max([*over_level.values(), *over_rate.values(), 0.0])
        self.latest[w.info.asset] = {"zone": str(zone) if problem else "normal",
                                     "worst_ratio": worst, "time_ns": float(w.end_ns)}  # fmt: skip
        evidence = {
            "diagnosis": str(zone),
            "method": "Duval Triangle 1 (IEC 60599:2015 Annex B)",
            "ppm": {g: round(v, 2) for g, v in level.items()},
            "above_typical_level": {g: round(r, 2) for g, r in over_level.items()},
            "above_typical_rate": {g: round(r, 2) for g, r in over_rate.items()},
        }
        out = [
            _score(w, f"dga_{z.value.lower()}", sev, worst, problem and zone is z,
                   not (problem and zone is z), evidence)
            for z, sev in ZONE_SEVERITY.items()
        ]  # fmt: skip
        rate_ev = {
            "ppm_per_day": {g: round(v, 2) for g, v in rate.items() if np.isfinite(v)},
            "limits_ppm_per_day": dict(self.limits.rates),
            "diagnosis": str(zone),
        }
        top = max(over_rate.values(), default=0.0)
        out.append(_score(w, "dga_rate", Severity.WARNING, top, bool(over_rate),
                          not over_rate, rate_ev))  # fmt: skip
        return out


def _score(  # noqa: PLR0917 - private; mirrors Score's fields in order
    w: Window, kind: str, sev: Severity, value: float, active: bool, clear: bool,
    evidence: Mapping[str, object],
) -> Score:  # fmt: skip
    return Score(
        stream=w.info.stream, asset=w.info.asset, kind=kind, severity=sev, score=float(value),
        active=active, clear=clear, model="health/dga", event_time_ns=w.end_ns,
        window_start_ns=w.start_ns, window_end_ns=w.end_ns, evidence=dict(evidence),
    )  # fmt: skip
