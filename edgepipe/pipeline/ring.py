"""Fixed-capacity numpy ring buffer, one per stream (design.md, "Bounded everything").

Rows are written in place, whole batches at a time (at most two slice copies per array).
The overflow policy is *drop oldest*: when full, new rows overwrite the oldest ones, and
a batch larger than the capacity keeps only its newest ``capacity`` rows; every row lost
that way is counted in ``overwritten``.

Out-of-order policy: the ring holds strictly increasing event times. A row whose time is
not newer than the newest row already accepted (a late PMU frame, a duplicate frame
resent after a reconnect) is dropped and counted in ``out_of_order``; it is never
inserted. Windows are cut by frame index (see ``windows``), so a late frame shows up as a
missing row of its window, which the data-quality detector sees, instead of silently
rewriting a window that was already evaluated (replay would then differ from live).
"""

from __future__ import annotations

__all__ = ["RingBuffer", "RingSlice", "RingStatistics"]

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from edgepipe.core import SampleBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U16 = npt.NDArray[np.uint16]


class RingSlice(NamedTuple):
    """The last rows of a ring, oldest first: times (n,), values (n, c), quality (n,)."""

    times_ns: I64
    values: F64
    quality: U16


@dataclass(frozen=True, slots=True)
class RingStatistics:
    used: int  # rows held now
    capacity: int
    written: int  # rows accepted since creation
    overwritten: int  # accepted rows lost to drop-oldest (incl. the head of huge batches)
    out_of_order: int  # rows refused because not newer than the newest row

    @property
    def dropped(self) -> int:
        return self.overwritten + self.out_of_order


class RingBuffer:
    """Ring of ``capacity`` rows of ``channels`` float64 values, with times and quality."""

    __slots__ = (
        "_newest",
        "_out_of_order",
        "_quality",
        "_times",
        "_values",
        "_written",
        "capacity",
        "channels",
    )

    def __init__(self, capacity: int, channels: int) -> None:
        if capacity < 1 or channels < 0:
            raise ValueError("RingBuffer: capacity must be >= 1 and channels >= 0")
        self.capacity = capacity
        self.channels = channels
        self._times: I64 = np.zeros(capacity, dtype=np.int64)
        self._values: F64 = np.full((capacity, channels), np.nan, dtype=np.float64)
        self._quality: U16 = np.zeros(capacity, dtype=np.uint16)
        self._written = 0
        self._out_of_order = 0
        self._newest: int | None = None

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    @property
    def written(self) -> int:
        """Rows accepted since creation: the sequence number of the next row."""
        return self._written

    @property
    def newest_ns(self) -> int | None:
        return self._newest

    def write_batch(self, batch: SampleBatch) -> int:
        return self.write(batch.times_ns, batch.values, batch.quality)

    def write(self, times_ns: I64, values: F64, quality: U16) -> int:
        """Append rows (policy in the module docstring); return how many were accepted."""
        n = int(times_ns.shape[0])
        if n == 0:
            return 0
        if values.shape != (n, self.channels):
            raise ValueError(f"RingBuffer: values must be ({n}, {self.channels})")
        times_ns, values, quality = self._in_order(times_ns, values, quality)
        k = int(times_ns.shape[0])
        if k == 0:
            return 0
        cap = self.capacity
        if k > cap:  # only the newest rows survive; the others count as overwritten
            times_ns, values, quality = times_ns[-cap:], values[-cap:], quality[-cap:]
        m = int(times_ns.shape[0])
        head = (self._written + k - m) % cap  # as if the skipped head rows were written
        first = min(m, cap - head)
        self._times[head : head + first] = times_ns[:first]
        self._values[head : head + first] = values[:first]
        self._quality[head : head + first] = quality[:first]
        if first < m:  # wrap around to the start of the arrays
            rest = m - first
            self._times[:rest] = times_ns[first:]
            self._values[:rest] = values[first:]
            self._quality[:rest] = quality[first:]
        self._written += k
        self._newest = int(times_ns[-1])
        return k

    def _in_order(self, times_ns: I64, values: F64, quality: U16) -> tuple[I64, F64, U16]:
        newest = self._newest
        n = int(times_ns.shape[0])
        if n == 1:  # the live case: one frame per call, no array work
            if newest is not None and int(times_ns[0]) <= newest:
                self._out_of_order += 1
                return times_ns[:0], values[:0], quality[:0]
            return times_ns, values, quality
        floor = np.iinfo(np.int64).min if newest is None else newest
        # A row is kept when it is newer than every row before it (and than the ring).
        previous = np.maximum.accumulate(np.concatenate(([floor], times_ns[:-1])))
        keep = times_ns > previous
        if bool(keep.all()):
            return times_ns, values, quality
        self._out_of_order += n - int(np.count_nonzero(keep))
        return times_ns[keep], values[keep], quality[keep]

    def time_back(self, i: int) -> int:
        """Event time of the row ``i`` places before the newest (0 = the newest)."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        return int(self._times[(self._written - 1 - i) % self.capacity])

    def _start(self, n: int) -> tuple[int, int]:
        n = max(0, min(n, len(self)))
        return (self._written - n) % self.capacity, n

    def try_view_last(self, n: int) -> RingSlice | None:
        """Zero-copy views of the last ``min(n, len)`` rows, or None if they wrap around.

        The views alias the ring: they change when later rows are written. Use them
        before the next ``write`` or take ``copy_last``.
        """
        start, n = self._start(n)
        if start + n > self.capacity:
            return None
        end = start + n
        return RingSlice(self._times[start:end], self._values[start:end], self._quality[start:end])

    def copy_last(self, n: int) -> RingSlice:
        """Fresh arrays holding the last ``min(n, len)`` rows, oldest first."""
        start, n = self._start(n)
        end = start + n
        if end <= self.capacity:
            return RingSlice(
                self._times[start:end].copy(),
                self._values[start:end].copy(),
                self._quality[start:end].copy(),
            )
        wrap = end - self.capacity
        return RingSlice(
            np.concatenate((self._times[start:], self._times[:wrap])),
            np.concatenate((self._values[start:], self._values[:wrap])),
            np.concatenate((self._quality[start:], self._quality[:wrap])),
        )

    def statistics(self) -> RingStatistics:
        return RingStatistics(
            used=len(self),
            capacity=self.capacity,
            written=self._written,
            overwritten=max(0, self._written - self.capacity),
            out_of_order=self._out_of_order,
        )
