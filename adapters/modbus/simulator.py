"""A Modbus device simulator on a pymodbus server: a profile's points, live values.

The simulator serves every point of a ``DeviceProfile`` at the addresses, types and
byte/word orders the profile gives, encoding with ``encode_point`` (the inverse of the
poller's decoder, so both ends share one definition of every layout). Values come from a
``values(unit_id, t_s)`` callable evaluated when a request arrives: the physics lives
outside (the app wires in the transformer plant of ``edgepipe.health``), the adapter
only speaks Modbus.

Addresses outside the profile's points, and those of ``refuse`` points, answer exception
2 (illegal data address). Several unit ids share one listening port, like devices on the
serial line behind a TCP gateway; ``framer="rtu"`` speaks RTU frames over TCP.
"""

from __future__ import annotations

__all__ = ["ModbusSimulator", "ValuesFn"]

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any

from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.modbus.decode import encode_point
from adapters.modbus.plan import FUNCTION_CODE
from adapters.modbus.profile import DeviceProfile, Point, PointType, Table

#: unit id, seconds since start -> point name -> value (missing names keep 0)
ValuesFn = Callable[[int, float], Mapping[str, float | str]]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_TABLE_OF_FC = {fc: t for t, fc in FUNCTION_CODE.items()}
_TABLE_OF_FC.update({5: Table.COIL, 15: Table.COIL, 6: Table.HOLDING, 16: Table.HOLDING})
_BLOCK_ORDER = (Table.COIL, Table.DISCRETE_INPUT, Table.HOLDING, Table.INPUT)
_EMPTY = {
    Table.COIL: SimData(0, values=[False] * 16, datatype=DataType.BITS),
    Table.DISCRETE_INPUT: SimData(0, values=[False] * 16, datatype=DataType.BITS),
    Table.HOLDING: SimData(0, datatype=DataType.INVALID),
    Table.INPUT: SimData(0, datatype=DataType.INVALID),
}


class ModbusSimulator:
    """Serves ``profile`` for each of ``unit_ids`` on ``host:port`` until stopped."""

    def __init__(
        self,
        profile: DeviceProfile,
        values: ValuesFn,
        *,
        host: str = "127.0.0.1",
        port: int = 5020,
        unit_ids: Collection[int] = (1,),
        framer: str = "socket",
        refuse: Collection[str] = (),
    ) -> None:
        self.profile = profile
        self.values = values
        self.host = host
        self.port = port
        self.unit_ids = tuple(unit_ids)
        self.framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self.refuse = frozenset(refuse)
        self.requests = 0
        self._t0 = time.monotonic()
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; returns once the port accepts connections."""
        devices = [self._device(u) for u in self.unit_ids]
        self._server = ModbusTcpServer(devices, address=(self.host, self.port), framer=self.framer)
        self._task = asyncio.create_task(self._server.serve_forever())
        for _ in range(200):
            if self._server.transport is not None:
                return
            await asyncio.sleep(0.01)
        raise OSError(f"modbus simulator did not start on {self.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._server = None
        self._task = None

    async def __aenter__(self) -> ModbusSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _device(self, unit: int) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in _BLOCK_ORDER:
            mine = [p for p in self.profile.points if p.table is table]
            pts = [p for p in mine if p.name not in self.refuse]
            refused = [p for p in mine if p.name in self.refuse]
            # pymodbus wants every block non-empty: a table without points gets one
            # register (or 16 bits) that nothing maps to.
            blocks.append(_blocks(table, pts, self.profile.max_gap, refused) or [_EMPTY[table]])
        return SimDevice(
            id=unit,
            simdata=(blocks[0], blocks[1], blocks[2], blocks[3]),
            action=partial(self._action, unit),
        )

    async def _action(
        self,
        unit: int,
        fc: int,
        start: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: Any,
    ) -> None:
        """Refresh the block the request reads from the current values."""
        self.requests += 1
        table = _TABLE_OF_FC.get(fc)
        if table is None:
            return
        now = self.values(unit, time.monotonic() - self._t0)
        for p in self.profile.points:
            if p.table is table and p.name in now and p.name not in self.refuse:
                _store(p, now[p.name], start, registers)


def _store(p: Point, value: float | str, start: int, registers: list[int]) -> None:
    words = encode_point(p, value)
    if p.table.is_bits:
        reg, bit = divmod(p.address, 16)
        i = reg - start
        registers[i] = registers[i] | (1 << bit) if words[0] else registers[i] & ~(1 << bit)
        return
    lo = p.address - start
    if p.type is PointType.BIT:  # several points may share the register: touch one bit
        mask = 1 << p.bit
        registers[lo] = registers[lo] | mask if words[0] else registers[lo] & ~mask
        return
    registers[lo : lo + len(words)] = words


def _blocks(table: Table, points: list[Point], gap: int, refused: list[Point]) -> list[SimData]:
    """Contiguous valid ranges covering ``points``. Holes up to ``gap`` addresses are
    filled (so the planner's merged reads work, as on most real devices), but never over
    a refused point."""
    if table.is_bits:
        regs = sorted({p.address // 16 for p in points})
        if not regs:
            return []
        return [SimData(regs[0], values=[False] * 16 * (regs[-1] - regs[0] + 1),
                        datatype=DataType.BITS)]  # fmt: skip
    spans = sorted((p.address, p.address + p.count) for p in points)
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    for r in refused:
        merged = [part for m in merged for part in _cut(m, r.address, r.address + r.count)]
    return [SimData(lo, count=hi - lo, values=0, datatype=DataType.REGISTERS) for lo, hi in merged]


def _cut(span: list[int], lo: int, hi: int) -> list[list[int]]:
    out = [[span[0], min(span[1], lo)], [max(span[0], hi), span[1]]]
    return [s for s in out if s[1] > s[0]] if lo < span[1] and hi > span[0] else [span]
