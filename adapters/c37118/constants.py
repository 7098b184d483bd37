"""Wire constants of IEEE C37.118.2-2011 (and the 2005 edition it extends).

Every frame starts with the common header of clause 6.2 (Table 2)::

     0      1      2      3      4      5      6 .. 9      10 .. 13
    +------+------+------+------+------+------+----------+-----------+
    | 0xAA | T|V  |  FRAMESIZE  |   IDCODE    |   SOC    |  FRACSEC  |  ... CHK (2)
    +------+------+------+------+------+------+----------+-----------+

``T`` is the frame type (bits 6-4 of the second SYNC byte, :class:`FrameType`), ``V`` the
version (bits 3-0: 1 = 2005, 2 = 2011). FRACSEC carries the time-quality byte
(:class:`TimeQuality`, Table 3) above a 24-bit fraction of a second. CHK is
CRC-16/CCITT-FALSE over everything before it (clause 6.2, Annex B).
"""

from __future__ import annotations

__all__ = [
    "SYNC_BYTE",
    "HEADER_SIZE",
    "MIN_FRAME_SIZE",
    "MAX_FRAME_SIZE",
    "ABSENT_INT16",
    "FrameType",
    "Command",
    "Stat",
    "DataError",
    "TriggerReason",
    "UnlockedTime",
    "Format",
    "TimeQuality",
    "crc16",
]

import enum
from binascii import crc_hqx

SYNC_BYTE = 0xAA
#: SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC (clause 6.2, Table 2).
HEADER_SIZE = 14
#: The common header plus CHK: an empty header frame is the smallest legal frame.
MIN_FRAME_SIZE = HEADER_SIZE + 2
#: FRAMESIZE is an unsigned 16-bit count of the whole frame.
MAX_FRAME_SIZE = 0xFFFF
#: Absent or invalid 16-bit integer data (C37.118.2-2011 clause 6.3, Table 5 notes).
ABSENT_INT16 = -32768


class FrameType(enum.IntEnum):
    """Frame type in bits 6-4 of the second SYNC byte (clause 6.2, Table 2)."""

    DATA = 0
    HEADER = 1
    CFG1 = 2
    CFG2 = 3
    COMMAND = 4
    CFG3 = 5


class Command(enum.IntEnum):
    """CMD word of a command frame (clause 6.5, Table 15)."""

    TURN_OFF = 1
    TURN_ON = 2
    SEND_HEADER = 3
    SEND_CFG1 = 4
    SEND_CFG2 = 5
    SEND_CFG3 = 6
    EXTENDED = 8


class Stat(enum.IntFlag):
    """The STAT word of each PMU block in a data frame (C37.118.2-2011 Table 7).

    Multi-bit fields are masks here; :class:`DataError`, :class:`UnlockedTime` and
    :class:`TriggerReason` name their values.
    """

    TRIGGER_REASON = 0x000F  # bits 03-00
    UNLOCKED_TIME = 0x0030  # bits 05-04
    TIME_QUALITY = 0x01C0  # bits 08-06: PMU time quality (Table 8)
    DATA_MODIFIED = 0x0200  # bit 09: data modified by post-processing
    CONFIG_CHANGED = 0x0400  # bit 10: config changes within one minute
    TRIGGER = 0x0800  # bit 11: PMU trigger detected
    SORT_BY_ARRIVAL = 0x1000  # bit 12: 0 = sorted by time stamp
    SYNC_LOST = 0x2000  # bit 13: PMU not synchronised to UTC
    DATA_ERROR = 0xC000  # bits 15-14, see DataError


class DataError(enum.IntEnum):
    """STAT bits 15-14 (Table 7)."""

    GOOD = 0
    PMU_ERROR_NO_INFO = 1
    TEST_MODE = 2  # or absent data tags inserted by a PDC
    PMU_ERROR = 3  # do not use the values


class UnlockedTime(enum.IntEnum):
    """STAT bits 05-04: how long the PMU has been without time lock (Table 7)."""

    LOCKED_OR_UNDER_10S = 0
    UNDER_100S = 1
    UNDER_1000S = 2
    OVER_1000S = 3


class TriggerReason(enum.IntEnum):
    """STAT bits 03-00 (Table 7); 8-15 are user defined."""

    MANUAL = 0
    MAGNITUDE_LOW = 1
    MAGNITUDE_HIGH = 2
    PHASE_ANGLE_DIFF = 3
    FREQUENCY_HIGH_OR_LOW = 4
    DF_DT_HIGH = 5
    RESERVED = 6
    DIGITAL = 7


class Format(enum.IntFlag):
    """FORMAT word of a PMU in a configuration frame (Table 9). A clear bit means int16
    (and rectangular for ``PHASOR_POLAR``)."""

    PHASOR_POLAR = 0x0001
    PHASOR_FLOAT = 0x0002
    ANALOG_FLOAT = 0x0004
    FREQ_FLOAT = 0x0008


class TimeQuality(enum.IntFlag):
    """Upper byte of FRACSEC (C37.118.2-2011 Table 3)."""

    MESSAGE_TIME_QUALITY = 0x0F  # bits 3-0, Table 4 (0 = locked, 0xF = fault)
    LEAP_SECOND_PENDING = 0x10
    LEAP_SECOND_OCCURRED = 0x20
    LEAP_SECOND_DELETE = 0x40  # direction: 0 = add, 1 = delete
    RESERVED = 0x80


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CHK: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), clause 6.2 / Annex B."""
    return crc_hqx(data, 0xFFFF)
