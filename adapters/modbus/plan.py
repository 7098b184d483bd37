"""Request planning (sans-IO, pure): a profile's points -> the fewest reads that cover them.

Points of one table are sorted by address and merged while the merged read stays within
the protocol ceiling (125 registers for function codes 3/4, 2000 bits for 1/2; MODBUS
Application Protocol v1.1b3 clauses 6.1-6.4) and the hole between two points is at most
``max_gap`` registers (bits). Reading a hole costs bytes but saves a round trip, which on
a serial gateway is the expensive part; a hole may hold unmapped addresses that answer
with an exception, so ``max_gap = 0`` keeps reads to mapped addresses only.
"""

from __future__ import annotations

__all__ = ["FUNCTION_CODE", "ReadRequest", "plan_reads"]

from dataclasses import dataclass

from adapters.modbus.profile import DeviceProfile, Point, Table

#: Read function codes per table (MODBUS Application Protocol v1.1b3, clause 6).
FUNCTION_CODE: dict[Table, int] = {
    Table.COIL: 1,
    Table.DISCRETE_INPUT: 2,
    Table.HOLDING: 3,
    Table.INPUT: 4,
}


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: ``count`` registers (bits) of ``table`` from ``address`` on ``unit_id``.

    ``points`` are indices into the profile's ``points``, each read entirely inside.
    """

    unit_id: int
    table: Table
    address: int
    count: int
    points: tuple[int, ...]

    @property
    def function_code(self) -> int:
        return FUNCTION_CODE[self.table]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(profile: DeviceProfile, unit_id: int | None = None) -> tuple[ReadRequest, ...]:
    """The fewest reads covering every point, in table then address order."""
    unit = profile.unit_id if unit_id is None else unit_id
    out: list[ReadRequest] = []
    for table in Table:
        idx = sorted(
            (i for i, p in enumerate(profile.points) if p.table is table),
            key=lambda i: (profile.points[i].address, -profile.points[i].count),
        )
        limit = profile.max_bits if table.is_bits else profile.max_registers
        out.extend(
            _merge(unit, table, [profile.points[i] for i in idx], idx, limit, profile.max_gap)
        )
    return tuple(out)


def _merge(  # noqa: PLR0917 - private helper, all positional on purpose
    unit: int, table: Table, points: list[Point], idx: list[int], limit: int, gap: int
) -> list[ReadRequest]:
    out: list[ReadRequest] = []
    start = end = -1
    members: list[int] = []
    for i, p in zip(idx, points, strict=True):
        p_end = p.address + p.count
        fits = members and p.address - end <= gap and max(end, p_end) - start <= limit
        if fits:
            end = max(end, p_end)
            members.append(i)
            continue
        if members:
            out.append(ReadRequest(unit, table, start, end - start, tuple(members)))
        start, end, members = p.address, p_end, [i]
    if members:
        out.append(ReadRequest(unit, table, start, end - start, tuple(members)))
    return out
