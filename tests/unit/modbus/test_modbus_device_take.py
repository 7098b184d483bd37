"""DeviceState takes a read's values the same way on its fast path (consecutive channels,
no deadband, none invalid: slice assignments) and on its per-channel path."""

from __future__ import annotations

import math
import struct

import pytest

from adapters.modbus.decode import DecodeError
from adapters.modbus.device import DeviceConfig, DeviceState
from adapters.modbus.profile import DeviceProfile, parse_profile
from edgepipe.core import Quality


def _state(deadband: float) -> DeviceState:
    points = [{"name": f"f{i}", "table": "holding", "address": 2 * i, "type": "f32",
               "deadband": deadband} for i in range(3)]  # fmt: skip
    profile = parse_profile({"points": points, "poll_interval_s": 1.0})
    assert isinstance(profile, DeviceProfile)
    return DeviceState(DeviceConfig(profile, 1, "a", "s/1"))


def _regs(*values: float) -> list[int]:
    raw = struct.pack(f">{len(values)}f", *values)
    return list(struct.unpack(f">{2 * len(values)}H", raw))


def _same(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


def test_block_and_per_channel_paths_agree() -> None:
    fast, each = _state(0.0), _state(1e-12)  # a deadband forces the per-channel path
    (req,) = fast.plan
    assert fast._decoder(req)[3] is not None and each._decoder(req)[3] is None
    steps = [(1.0, 2.0, 3.0), (1.0, math.nan, 4.0), (5.0, 6.0, math.nan)]
    for k, values in enumerate(steps, start=1):
        fast.apply_read(req, _regs(*values), k)
        each.apply_read(req, _regs(*values), k)
        assert _same(fast.values, each.values), (k, fast.values, each.values)
        assert fast.updated_ns == each.updated_ns == [k] * 3
    # a NaN answer (a float register's "not available") makes the point absent: it must
    # not keep showing the last number as if it were fresh
    assert _same(fast.values, [5.0, 6.0, math.nan])


def test_refused_channels_come_back_and_rows_say_so() -> None:
    state = _state(0.0)
    (req,) = state.plan
    state.apply_read(req, _regs(1.0, 2.0, 3.0), 1)
    state.refuse(req, 2)
    assert state.invalid == {0, 1, 2} and all(math.isnan(v) for v in state.values)
    row = state.row(2)
    assert int(row.quality[0]) & Quality.INVALID
    assert row.values.shape == (1, 3) and row.values.dtype.kind == "f"
    state.apply_read(req, _regs(7.0, 8.0, 9.0), 3)  # invalid: per-channel path
    assert state.invalid == set() and state.values == [7.0, 8.0, 9.0]
    assert int(state.row(4).quality[0]) == Quality.RECEIPT_TIME
    # three poll intervals without a read: stale
    assert int(state.row(3 + 3_000_000_001).quality[0]) & Quality.STALE


def test_stale_row_after_the_clock_stepped_back() -> None:
    """Rows skip the freshness scan while a lower bound of the oldest update is inside the
    limit; a read stamped before that bound (the wall clock stepped back) must lower it,
    or a point that then stops updating would never be reported stale."""
    points = [{"name": n, "table": "holding", "address": a, "type": "f32"}
              for n, a in (("near", 0), ("far", 100))]  # fmt: skip
    profile = parse_profile({"points": points, "poll_interval_s": 1.0})
    assert isinstance(profile, DeviceProfile)
    state = DeviceState(DeviceConfig(profile, 1, "a", "s/1"))
    assert len(state.plan) == 2
    s = 1_000_000_000
    for i in range(2):
        state.apply_at(i, _regs(1.0), 100 * s)
    assert not int(state.row(101 * s).quality[0]) & Quality.STALE
    state.apply_at(1, _regs(2.0), 50 * s)  # clock stepped back 50 s; "near" not read again
    state.apply_at(0, _regs(3.0), 102 * s)
    for i in range(2):  # from here on only "near" answers, on the stepped-back clock
        state.apply_at(0, _regs(4.0), (51 + i) * s)
    assert not int(state.row(52 * s).quality[0]) & Quality.STALE
    # "far" was last read at 50 s: stale once 3 poll intervals have passed since
    assert int(state.row(54 * s).quality[0]) & Quality.STALE
    assert state.stale_points(54 * s) == ["far"]


def test_an_infinite_float_register_is_absent_not_a_reading() -> None:
    state = _state(0.0)
    assert len(state.plan) == 1  # one read of six registers
    state.apply_raw_at(0, struct.pack(">3f", 1.0, math.inf, -math.inf), 1)
    assert _same(state.row(2).values[0].tolist(), [1.0, math.nan, math.nan])


def test_a_byte_count_that_is_not_twice_the_registers_asked_is_refused() -> None:
    # MODBUS Application Protocol v1.1b3 6.3: byte count = 2 x N. Extra bytes were
    # silently ignored, so an answer to another request could be taken for this one.
    state = _state(0.0)
    assert len(state.plan) == 1  # one read of six registers
    good = struct.pack(">3f", 1.0, 2.0, 3.0)
    for raw in (good + b"\x00\x00", good[:-2], good[:-1]):
        with pytest.raises(DecodeError, match="asked 6 registers"):
            state.apply_raw_at(0, raw, 1)
    state.apply_raw_at(0, good, 1)
    assert state.values == [1.0, 2.0, 3.0]
