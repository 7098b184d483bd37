"""Register-read answers kept as the bytes on the wire, for the poller's client.

pymodbus turns every register-read answer into a Python list, one ``struct.unpack`` and
one ``append`` per register, and formats that list into a debug message nobody reads,
before our decoder packs the list back into bytes to read its points with one
precompiled ``struct`` format. Those round trips were about a fifth of a read's CPU
time. ``RawHoldingRegisters`` and ``RawInputRegisters`` replace pymodbus's answers to
function codes 3 and 4 on the poller's own client (``ModbusBaseClient.register``, the
documented hook for custom responses; other clients and the server keep the stock
classes): they keep the register bytes (``raw``, big-endian, two bytes per register),
which ``ReadDecoder.decode_raw`` reads in place once ``DeviceState.apply_raw_at`` has
checked their count. Framing (MBAP or RTU with its CRC), transaction ids, unit ids and
exception answers are still pymodbus's.
"""

from __future__ import annotations

__all__ = ["RawHoldingRegisters", "RawInputRegisters", "register_raw_responses"]

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU


class _RawRegisters(ModbusPDU):
    rtu_byte_count_pos = 2  # RTU framing finds the length in the byte-count field
    raw: bytes = b""

    def decode(self, data: bytes) -> None:
        """``data``: the byte count, then the register bytes (MODBUS v1.1b3 6.3/6.4).

        Never raises: an exception here is raised inside pymodbus's ``data_received``,
        which drops the connection and every device's reads with it. A byte count that
        does not fit keeps what came, and the poller counts the answer as garbage
        (``DeviceState.apply_raw_at`` wants exactly two bytes per register asked)."""
        count = int(data[0]) if data else 0
        self.raw = bytes(data[1 : 1 + count])

    def encode(self) -> bytes:
        return bytes((len(self.raw),)) + self.raw

    def __str__(self) -> str:
        # pymodbus formats every decoded answer for a debug line; keep that cheap
        return f"{type(self).__name__}(dev_id={self.dev_id}, bytes={len(self.raw)})"


class RawHoldingRegisters(_RawRegisters):
    """Answer to Read Holding Registers (function code 3), bytes kept."""

    function_code = 3


class RawInputRegisters(_RawRegisters):
    """Answer to Read Input Registers (function code 4), bytes kept."""

    function_code = 4


def register_raw_responses(client: AsyncModbusTcpClient) -> None:
    """Make ``client`` answer register reads with the raw classes (this client only)."""
    client.register(RawHoldingRegisters)
    client.register(RawInputRegisters)
