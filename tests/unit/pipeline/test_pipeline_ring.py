"""Ring buffer: in-place writes, wrap-around, big batches, out-of-order policy, views."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.pipeline.ring import RingBuffer


def rows(times: list[int] | np.ndarray, c: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=np.int64)
    values = np.stack([t.astype(np.float64) * (k + 1) for k in range(c)], axis=1)
    return t, values, (t % 7).astype(np.uint16)


def test_wrap_around_keeps_the_newest_rows_in_order() -> None:
    ring = RingBuffer(5, 2)
    assert ring.write(*rows([1, 2, 3])) == 3
    assert ring.write(*rows([4, 5, 6, 7])) == 4
    last = ring.copy_last(5)
    assert last.times_ns.tolist() == [3, 4, 5, 6, 7]
    assert last.values[:, 1].tolist() == [6, 8, 10, 12, 14]
    assert last.quality.tolist() == [3, 4, 5, 6, 0]
    s = ring.statistics()
    assert (s.used, s.capacity, s.written, s.overwritten, s.out_of_order) == (5, 5, 7, 2, 0)


def test_batch_larger_than_capacity_keeps_its_newest_rows() -> None:
    ring = RingBuffer(4, 1)
    ring.write(*rows([1], 1))
    assert ring.write(*rows(np.arange(10, 20), 1)) == 10
    assert ring.copy_last(4).times_ns.tolist() == [16, 17, 18, 19]
    s = ring.statistics()
    assert s.written == 11 and s.overwritten == 7 and s.dropped == 7


def test_late_and_duplicate_rows_are_dropped_and_counted() -> None:
    ring = RingBuffer(8, 1)
    ring.write(*rows([10, 20, 30], 1))
    assert ring.write(*rows([30], 1)) == 0  # duplicate of the newest
    assert ring.write(*rows([25, 40, 35, 50], 1)) == 2  # 25 late, 35 older than 40
    assert ring.copy_last(8).times_ns.tolist() == [10, 20, 30, 40, 50]
    assert ring.statistics().out_of_order == 3


def test_view_is_zero_copy_when_contiguous_and_none_when_wrapped() -> None:
    ring = RingBuffer(4, 1)
    ring.write(*rows([1, 2, 3], 1))
    view = ring.try_view_last(2)
    assert view is not None and view.times_ns.tolist() == [2, 3]
    assert np.shares_memory(view.values, ring._values)
    ring.write(*rows([4, 5], 1))  # now the last 3 rows wrap around the end
    assert ring.try_view_last(3) is None
    copy = ring.copy_last(3)
    assert copy.times_ns.tolist() == [3, 4, 5]
    assert not np.shares_memory(copy.values, ring._values)


def test_asking_for_more_rows_than_held_gives_what_is_held() -> None:
    ring = RingBuffer(10, 1)
    ring.write(*rows([1, 2], 1))
    assert ring.copy_last(5).times_ns.tolist() == [1, 2]
    assert ring.time_back(0) == 2 and ring.time_back(1) == 1
    with pytest.raises(IndexError):
        ring.time_back(2)


def test_wrong_value_shape_is_refused() -> None:
    ring = RingBuffer(4, 3)
    with pytest.raises(ValueError, match="values"):
        ring.write(*rows([1, 2], 2))
