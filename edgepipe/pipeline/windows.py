"""Event-time aligned windows over a stream's ring buffer.

A stream reporting at ``rate_hz`` numbers its rows by *frame index*
``k = round(t_ns * rate_hz / 1e9)`` (IEEE C37.118.2-2011 6.3: SOC/FRACSEC place every
frame on the reporting-rate grid). A window is the frame range ``(b - length, b]`` for a
boundary ``b`` that is a multiple of ``hop``. Because the boundaries depend on event time
only, a live run and a replay that start at different frames emit identical windows
from the first boundary both have seen in full.

A window is emitted once a row with frame ``>= b`` arrives (the boundary has passed) and
the stream's first row is at or before the window's first frame. Every window has exactly
``length`` rows: a frame that never arrived (or arrived late and was refused by the ring)
is filled with a *gap row*: its nominal frame time, NaN values and ``Quality.INVALID``
("absent"), so detectors see missing data as such and never silently. Boundaries whose
whole range is empty (a long outage) emit nothing and are counted in ``empty``; the
source's QUIET status covers that case.
"""

from __future__ import annotations

__all__ = ["WindowConfig", "WindowStage", "WindowStatistics", "Windower"]

from dataclasses import dataclass

import numpy as np

from edgepipe.core import Quality, SampleBatch, StreamInfo, Window
from edgepipe.core.tables import check
from edgepipe.pipeline.ring import I64, RingBuffer, RingSlice, RingStatistics

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """``length`` and ``hop`` in rows (frames); ``capacity`` of the ring, 0 = 8 x length.

    Hop 2 is the default: the shipped fault model then raises within 4 frames of a
    fault's start in 95 % of runs (5 at hop 3), and 50 PMUs at 60 frames/s still take
    under a quarter of one core (docs/operations.md, docs/benchmarks.md)."""

    length: int = 30
    hop: int = 2
    capacity: int = 0
    # With a model that uses site context (edgepipe/pipeline/site.py): how long, in event
    # time, a moment's windows wait for a PMU of the site that has not delivered it yet.
    site_hold_ms: int = 100

    def __post_init__(self) -> None:
        check(self.length >= 2, "length", "must be >= 2")
        check(self.hop >= 1, "hop", "must be >= 1")
        check(self.site_hold_ms >= 0, "site_hold_ms", "must be >= 0")
        check(
            self.capacity == 0 or self.capacity >= self.length,
            "capacity",
            "must be 0 (automatic) or >= length",
        )

    @property
    def ring_capacity(self) -> int:
        return self.capacity or 8 * self.length


@dataclass(frozen=True, slots=True)
class WindowStatistics:
    windows: int  # windows emitted
    gap_windows: int  # emitted windows holding at least one gap row
    empty: int  # boundaries passed whose range held no row at all
    ring: RingStatistics


def frame_index(times_ns: I64, rate_hz: float) -> I64:
    """``round(t_ns * rate / 1e9)``, exact in integer arithmetic for integer rates."""
    rate = int(rate_hz)
    if rate == rate_hz:
        sec, sub = np.divmod(times_ns, _NS)
        return sec * rate + np.rint(sub * (rate / _NS)).astype(np.int64)
    return np.rint(times_ns.astype(np.float64) * (rate_hz / _NS)).astype(np.int64)


def frame_time_ns(frames: I64, rate_hz: float) -> I64:
    """The nominal event time of frame indices (the inverse of ``frame_index``)."""
    rate = int(rate_hz)
    if rate == rate_hz:
        sec, sub = np.divmod(frames, rate)
        return sec * _NS + np.rint(sub * (_NS / rate)).astype(np.int64)
    return np.rint(frames.astype(np.float64) * (_NS / rate_hz)).astype(np.int64)


class Windower:
    """Ring buffer plus window cutting for one stream."""

    def __init__(self, info: StreamInfo, config: WindowConfig | None = None) -> None:
        if not info.rate_hz > 0:
            raise ValueError(f"stream {info.stream}: windows need rate_hz > 0")
        self.info = info
        self.config = config or WindowConfig()
        self.ring = RingBuffer(self.config.ring_capacity, len(info.channels))
        self._next: int | None = None  # the next boundary frame to emit
        self._windows = 0
        self._gap_windows = 0
        self._empty = 0

    def push(self, batch: SampleBatch) -> list[Window]:
        """Store ``batch``; return the windows whose boundary it passed, oldest first."""
        accepted = self.ring.write_batch(batch)
        if accepted == 0:
            return []
        length, hop, rate = self.config.length, self.config.hop, self.info.rate_hz
        newest = self.ring.newest_ns
        assert newest is not None
        k_new = self._frame(newest)
        if self._next is not None and k_new == self._next and accepted == 1:
            fast = self._live_window(k_new)
            if fast is not None:
                return [fast]
        if self._next is None:
            oldest = self.ring.copy_last(len(self.ring)).times_ns[:1]
            f0 = int(frame_index(oldest, rate)[0])
            self._next = -(-(f0 + length - 1) // hop) * hop  # first full window
        if k_new < self._next:
            return []
        # Old rows inside the pending windows are fewer than ``length`` (see module doc).
        rows = self.ring.copy_last(accepted + length - 1)
        frames = frame_index(rows.times_ns, rate)
        out: list[Window] = []
        bounds = self._boundaries(frames, k_new)
        ends = np.asarray(bounds, dtype=np.int64)
        los = np.searchsorted(frames, ends - length, side="right").tolist()
        his = np.searchsorted(frames, ends, side="right").tolist()
        info, (times, values, quality) = self.info, rows
        for b, lo, hi in zip(bounds, los, his, strict=True):
            if hi == lo:
                self._empty += 1
                continue
            if hi - lo == length:
                out.append(Window(info, times[lo:hi], values[lo:hi], quality[lo:hi]))
            else:
                out.append(self._with_gaps(rows, frames[lo:hi], lo, b))
                self._gap_windows += 1
        self._windows += len(out)
        self._next = (k_new // hop + 1) * hop
        return out

    def _frame(self, t_ns: int) -> int:
        """``frame_index`` of one time in plain ints: same float expression, same rounding."""
        rate = self.info.rate_hz
        if int(rate) == rate:
            sec, sub = divmod(t_ns, _NS)
            return sec * int(rate) + round(sub * (int(rate) / _NS))
        return round(float(t_ns) * (rate / _NS))

    def _live_window(self, b: int) -> Window | None:
        """The live case (one new row, exactly on boundary ``b``, no gap): no searching."""
        length = self.config.length
        if (
            len(self.ring) < length
            or self._frame(self.ring.time_back(length - 1)) != b - length + 1
        ):
            return None
        rows = self.ring.copy_last(length)
        self._windows += 1
        self._next = b + self.config.hop
        return Window(self.info, rows.times_ns, rows.values, rows.quality)

    def _boundaries(self, frames: I64, k_new: int) -> list[int]:
        assert self._next is not None
        hop, length = self.config.hop, self.config.length
        count = (k_new - self._next) // hop + 1
        if count <= len(frames) + length:
            return list(range(self._next, k_new + 1, hop))
        # A long outage: only boundaries within reach of some row can hold data.
        reach = {
            b
            for f in frames.tolist()
            for b in range(-(-max(f, self._next) // hop) * hop, f + length, hop)
        }
        kept = sorted(b for b in reach if b <= k_new)
        self._empty += count - len(kept)
        return kept

    def _with_gaps(self, rows: RingSlice, frames: I64, lo: int, b: int) -> Window:
        """The frame range ``(b - length, b]`` with gap rows where no row arrived."""
        length = self.config.length
        first = b - length + 1
        full = np.arange(first, b + 1, dtype=np.int64)
        w_times = frame_time_ns(full, self.info.rate_hz)
        w_values = np.full((length, rows.values.shape[1]), np.nan, dtype=np.float64)
        w_quality = np.full(length, int(Quality.INVALID), dtype=np.uint16)
        pos = frames - first
        hi = lo + len(frames)
        w_times[pos] = rows.times_ns[lo:hi]
        w_values[pos] = rows.values[lo:hi]
        w_quality[pos] = rows.quality[lo:hi]
        return Window(self.info, w_times, w_values, w_quality)

    def statistics(self) -> WindowStatistics:
        return WindowStatistics(
            self._windows, self._gap_windows, self._empty, self.ring.statistics()
        )


class WindowStage:
    """One ``Windower`` per stream, fed the way a ``Sink`` is fed."""

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self._streams: dict[str, Windower] = {}

    def on_stream(self, info: StreamInfo) -> None:
        """A new stream or a new layout: a changed layout starts a fresh ring."""
        current = self._streams.get(info.stream)
        if current is None or current.info != info:
            self._streams[info.stream] = Windower(info, self.config)

    def on_batch(self, batch: SampleBatch) -> list[Window]:
        """Windows completed by ``batch``; a batch of an unannounced stream is a KeyError."""
        return self._streams[batch.stream].push(batch)

    def statistics(self) -> dict[str, WindowStatistics]:
        return {name: w.statistics() for name, w in self._streams.items()}
