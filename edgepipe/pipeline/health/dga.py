"""Dissolved gas analysis: Duval Triangle 1 and IEC 60599 gas levels and rates.

Duval Triangle 1 (IEC 60599:2015 Annex B, Figure B.1) places the relative amounts of
CH4, C2H4 and C2H2 in one of seven zones. Zone limits, in percent of CH4 + C2H4 + C2H2:

====  ==========================================================
PD    partial discharges:           CH4 >= 98
D1    discharges of low energy:     C2H4 < 23, C2H2 >= 13
D2    discharges of high energy:    C2H4 >= 23 and C2H2 >= 29, or
                                    23 <= C2H4 < 40 and 13 <= C2H2 < 29
T1    thermal fault < 300 C:        C2H2 < 4, C2H4 < 20
T2    thermal fault 300-700 C:      C2H2 < 4, 20 <= C2H4 < 50
T3    thermal fault > 700 C:        C2H2 < 15, C2H4 >= 50
DT    mixture of thermal and electrical faults: the rest
====  ==========================================================

The triangle says *which* fault, not *whether* there is one: IEC 60599 clause 9 applies
it only when some gas exceeds its typical concentration or typical rate of increase.
The defaults below are the upper ends of the 90 % typical value ranges for power
transformers without a communicating OLTC (IEC 60599:2015 Annex A, Tables A.1 and A.3);
sites should replace them with their own fleet's values.
"""

from __future__ import annotations

__all__ = ["GASES", "GasLimits", "Zone", "duval_triangle_1", "exceeded", "rates_per_day"]

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: Channel names of a DGA stream, ppm (moisture: ppm in oil).
GASES = ("h2", "ch4", "c2h2", "c2h4", "c2h6", "co", "co2")


class Zone(enum.StrEnum):
    PD = "PD"
    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    D1 = "D1"
    D2 = "D2"
    DT = "DT"
    NONE = "none"  # no combustible gas to place in the triangle


# One return per zone reads like the standard's table.
def duval_triangle_1(ch4: float, c2h4: float, c2h2: float) -> Zone:  # noqa: PLR0911
    """The zone of one sample (ppm of the three gases)."""
    total = ch4 + c2h4 + c2h2
    if not total > 0 or not math.isfinite(total):
        return Zone.NONE
    p_ch4, p_c2h4, p_c2h2 = (100.0 * g / total for g in (ch4, c2h4, c2h2))
    if p_ch4 >= 98.0:
        return Zone.PD
    if p_c2h4 < 23.0 and p_c2h2 >= 13.0:
        return Zone.D1
    if (p_c2h4 >= 23.0 and p_c2h2 >= 29.0) or (23.0 <= p_c2h4 < 40.0 and 13.0 <= p_c2h2 < 29.0):
        return Zone.D2
    if p_c2h2 < 4.0 and p_c2h4 < 20.0:
        return Zone.T1
    if p_c2h2 < 4.0 and p_c2h4 < 50.0:
        return Zone.T2
    if p_c2h2 < 15.0 and p_c2h4 >= 50.0:
        return Zone.T3
    return Zone.DT


def _defaults(levels: bool) -> dict[str, float]:
    if levels:  # ppm, IEC 60599:2015 Table A.1 upper ends
        return {"h2": 150.0, "ch4": 130.0, "c2h2": 20.0, "c2h4": 280.0, "c2h6": 90.0,
                "co": 600.0, "co2": 14000.0}  # fmt: skip
    # ppm/day, IEC 60599:2015 Table A.3 upper ends (given per year there)
    per_year = {"h2": 132.0, "ch4": 120.0, "c2h2": 4.0, "c2h4": 146.0, "c2h6": 90.0,
                "co": 1060.0, "co2": 10000.0}  # fmt: skip
    return {g: v / 365.0 for g, v in per_year.items()}


@dataclass(frozen=True, slots=True)
class GasLimits:
    """Typical concentrations (ppm) and typical rates of increase (ppm/day) per gas."""

    levels: Mapping[str, float] = field(default_factory=lambda: _defaults(True))
    rates: Mapping[str, float] = field(default_factory=lambda: _defaults(False))


def exceeded(values: Mapping[str, float], limits: Mapping[str, float]) -> dict[str, float]:
    """Gas -> value / limit for every gas above its limit."""
    out = {}
    for gas, limit in limits.items():
        v = values.get(gas, math.nan)
        if math.isfinite(v) and v > limit:
            out[gas] = v / limit
    return out


def rates_per_day(
    times_ns: npt.NDArray[np.int64], ppm: npt.NDArray[np.float64], time_scale: float = 1.0
) -> npt.NDArray[np.float64]:
    """Least-squares slope of each column (ppm per day) over finite rows.

    ``time_scale`` stretches time for simulators that run faster than real time.
    """
    out = np.full(ppm.shape[1], np.nan)
    t_days = (times_ns - times_ns[0]).astype(np.float64) * (time_scale / 86_400e9)
    for j in range(ppm.shape[1]):
        ok = np.isfinite(ppm[:, j])
        if ok.sum() >= 3 and np.ptp(t_days[ok]) > 0:
            out[j] = float(np.polyfit(t_days[ok], ppm[ok, j], 1)[0])
    return out
