"""Reusable test material: a profile with every type and byte/word order, and its values."""

from __future__ import annotations

__all__ = ["ALL_TYPES_VALUES", "all_types_profile", "all_types_table"]

from typing import Any

from adapters.modbus.profile import DeviceProfile, parse_profile

# (type, value) pairs chosen so a wrong byte or word order can never decode to the same
# value: every byte of the raw representation differs.
_SAMPLES: tuple[tuple[str, float | str], ...] = (
    ("u16", 0x1234),
    ("i16", -12345),
    ("u32", 0x12345678),
    ("i32", -123456789),
    ("u64", 0x0123456789ABCDEF),
    ("i64", -1234567890123456789),
    ("f32", 3.25),
    ("f64", -1234.5678125),
    ("string", "TX-42"),
)
_ORDERS = (("big", "big"), ("big", "little"), ("little", "big"), ("little", "little"))


def all_types_table() -> dict[str, Any]:
    """The TOML table of the profile: each type in each of the four orders, plus bits."""
    points: list[dict[str, Any]] = []
    address = 0
    for ptype, _ in _SAMPLES:
        for bo, wo in _ORDERS:
            name = f"{ptype}_{bo[0]}{wo[0]}"
            p: dict[str, Any] = {"name": name, "table": "holding", "address": address,
                                 "type": ptype, "byte_order": bo, "word_order": wo}  # fmt: skip
            if ptype == "string":
                p["length"] = 4
            points.append(p)
            address += 4
    points += [
        {"name": "scaled", "table": "input", "address": 0, "type": "i16", "scale": 0.1,
         "offset": -40.0, "unit": "degC"},
        {"name": "flag3", "table": "input", "address": 1, "type": "bit", "bit": 3},
        {"name": "flag15", "table": "input", "address": 1, "type": "bit", "bit": 15},
        {"name": "coil0", "table": "coil", "address": 0},
        {"name": "coil9", "table": "coil", "address": 9},
        {"name": "di5", "table": "discrete_input", "address": 5},
    ]  # fmt: skip
    return {"name": "all-types", "unit_id": 1, "poll_interval_s": 0.1, "timeout_s": 0.5,
            "max_gap": 8, "points": points}  # fmt: skip


def all_types_profile() -> DeviceProfile:
    return parse_profile(all_types_table())


def _values() -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for ptype, value in _SAMPLES:
        for bo, wo in _ORDERS:
            out[f"{ptype}_{bo[0]}{wo[0]}"] = value
    out.update({"scaled": 21.5, "flag3": 1.0, "flag15": 1.0, "coil0": 1.0, "coil9": 1.0,
                "di5": 1.0})  # fmt: skip
    return out


#: What the simulator serves and the poller must read back, point by point.
ALL_TYPES_VALUES: dict[str, float | str] = _values()
