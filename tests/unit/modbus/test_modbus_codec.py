"""Modbus profiles, request planning and value decoding: pure functions, no network."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.modbus.decode import DecodeError, decode_point, decode_read, encode_point
from adapters.modbus.plan import plan_reads
from adapters.modbus.profile import (
    ByteOrder,
    Point,
    PointType,
    Table,
    parse_profile,
)
from adapters.modbus.testing import ALL_TYPES_VALUES, all_types_profile, all_types_table
from edgepipe.core import ConfigError

B, L = ByteOrder.BIG, ByteOrder.LITTLE


def _p(ptype: str, bo: ByteOrder = B, wo: ByteOrder = B, **kw: object) -> Point:
    return Point("x", Table.HOLDING, 0, PointType(ptype), bo, wo, **kw)  # type: ignore[arg-type]


# Hand-written register images: 0x12345678 and 3.25 (0x40500000) in the four layouts.
@pytest.mark.parametrize(
    ("ptype", "bo", "wo", "words", "value"),
    [
        ("u32", B, B, [0x1234, 0x5678], 0x12345678),
        ("u32", B, L, [0x5678, 0x1234], 0x12345678),
        ("u32", L, B, [0x3412, 0x7856], 0x12345678),
        ("u32", L, L, [0x7856, 0x3412], 0x12345678),
        ("f32", B, B, [0x4050, 0x0000], 3.25),
        ("f32", B, L, [0x0000, 0x4050], 3.25),
        ("f32", L, B, [0x5040, 0x0000], 3.25),
        ("i16", B, B, [0xFFFE], -2),
        ("i16", L, B, [0xFEFF], -2),
        ("u16", L, B, [0x3412], 0x1234),
        ("i32", B, B, [0xFFFF, 0xFFFF], -1),
        ("i64", B, L, [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF], -2),
        ("u64", B, B, [0, 0, 0, 7], 7),
        ("f64", B, B, [0x3FF8, 0, 0, 0], 1.5),
        ("f64", B, L, [0, 0, 0, 0x3FF8], 1.5),
    ],
    ids=str,
)
def test_known_layouts(
    ptype: str, bo: ByteOrder, wo: ByteOrder, words: list[int], value: float
) -> None:
    p = _p(ptype, bo, wo)
    assert decode_point(p, words) == value
    assert encode_point(p, value) == words


def test_scale_offset_bits_and_strings() -> None:
    assert decode_point(_p("i16", scale=0.1, offset=-40.0), [615]) == pytest.approx(21.5)
    bit = Point("b", Table.INPUT, 0, PointType.BIT, bit=3)
    assert decode_point(bit, [0b1000]) == 1.0
    assert decode_point(bit, [0b0111]) == 0.0
    text = Point("s", Table.HOLDING, 0, PointType.STRING, length=3)
    assert decode_point(text, [0x5458, 0x2D34, 0x3200]) == "TX-42"
    swapped = Point("s", Table.HOLDING, 0, PointType.STRING, byte_order=L, length=3)
    assert decode_point(swapped, [0x5854, 0x342D, 0x0032]) == "TX-42"


_INTS = {"u16": (0, 2**16 - 1), "i16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1),
         "i32": (-(2**31), 2**31 - 1), "u64": (0, 2**53), "i64": (-(2**53), 2**53)}  # fmt: skip


@given(
    st.sampled_from(sorted(_INTS)), st.sampled_from([B, L]), st.sampled_from([B, L]),
    st.data(),
)  # fmt: skip
def test_integer_roundtrip(ptype: str, bo: ByteOrder, wo: ByteOrder, data: st.DataObject) -> None:
    lo, hi = _INTS[ptype]
    value = data.draw(st.integers(lo, hi))
    p = _p(ptype, bo, wo)
    words = encode_point(p, float(value))
    assert all(0 <= w <= 0xFFFF for w in words) and len(words) == p.count
    assert decode_point(p, words) == float(value)


@given(st.floats(allow_nan=False, width=32), st.sampled_from([B, L]), st.sampled_from([B, L]))
def test_float_roundtrip(value: float, bo: ByteOrder, wo: ByteOrder) -> None:
    for ptype in ("f32", "f64"):
        p = _p(ptype, bo, wo)
        assert decode_point(p, encode_point(p, value)) == value


def test_profile_parses_every_type() -> None:
    profile = all_types_profile()
    assert {p.type for p in profile.points} == set(PointType)
    assert set(ALL_TYPES_VALUES) == {p.name for p in profile.points}


def test_profile_errors_name_every_key() -> None:
    table = all_types_table()
    table["unit_id"] = 300
    table["bogus"] = 1
    table["points"][0]["type"] = "u128"
    table["points"][1]["table"] = "coil"  # a coil with type u16
    table["points"][2]["name"] = table["points"][3]["name"]
    with pytest.raises(ConfigError) as err:
        parse_profile(table, "sources.tx.profile")
    keys = {i.key for i in err.value.issues}
    assert {
        "sources.tx.profile.unit_id",
        "sources.tx.profile.bogus",
        "sources.tx.profile.points[0].type",
        "sources.tx.profile.points[1].type",
        "sources.tx.profile.points",
    } <= keys


def test_points_that_read_the_same_register_are_refused() -> None:
    # A u32 at 10 and an f32 at 11 share register 11: one address is a typo. Bits of one
    # register, and a whole register beside its bits, are fine.
    raw = [
        {"name": "a", "table": "holding", "address": 10, "type": "u32"},
        {"name": "b", "table": "holding", "address": 11, "type": "f32"},
        {"name": "s", "table": "holding", "address": 20, "type": "u16"},
        {"name": "s0", "table": "holding", "address": 20, "type": "bit", "bit": 0},
        {"name": "s1", "table": "holding", "address": 20, "type": "bit", "bit": 1},
        {"name": "i", "table": "input", "address": 10, "type": "u32"},
    ]
    with pytest.raises(ConfigError) as err:
        parse_profile({"points": raw})
    (issue,) = err.value.issues
    assert issue.key == "points" and "'a' overlaps 'b' at 11" in issue.message


def _profile(points: list[tuple[str, int, str]], **kw: object) -> object:
    raw = [{"name": f"p{i}", "table": t, "address": a, "type": ty}
           for i, (t, a, ty) in enumerate(points)]  # fmt: skip
    return parse_profile({"points": raw, **kw})


def test_plan_merges_within_gap_and_splits_tables() -> None:
    prof = _profile([("holding", 0, "u16"), ("holding", 5, "f32"), ("holding", 20, "u16"),
                     ("input", 0, "u16"), ("coil", 3, "bool"), ("coil", 1000, "bool")],
                    max_gap=8)  # fmt: skip
    plan = plan_reads(prof)  # type: ignore[arg-type]
    got = [(r.table.value, r.address, r.count, r.points) for r in plan]
    assert got == [
        ("coil", 3, 1, (4,)),
        ("coil", 1000, 1, (5,)),
        ("holding", 0, 7, (0, 1)),
        ("holding", 20, 1, (2,)),
        ("input", 0, 1, (3,)),
    ]


def test_plan_respects_protocol_ceilings() -> None:
    regs = [("holding", a, "u16") for a in range(0, 300)]
    bits = [("coil", a, "bool") for a in range(0, 4500)]
    plan = plan_reads(_profile(regs + bits, max_gap=0))  # type: ignore[arg-type]
    assert [r.count for r in plan if r.table is Table.HOLDING] == [125, 125, 50]
    assert [r.count for r in plan if r.table is Table.COIL] == [2000, 2000, 500]


_WORDS = {"u16": 1, "u32": 2, "f64": 4}


@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["u16", "u32", "f64"])),
                min_size=1, max_size=60),
       st.integers(0, 20), st.integers(4, 125), st.randoms())  # fmt: skip
def test_plan_covers_every_point_once(
    spaced: list[tuple[int, str]], gap: int, limit: int, rnd: random.Random
) -> None:
    pts, end = [], 0  # points apart by the drawn gaps (profiles refuse overlaps), any order
    for space, t in spaced:
        pts.append((end + space, t))
        end += space + _WORDS[t]
    rnd.shuffle(pts)
    prof = _profile([("holding", a, t) for a, t in pts], max_gap=gap, max_registers=limit)
    plan = plan_reads(prof)  # type: ignore[arg-type]
    seen = sorted(i for r in plan for i in r.points)
    assert seen == list(range(len(pts)))
    for r in plan:
        assert r.count <= limit
        for i in r.points:
            p = prof.points[i]  # type: ignore[attr-defined]
            assert r.address <= p.address and p.address + p.count <= r.end


def test_decode_read_refuses_short_answers() -> None:
    prof = all_types_profile()
    req = plan_reads(prof)[0]
    with pytest.raises(DecodeError):
        decode_read(req, prof.points, [0] * (req.count - 1))
    if req.table.is_bits:  # bit answers are padded to whole bytes: longer is fine
        assert decode_read(req, prof.points, [True] * (req.count + 7))


@pytest.mark.parametrize("gap", [0, 8, 40])
def test_compiled_decoder_matches_point_by_point(gap: int) -> None:
    from dataclasses import replace

    from adapters.modbus.decode import ReadDecoder

    prof = replace(all_types_profile(), max_gap=gap)
    for req in plan_reads(prof):
        regs = [0] * req.count
        for i in req.points:
            p = prof.points[i]
            lo = p.address - req.address
            words = encode_point(p, ALL_TYPES_VALUES[p.name])
            if p.type is PointType.BIT:
                regs[lo] |= words[0] << p.bit
            else:
                regs[lo : lo + len(words)] = words
        expected = decode_read(req, prof.points, regs)
        fast, slow = ReadDecoder(req, prof.points).decode(regs)
        dec = ReadDecoder(req, prof.points)
        got = dict(zip(dec.fast, fast, strict=True)) | slow
        assert got == expected
        with pytest.raises(DecodeError):
            dec.decode(regs[:-1])
        if req.table.is_bits:
            continue
        # the poller's path: the answer's register bytes as they came off the wire
        raw = b"".join(w.to_bytes(2, "big") for w in regs)
        fast_r, slow_r = dec.decode_raw(raw)
        assert dict(zip(dec.fast, fast_r, strict=True)) | slow_r == expected
        with pytest.raises(DecodeError):
            dec.decode_raw(raw[:-2])


_FIXED = ("u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_FIXED),
            st.sampled_from([B, L]),
            st.sampled_from([B, L]),
            st.integers(0, 3),  # registers skipped before the point
            st.sampled_from([1.0, 0.1, 2.5]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.data(),
)
def test_answer_bytes_decode_like_the_registers(
    specs: list[tuple[str, ByteOrder, ByteOrder, int, float]], data: st.DataObject
) -> None:
    """Blocks of fixed-width points in any orders, holes and scales: decoding the answer's
    bytes in place gives what decoding its registers point by point gives."""
    from adapters.modbus.decode import ReadDecoder
    from adapters.modbus.plan import ReadRequest

    points, address = [], 0
    for k, (ptype, bo, wo, hole, scale) in enumerate(specs):
        address += hole
        p = Point(f"p{k}", Table.HOLDING, address, PointType(ptype), bo, wo, scale=scale)
        points.append(p)
        address += p.count
    req = ReadRequest(1, Table.HOLDING, 0, address, tuple(range(len(points))))
    raw = data.draw(st.binary(min_size=2 * address, max_size=2 * address))
    regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    expected = decode_read(req, points, regs)
    dec = ReadDecoder(req, points)
    fast, slow = dec.decode_raw(raw)
    got = dict(zip(dec.fast, fast, strict=True)) | slow
    assert got.keys() == expected.keys()
    for i, want in expected.items():
        # as the row sees them: float64 (the block keeps integers exact until then)
        a, b = float(got[i]), float(want)
        assert a == b or (math.isnan(a) and math.isnan(b))


def test_raw_register_answer_keeps_the_bytes_and_never_raises_on_a_bad_count() -> None:
    # A raise here happens inside pymodbus's data_received and drops the connection; the
    # count is checked against the request by DeviceState.apply_raw_at instead.
    from adapters.modbus.responses import RawHoldingRegisters, RawInputRegisters

    rr = RawInputRegisters()
    rr.decode(bytes([4, 0x12, 0x34, 0xAB, 0xCD]))
    assert rr.function_code == 4
    assert rr.raw == bytes([0x12, 0x34, 0xAB, 0xCD])
    assert rr.encode() == bytes([4, 0x12, 0x34, 0xAB, 0xCD])
    for bad, kept in ((bytes([5, 1, 2, 3, 4, 5]), 5), (bytes([6, 1, 2]), 2), (b"", 0)):
        rr = RawHoldingRegisters()
        rr.decode(bad)  # odd count; count too long; nothing at all
        assert len(rr.raw) == kept
