"""Modbus/TCP in a capture: MBAP frames of each direction, requests paired with responses.

Sans-IO. MBAP header (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1.3):
transaction id (2), protocol id (2, = 0), length (2, bytes that follow), unit id (1), then
the PDU (function code + data). A request from client to server and its response share
(connection, transaction id, unit id). Read responses (function codes 1-4, Modbus
Application Protocol v1.1b3 6.1-6.4) are decoded with a device profile's points by
``adapters.modbus.decode``; exceptions (function code | 0x80) are counted.
"""

from __future__ import annotations

__all__ = ["MbapFrame", "ModbusRead", "PairStats", "pair_reads", "split_mbap"]

import bisect
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from adapters.capture.pcap import Flow
from adapters.modbus.profile import Table

_MBAP = struct.Struct(">HHHB")
_TABLES = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING, 4: Table.INPUT}


@dataclass(frozen=True, slots=True)
class MbapFrame:
    time_ns: int
    transaction: int
    unit: int
    pdu: bytes


@dataclass(frozen=True, slots=True)
class ModbusRead:
    """One answered read: ``values`` are registers, or bits for coil/discrete tables."""

    time_ns: int  # time of the response
    server: str
    unit: int
    table: Table
    address: int
    values: tuple[int, ...]


@dataclass(slots=True)
class PairStats:
    requests: int = 0
    responses: int = 0
    paired: int = 0
    exceptions: int = 0
    unpaired: int = 0
    malformed: int = 0
    other_functions: int = 0


def split_mbap(flow: Flow, stats: PairStats) -> list[MbapFrame]:
    """The MBAP frames of one direction, in stream order (frames may span chunks)."""
    out: list[MbapFrame] = []
    buf, times, pos = flow.payload(), _byte_times(flow), 0
    while len(buf) - pos >= _MBAP.size:
        tid, proto, length, unit = _MBAP.unpack_from(buf, pos)
        if proto != 0 or not 2 <= length <= 254:
            stats.malformed += 1
            return out  # lost framing: the rest of this direction cannot be trusted
        end = pos + 6 + length
        if end > len(buf):
            break
        out.append(MbapFrame(times(end - 1), tid, unit, bytes(buf[pos + 7 : end])))
        pos = end
    return out


def _byte_times(flow: Flow) -> Callable[[int], int]:
    """Capture time of the chunk holding byte ``i`` of the payload."""
    ends, acc = [], 0
    for _, chunk in flow.chunks:
        acc += len(chunk)
        ends.append(acc)

    def at(i: int) -> int:
        return flow.chunks[min(bisect.bisect_right(ends, i), len(ends) - 1)][0]

    return at


def pair_reads(
    requests: Iterable[MbapFrame], responses: Iterable[MbapFrame], server: str, stats: PairStats
) -> list[ModbusRead]:
    """Answered reads of one connection, in response order."""
    asked: dict[tuple[int, int], MbapFrame] = {}
    for r in requests:
        stats.requests += 1
        asked[(r.transaction, r.unit)] = r
    out = []
    for resp in responses:
        stats.responses += 1
        req = asked.pop((resp.transaction, resp.unit), None)
        if req is None:
            stats.unpaired += 1
            continue
        stats.paired += 1
        read = _read(req, resp, server, stats)
        if read is not None:
            out.append(read)
    stats.unpaired += len(asked)
    return out


def _read(req: MbapFrame, resp: MbapFrame, server: str, stats: PairStats) -> ModbusRead | None:
    fc = resp.pdu[0] if resp.pdu else 0
    if fc & 0x80:
        stats.exceptions += 1
        return None
    table = _TABLES.get(fc)
    if table is None or len(req.pdu) < 5 or req.pdu[0] != fc or len(resp.pdu) < 2:
        stats.other_functions += 1
        return None
    address, count = struct.unpack_from(">HH", req.pdu, 1)
    data = resp.pdu[2 : 2 + resp.pdu[1]]
    if table.is_bits:
        bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(min(count, len(data) * 8))]
        values: tuple[int, ...] = tuple(bits)
    else:
        if len(data) < 2 * count:
            stats.malformed += 1
            return None
        values = struct.unpack(f">{count}H", data[: 2 * count])
    return ModbusRead(resp.time_ns, server, resp.unit, table, address, values)
