"""Value decoding (sans-IO, pure): registers or bits of one read in, point values out.

Modbus registers are 16-bit big-endian on the wire (MODBUS Application Protocol v1.1b3,
clause 4.2); how a device packs wider values into several registers is its own choice,
so each point names two orders:

- ``byte_order``: the byte order inside each register ("little" swaps the two bytes);
- ``word_order``: "big" puts the most significant register first (ABCD), "little" the
  least significant first (CDAB, common on PLCs).

Integers are two's complement, floats IEEE 754; strings hold two characters per register,
NULs and trailing blanks removed. The engineering value is ``raw * scale + offset``.
"""

from __future__ import annotations

__all__ = ["DecodeError", "ReadDecoder", "decode_point", "decode_read", "encode_point"]

import struct
from collections.abc import Sequence

from adapters.modbus.plan import ReadRequest
from adapters.modbus.profile import ByteOrder, Point, PointType
from edgepipe.core import ProtocolError

_STRUCT: dict[PointType, str] = {
    PointType.U16: ">H", PointType.I16: ">h", PointType.U32: ">I", PointType.I32: ">i",
    PointType.U64: ">Q", PointType.I64: ">q", PointType.F32: ">f", PointType.F64: ">d",
}  # fmt: skip


class DecodeError(ProtocolError):
    """A response does not fit its request (wrong count): the device answers garbage."""


def _to_bytes(words: Sequence[int], point: Point) -> bytes:
    regs = list(words) if point.word_order is ByteOrder.BIG else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in regs)
    if point.byte_order is ByteOrder.LITTLE:
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def _from_bytes(raw: bytes, point: Point) -> list[int]:
    if point.byte_order is ByteOrder.LITTLE:
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if point.word_order is ByteOrder.BIG else list(reversed(words))


def decode_point(point: Point, words: Sequence[int]) -> float | str:
    """The value of ``point`` from its own registers (``point.count`` of them)."""
    if point.type is PointType.STRING:
        text = _to_bytes(words, point).decode("latin-1")
        return text.replace("\x00", "").rstrip()
    if point.type is PointType.BIT:
        return float((words[0] >> point.bit) & 1)
    if point.type is PointType.BOOL:
        return float(bool(words[0]))
    (raw,) = struct.unpack(_STRUCT[point.type], _to_bytes(words, point))
    return float(raw) * point.scale + point.offset


def encode_point(point: Point, value: float | str) -> list[int]:
    """Registers (bits as 0/1) holding ``value``: the inverse of ``decode_point``.

    Used by the simulator, so that both ends share one definition of every layout.
    """
    if point.type is PointType.STRING:
        raw = str(value).encode("latin-1")[: 2 * point.length].ljust(2 * point.length, b"\0")
        return _from_bytes(raw, point)
    assert not isinstance(value, str)
    if point.type in (PointType.BOOL, PointType.BIT):
        return [1 if value else 0]
    raw_value = (value - point.offset) / point.scale
    if point.type in (PointType.F32, PointType.F64):
        return _from_bytes(struct.pack(_STRUCT[point.type], raw_value), point)
    fmt = _STRUCT[point.type]
    bits = 8 * struct.calcsize(fmt)
    lo, hi = (0, 2**bits - 1) if fmt[1].isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return _from_bytes(struct.pack(fmt, min(max(round(raw_value), lo), hi)), point)


def decode_read(
    request: ReadRequest, points: Sequence[Point], values: Sequence[int] | Sequence[bool]
) -> dict[int, float | str]:
    """Point index -> value for every point of ``request``.

    ``values`` are the registers (or bits) the device returned. Bit reads come back padded
    to a multiple of 8 (clause 6.1), so only fewer values than asked is an error.
    """
    if len(values) < request.count:
        raise DecodeError(
            f"unit {request.unit_id} fc {request.function_code} @{request.address}: "
            f"asked {request.count} values, got {len(values)}"
        )
    out: dict[int, float | str] = {}
    for i in request.points:
        p = points[i]
        lo = p.address - request.address
        out[i] = decode_point(p, [int(v) for v in values[lo : lo + p.count]])
    return out


class ReadDecoder:
    """``decode_read`` compiled for one request: one ``struct.unpack`` for the whole block.

    The registers of every fixed-width numeric point are put in big-endian order first
    (a precomputed register permutation for word order, the positions to byte-swap for
    byte order), so a single format string with pad bytes for the holes reads them all;
    scale and offset touch only the points that have them. Pure Python on purpose: a read
    holds at most 125 registers, and numpy's per-call cost on arrays that small exceeds
    the work. Bits, booleans, strings and overlapping points take the per-point path.
    This keeps the adapter's cost per poll near a bare pymodbus loop.
    """

    def __init__(self, request: ReadRequest, points: Sequence[Point]) -> None:
        self.request = request
        fast: list[int] = []
        self.slow: list[int] = []
        end = -1
        for i in sorted(request.points, key=lambda k: points[k].address):
            p = points[i]
            ok = p.type in _STRUCT and not request.table.is_bits and p.address >= end
            (fast if ok else self.slow).append(i)
            if ok:
                end = p.address + p.count
        self.points = points
        #: point indices of the values ``decode`` returns first, in that order
        self.fast: tuple[int, ...] = tuple(fast)
        perm = list(range(request.count))
        swap: list[int] = []
        fmt, pos = [">"], request.address
        for i in fast:
            p = points[i]
            lo = p.address - request.address
            if p.word_order is ByteOrder.LITTLE:
                perm[lo : lo + p.count] = perm[lo : lo + p.count][::-1]
            if p.byte_order is ByteOrder.LITTLE:
                swap.extend(range(lo, lo + p.count))
            fmt.append(f"{2 * (p.address - pos)}x" if p.address > pos else "")
            fmt.append(_STRUCT[p.type][1])
            pos = p.address + p.count
        used = pos - request.address if fast else 0
        self._perm = None if perm[:used] == list(range(used)) else perm[:used]
        self._swap = swap
        self._used = used
        self._pack = struct.Struct(f">{used}H")
        self._fmt = struct.Struct("".join(fmt))
        self._words = struct.Struct(f">{request.count}H")
        # the answer's bytes can be read in place: big-endian words in order, no bits
        self._in_place = (
            not request.table.is_bits and self._perm is None and not swap and not self.slow
        )
        self._affine = [
            (k, points[i].scale, points[i].offset)
            for k, i in enumerate(fast)
            if points[i].scale != 1.0 or points[i].offset != 0.0
        ]

    def decode_raw(self, raw: bytes) -> tuple[Sequence[float], dict[int, float | str]]:
        """``decode`` of a register read's answer as the bytes on the wire (two per
        register, big-endian). The common block (registers in order, no byte swaps, no
        strings or bits) is unpacked straight from ``raw``, without a list of registers."""
        if len(raw) < 2 * self.request.count:
            raise DecodeError(
                f"unit {self.request.unit_id} fc {self.request.function_code} "
                f"@{self.request.address}: asked {self.request.count} values, "
                f"got {len(raw) // 2}"
            )
        if not self._in_place:
            return self.decode(self._words.unpack_from(raw))
        out: Sequence[float] = self._fmt.unpack_from(raw)
        return (self._scaled(out) if self._affine else out), {}

    def _scaled(self, out: Sequence[float]) -> list[float]:
        scaled = list(out)
        for k, scale, offset in self._affine:
            scaled[k] = scaled[k] * scale + offset
        return scaled

    def decode(
        self, values: Sequence[int] | Sequence[bool]
    ) -> tuple[Sequence[float], dict[int, float | str]]:
        """(values of ``fast`` points, {point index: value} of the others)."""
        if len(values) < self.request.count:
            raise DecodeError(
                f"unit {self.request.unit_id} fc {self.request.function_code} "
                f"@{self.request.address}: asked {self.request.count} values, got {len(values)}"
            )
        out: Sequence[float] = ()
        if self._used:
            regs = [int(values[j]) for j in self._perm] if self._perm else values[: self._used]
            if self._swap:
                regs = list(regs)
                for j in self._swap:
                    w = regs[j]
                    regs[j] = ((w & 0xFF) << 8) | (w >> 8)
            # integers stay ints (exact, and the row's float64 array converts them)
            out = self._fmt.unpack(self._pack.pack(*regs))
            if self._affine:
                out = self._scaled(out)
        slow: dict[int, float | str] = {}
        for i in self.slow:
            p = self.points[i]
            lo = p.address - self.request.address
            slow[i] = decode_point(p, [int(v) for v in values[lo : lo + p.count]])
        return out, slow
