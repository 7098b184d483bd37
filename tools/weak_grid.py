"""Weak-grid augmentation of training windows: the same events on a weaker grid.

The training grids are strong: a generator trip or a load step moves their PMUs by a few
per cent and a few tens of mHz. On a weak grid (a small system, little inertia, a low
short-circuit ratio) the same event moves them two or three times as far while keeping
its shape and timing, and a classifier that has only seen the strong grids' trips calls
a deep sag a fault (kundur's trips sag its PMUs by 3-17 %). ``weaken`` adds a copy of
each event window (one per factor) with its voltage and frequency deviations scaled by ``factor``:
deviations from the pre-event state, ranges, steps and rates are multiplied, durations
and ages are kept. Normal windows are not copied (a scaled ambient is not a normal grid's
ambient; the false-alarm rate is measured on real normal runs).

Only the columns of ``FEATURE_NAMES`` that the models read are scaled; the rest are
copied as they are (``SCALED`` names every one of them, and a test checks that each
model feature is either scaled or listed in ``KEPT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.pipeline.features import FEATURE_INDEX

# Ratios to the pre-event level: 1 + factor * (x - 1).
RATIOS = ("v_rel_min", "v_rel_max", "v_rel_last", "v_post_min_rel", "v_post_last_rel")
# Voltage deviations, ranges and steps (pu or relative).
VOLTAGE = ("v_pu_range", "v_pu_std", "v_step_rel", "v_rebound_rel")
# Frequency deviations, ranges and rates (Hz, Hz/s) and the angle step.
FREQUENCY = (
    "freq_rel_min_hz",
    "freq_rel_max_hz",
    "freq_rel_last_hz",
    "freq_range_hz",
    "freq_std_hz",
    "rocof_abs_max_hz_s",
    "rocof_fit_hz_s",
    "freq_shift_hz",
    "angle_jump_deg",
)
SCALED = RATIOS + VOLTAGE + FREQUENCY
KEPT = ("v_step_age_frames", "v_displaced_frames")  # timing: the same on any grid


def weaken(
    x: npt.NDArray[Any], y: npt.NDArray[Any], case: npt.NDArray[Any], factors: Sequence[float]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """``x, y, case`` with one scaled copy of every event window (``y > 0``) per factor
    appended."""
    event = np.flatnonzero(y > 0)
    xs, ys, cases = [x], [y], [case]
    for factor in factors:
        z = x[event].copy()
        for name in RATIOS:
            i = FEATURE_INDEX[name]
            z[:, i] = 1 + factor * (z[:, i] - 1)
        for name in VOLTAGE + FREQUENCY:
            z[:, FEATURE_INDEX[name]] *= factor
        xs.append(z)
        ys.append(y[event])
        cases.append(case[event])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(cases)
