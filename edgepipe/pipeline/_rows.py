"""Rows shared by overlapping windows, found once so row-wise features run once per row.

Windows of one stream overlap (``length`` 30, ``hop`` 3: each row is in ten windows),
and the windows one ``Windower.push`` cuts are views of one array. ``shared_rows`` finds
those arrays (``ndarray.base``), locates each window in them by its first event time, and
keeps the result only if gathering the rows gives back every window's arrays bit for
bit; anything else (fresh copies, as on the live one-row path, foreign arrays, a
mismatch) falls back to the plain stack. Row-wise arithmetic does not care where a row
sits, so features from ``Rows.gather`` equal those of the plain stack exactly.
"""

from __future__ import annotations

__all__ = ["Rows", "shared_rows", "stacked"]

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.core import Window
from edgepipe.pipeline.ring import F64, I64, U16


@dataclass(frozen=True, slots=True)
class Rows:
    """``times_ns`` (R,), ``values`` (R, c), ``quality`` (R,) and the (n, L) ``index`` of
    each window's rows in them; with ``index`` None the arrays are the windows stacked
    ((n, L), (n, L, c), (n, L)). ``window_times`` is always (n, L)."""

    times_ns: I64
    values: F64
    quality: U16
    index: I64 | None
    window_times: I64

    def gather(self, a: np.ndarray) -> np.ndarray:
        """Per-row ``a`` (R, ...) as per-window (n, L, ...)."""
        return a if self.index is None else a[self.index]


def stacked(windows: Sequence[Window]) -> Rows:
    if len(windows) == 1:
        w = windows[0]
        times = w.times_ns[None]
        return Rows(times, w.values[None], w.quality[None], None, times)
    times = np.stack([w.times_ns for w in windows])
    values = np.stack([w.values for w in windows])
    return Rows(times, values, np.stack([w.quality for w in windows]), None, times)


Source = tuple[I64, F64, U16]


def shared_rows(windows: Sequence[Window]) -> Rows:
    """The distinct rows of ``windows`` (all of one length and channel count)."""
    plain = stacked(windows)
    sources: dict[tuple[int, int, int], int] = {}
    bases: list[Source] = []
    which: list[int] = []
    for w in windows:
        t, v, q = w.times_ns.base, w.values.base, w.quality.base
        if t is None or v is None or q is None:
            t, v, q = w.times_ns, w.values, w.quality
        key = (id(t), id(v), id(q))
        k = sources.get(key)
        if k is None:
            k = sources[key] = len(bases)
            bases.append((t, v, q))
        which.append(k)
    if 2 * len(bases) > len(windows):  # little overlap: a gather would cost more
        return plain
    index = _index(bases, which, plain)
    if index is None:
        return plain
    times, values, quality = (np.concatenate([b[i] for b in bases]) for i in range(3))
    index = np.minimum(index, len(times) - 1)
    same = (
        np.array_equal(times[index], plain.times_ns)
        and np.array_equal(quality[index], plain.quality)
        and np.array_equal(values[index].view(np.int64), plain.values.view(np.int64))
    )  # bit for bit: -0.0 and NaN payloads included
    return Rows(times, values, quality, index, plain.window_times) if same else plain


def _index(bases: list[Source], which: list[int], plain: Rows) -> I64 | None:
    """Row numbers of each window in the concatenated sources, or None if a source is
    not a plain row table with strictly increasing times."""
    channels = plain.values.shape[2]
    firsts = plain.times_ns[:, 0]
    src = np.asarray(which, dtype=np.int64)
    first_row = np.empty(len(which), dtype=np.int64)
    start = 0
    for k, (t, v, q) in enumerate(bases):
        shape_ok = t.ndim == 1 and v.ndim == 2 and q.ndim == 1 and v.shape[1] == channels
        if not shape_ok or not t.shape[0] == v.shape[0] == q.shape[0]:
            return None
        if not (t.dtype == np.int64 and v.dtype == np.float64 and q.dtype == np.uint16):
            return None
        if not bool(np.all(t[1:] > t[:-1])):
            return None
        mine = src == k
        first_row[mine] = start + np.searchsorted(t, firsts[mine])
        start += t.shape[0]
    length = plain.times_ns.shape[1]
    out: I64 = first_row[:, None] + np.arange(length, dtype=np.int64)
    return out
