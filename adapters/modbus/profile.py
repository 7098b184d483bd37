"""Modbus device profiles: one TOML file describes what a device holds and how to read it.

```toml
name = "transformer-monitor"   # for logs
kind = "transformer"           # routes the stream's windows to the asset-health detectors
unit_id = 1
poll_interval_s = 1.0
timeout_s = 1.0
max_gap = 8                    # registers (or bits) a merged read may skip over
stale_after_s = 0.0            # 0: three poll intervals

[params]                       # nameplate and model constants handed to the detectors
rated_current_a = 1000.0

[[points]]
name = "top_oil_c"
table = "input"                # coil | discrete_input | holding | input
address = 10                   # protocol address, 0-based (register 30011 is address 10)
type = "i16"                   # bool u16 i16 u32 i32 u64 i64 f32 f64 string bit
scale = 0.1                    # engineering value = raw * scale + offset
offset = 0.0
unit = "degC"
byte_order = "big"             # within each 16-bit register (Modbus is big-endian)
word_order = "big"             # "little": least significant register first
deadband = 0.0                 # changes smaller than this keep the last value
# bit = 3                      # type "bit": which bit (0 = LSB) of the register
# length = 8                   # type "string": registers (2 characters each)
```
"""

from __future__ import annotations

__all__ = [
    "ByteOrder",
    "DeviceProfile",
    "Point",
    "PointType",
    "Table",
    "load_profile",
    "parse_profile",
]

import enum
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.core import ConfigError, ConfigIssue


class Table(enum.StrEnum):
    """The four Modbus data tables (Modbus Application Protocol v1.1b3, clause 4.3)."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class PointType(enum.StrEnum):
    BOOL = "bool"
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"
    BIT = "bit"  # one bit of a register


class ByteOrder(enum.StrEnum):
    BIG = "big"
    LITTLE = "little"


#: Registers each fixed-width type spans (strings give their own ``length``).
WIDTH: dict[PointType, int] = {
    PointType.BOOL: 1, PointType.U16: 1, PointType.I16: 1, PointType.BIT: 1,
    PointType.U32: 2, PointType.I32: 2, PointType.F32: 2,
    PointType.U64: 4, PointType.I64: 4, PointType.F64: 4,
}  # fmt: skip

#: Protocol ceilings per read (MODBUS Application Protocol v1.1b3, 6.1-6.4).
MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a device. ``count`` is the span in registers (bits for bit tables)."""

    name: str
    table: Table
    address: int
    type: PointType = PointType.U16
    byte_order: ByteOrder = ByteOrder.BIG
    word_order: ByteOrder = ByteOrder.BIG
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    deadband: float = 0.0
    bit: int = 0
    length: int = 0

    @property
    def count(self) -> int:
        if self.table.is_bits:
            return 1
        if self.type is PointType.STRING:
            return self.length
        return WIDTH[self.type]

    @property
    def numeric(self) -> bool:
        """Strings are decoded for ``probe`` but carry no number for the pipeline."""
        return self.type is not PointType.STRING


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    points: tuple[Point, ...]
    kind: str = ""
    unit_id: int = 1
    poll_interval_s: float = 1.0
    timeout_s: float = 1.0
    max_gap: int = 8
    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    stale_after_s: float = 0.0
    params: tuple[tuple[str, float], ...] = ()

    @property
    def stale_ns(self) -> int:
        return round((self.stale_after_s or 3 * self.poll_interval_s) * 1e9)

    def numeric_points(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.numeric)


_PROFILE_KEYS = {
    "name", "kind", "unit_id", "poll_interval_s", "timeout_s", "max_gap", "max_registers",
    "max_bits", "stale_after_s", "params", "points",
}  # fmt: skip
_POINT_KEYS = {
    "name", "table", "address", "type", "byte_order", "word_order", "scale", "offset",
    "unit", "deadband", "bit", "length",
}  # fmt: skip


class _Issues:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[ConfigIssue] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(ConfigIssue(f"{self.prefix}.{key}" if self.prefix else key, message))

    def number(self, t: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
        v = t.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            self.add(key, f"expected a number in [{lo:g}, {hi:g}], got {v!r}")
            return default
        return float(v)

    def integer(self, t: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
        v = t.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.add(key, f"expected an integer in [{lo}, {hi}], got {v!r}")
            return default
        return v

    def choice(self, t: Mapping[str, Any], key: str, enum_cls: type[Any], default: Any) -> Any:
        v = t.get(key, default)
        try:
            return enum_cls(v)
        except ValueError:
            self.add(key, f"{v!r} is not one of {', '.join(m.value for m in enum_cls)}")
            return default


def parse_profile(table: Mapping[str, Any], prefix: str = "") -> DeviceProfile:
    """Validate a parsed profile table; ``ConfigError`` lists every problem by key."""
    iss = _Issues(prefix)
    for key in sorted(set(table) - _PROFILE_KEYS):
        iss.add(key, "unknown key")
    name = table.get("name", "device")
    kind = table.get("kind", "")
    if not isinstance(name, str) or not isinstance(kind, str):
        iss.add("name", "name and kind must be strings")
        name, kind = "device", ""
    unit_id = iss.integer(table, "unit_id", 1, 0, 255)
    interval = iss.number(table, "poll_interval_s", 1.0, 0.001, 86400.0)
    timeout = iss.number(table, "timeout_s", 1.0, 0.001, 600.0)
    max_gap = iss.integer(table, "max_gap", 8, 0, MAX_BITS)
    max_regs = iss.integer(table, "max_registers", MAX_REGISTERS, 1, MAX_REGISTERS)
    max_bits = iss.integer(table, "max_bits", MAX_BITS, 1, MAX_BITS)
    stale = iss.number(table, "stale_after_s", 0.0, 0.0, 86400.0)
    params = _params(table.get("params", {}), iss)
    raw_points = table.get("points")
    points: list[Point] = []
    if not isinstance(raw_points, list) or not raw_points:
        iss.add("points", "required: at least one [[points]] table")
    else:
        for i, raw in enumerate(raw_points):
            point = _point(raw, _Issues(f"{iss.prefix}.points[{i}]".lstrip(".")), iss)
            if point is not None:
                points.append(point)
    names = [p.name for p in points]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        iss.add("points", f"duplicate point name {dup!r}")
    for message in _overlaps(points):
        iss.add("points", message)
    if iss.items:
        raise ConfigError(iss.items)
    return DeviceProfile(
        name=name, points=tuple(points), kind=kind, unit_id=unit_id, poll_interval_s=interval,
        timeout_s=timeout, max_gap=max_gap, max_registers=max_regs, max_bits=max_bits,
        stale_after_s=stale, params=params,
    )  # fmt: skip


def _overlaps(points: list[Point]) -> list[str]:
    """Two points that read the same register (a u32 at 10 and an f32 at 11): one of the
    addresses is wrong. Bits of one register (type bit) may share it with each other and
    with a whole-register point."""
    spans = sorted(
        (p.table.value, p.address, p.address + p.count, p.name)
        for p in points
        if p.type is not PointType.BIT
    )
    out = []
    for (t1, lo1, hi1, n1), (t2, lo2, _, n2) in itertools.pairwise(spans):
        if t1 == t2 and lo2 < hi1:
            out.append(f"{t1} {lo1}..{hi1 - 1} of {n1!r} overlaps {n2!r} at {lo2}")
    return out


def _params(raw: object, iss: _Issues) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping):
        iss.add("params", "expected a table of numbers")
        return ()
    out = []
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            iss.add(f"params.{k}", f"expected a finite number, got {v!r}")
        else:
            out.append((str(k), float(v)))
    return tuple(out)


def _point(raw: object, iss: _Issues, parent: _Issues) -> Point | None:
    if not isinstance(raw, Mapping):
        parent.add(iss.prefix, "expected a table")
        return None
    for key in sorted(set(raw) - _POINT_KEYS):
        iss.add(key, "unknown key")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        iss.add("name", "required: a non-empty string")
        name = ""
    table = iss.choice(raw, "table", Table, None)
    if "table" not in raw:
        iss.add("table", "required")
    ptype = iss.choice(raw, "type", PointType, PointType.BOOL if table and table.is_bits else "u16")
    address = iss.integer(raw, "address", -1, 0, 0xFFFF)
    if "address" not in raw:
        iss.add("address", "required")
    unit = raw.get("unit", "")
    if not isinstance(unit, str):
        iss.add("unit", "expected a string")
        unit = ""
    point = Point(
        name=name, table=table or Table.HOLDING, address=max(address, 0),
        type=ptype if isinstance(ptype, PointType) else PointType.U16,
        byte_order=iss.choice(raw, "byte_order", ByteOrder, ByteOrder.BIG),
        word_order=iss.choice(raw, "word_order", ByteOrder, ByteOrder.BIG),
        scale=iss.number(raw, "scale", 1.0, -1e12, 1e12),
        offset=iss.number(raw, "offset", 0.0, -1e12, 1e12),
        unit=unit, deadband=iss.number(raw, "deadband", 0.0, 0.0, 1e12),
        bit=iss.integer(raw, "bit", 0, 0, 15), length=iss.integer(raw, "length", 0, 0, 123),
    )  # fmt: skip
    if table is not None and table.is_bits and point.type is not PointType.BOOL:
        iss.add("type", f"a {table.value} holds single bits: type must be bool")
    if table is not None and not table.is_bits and point.type is PointType.BOOL:
        iss.add("type", "bool is for coils and discrete inputs; use bit for a register bit")
    if point.type is PointType.STRING and point.length < 1:
        iss.add("length", "a string needs length >= 1 (registers)")
    if point.address + point.count > 0x10000:
        iss.add("address", "the point runs past address 65535")
    parent.items.extend(iss.items)
    return None if iss.items else point


def load_profile(path: str | Path, prefix: str = "") -> DeviceProfile:
    """Read and validate a profile file; errors name ``prefix`` or the file."""
    p = Path(path)
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read profile {p}: {exc.strerror or exc}", key=prefix) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {p}: not valid TOML: {exc}", key=prefix) from exc
    return parse_profile(table, prefix or str(p))
