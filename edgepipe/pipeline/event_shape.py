"""Event-aligned shape features: what a window shows around its largest voltage step.

A fault, a generator trip and a load step all start with a sudden voltage change; what
tells them apart on any grid is the shape around it, not its size, which depends on the
grid's strength and the PMU's electrical distance. So the step is located (the largest
one-frame change of the per-unit voltage) and described relative to the level just
before it: its size and sign, how long ago it was, how low the voltage went and where it
ended, whether it came back with a second sharp step (a fault cleared), how the
frequency moved across it (rotors accelerate during a fault, slow down after a loss of
generation), and for how many frames the voltage stayed displaced.

All of it works on stacked windows ``(n, L)`` with a fixed number of numpy calls.
"""

from __future__ import annotations

__all__ = ["SHAPE_NAMES", "shape_features"]

import numpy as np

from edgepipe.pipeline.ring import F64

SHAPE_NAMES: tuple[str, ...] = (
    "v_step_rel",
    "v_step_age_frames",
    "v_post_min_rel",
    "v_post_last_rel",
    "v_rebound_rel",
    "freq_shift_hz",
    "v_displaced_frames",
)
_PRE_ROWS = 3  # rows before the step that define the level it starts from


def _masked_median(x: F64, keep: np.ndarray) -> F64:
    """Median over the last axis of the entries where ``keep`` (NaN when none is left)."""
    srt = np.sort(np.where(keep, x, np.nan), axis=-1)  # NaN sorts last
    cnt = np.count_nonzero(~np.isnan(srt), axis=-1)
    lo, hi = np.maximum(cnt - 1, 0) // 2, np.maximum(cnt, 1) // 2
    pair = np.take_along_axis(srt, lo[:, None], -1) + np.take_along_axis(srt, hi[:, None], -1)
    return np.where(cnt > 0, pair[:, 0] / 2, np.nan)


def shape_features(v: F64, freq: F64) -> F64:
    """``(n, len(SHAPE_NAMES))`` from per-unit voltage ``v`` and frequency deviation
    ``freq`` (Hz), both ``(n, L)`` with NaN for missing rows."""
    n, length = v.shape
    out = np.full((n, len(SHAPE_NAMES)), np.nan)
    if length < 3:
        return out
    dv = np.diff(v, axis=1)  # dv[:, j]: the step into row j + 1
    j = np.argmax(np.nan_to_num(np.abs(dv), nan=-1.0), axis=1)
    k = (j + 1)[:, None]  # the first row after the step
    rows = np.arange(length)[None, :]
    before = rows < k
    after = ~before
    with np.errstate(invalid="ignore", divide="ignore"):
        near = before & (rows >= k - _PRE_ROWS) & ~np.isnan(v)
        pre = np.add.reduce(np.where(near, v, 0.0), axis=1) / np.add.reduce(near, axis=1)
        step = np.take_along_axis(dv, j[:, None], 1)[:, 0] / pre
        rel = v / pre[:, None]
        out[:, 0] = step
        out[:, 1] = length - 1 - j - 1
        out[:, 2] = np.fmin.reduce(np.where(after, rel, np.nan), axis=1)
        last = length - 1 - np.argmax(~np.isnan(v[:, ::-1]), axis=1)
        out[:, 3] = np.take_along_axis(rel, last[:, None], 1)[:, 0]
        rises = np.where(rows[:, 1:] > k, dv, np.nan) / pre[:, None]
        out[:, 4] = np.nan_to_num(np.fmax.reduce(rises, axis=1), nan=0.0)
        # The step row itself carries the angle jump's spike: leave it out. A step into
        # the newest row has nothing after it yet: no shift seen (0, not NaN, so that the
        # window is still scored, as the rebound is).
        shift = _masked_median(freq, rows > k) - _masked_median(freq, before)
        out[:, 5] = np.where(j + 1 == length - 1, 0.0, shift)
        depth = np.abs(step)[:, None]
        out[:, 6] = np.add.reduce(after & (np.abs(rel - 1) > depth / 2), axis=1)
    out[np.isnan(step)] = np.nan  # no step to describe: a window without valid voltage
    return out
