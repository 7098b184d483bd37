"""Whole-frame encoding and decoding (clause 6); see :mod:`adapters.c37118.codec`."""

from __future__ import annotations

__all__ = [
    "CONT_LAST",
    "cfg3_from_body",
    "decode_frame",
    "encode",
    "encode_cfg3_fragments",
    "parse_header",
]

import struct
from binascii import crc_hqx
from collections.abc import Callable, Mapping

from adapters.c37118._config_codec import (
    decode_cfg3_body,
    decode_cfg12_body,
    encode_cfg3_body,
    encode_cfg12_body,
)
from adapters.c37118._data_codec import layout_for
from adapters.c37118._errors import (
    ChecksumError,
    ConfigMismatchError,
    FrameSizeError,
    FrameTypeError,
    UnknownConfigError,
)
from adapters.c37118.constants import (
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    MIN_FRAME_SIZE,
    SYNC_BYTE,
    FrameType,
)
from adapters.c37118.frames import (
    CommandFrame,
    ConfigFrame,
    DataFrame,
    Frame,
    HeaderFrame,
)
from edgepipe.core import ProtocolError

_HEAD = struct.Struct(">BBHHII")
_CRC = struct.Struct(">H")
_CMD = struct.Struct(">H")
_CONT = struct.Struct(">H")
CONT_LAST = 0xFFFF  # CONT_IDX of the last CFG-3 fragment (Table 11)


def parse_header(data: bytes) -> tuple[FrameType, int, int, int, int, int]:
    """Check SYNC, FRAMESIZE and CHK of one complete frame (clause 6.2).

    Returns (frame type, version, framesize, idcode, soc, fracsec).
    """
    if len(data) < MIN_FRAME_SIZE:
        raise FrameSizeError(f"{len(data)} bytes is shorter than the common header")
    sync, tv, size, idcode, soc, fracsec = _HEAD.unpack_from(data)
    if sync != SYNC_BYTE:
        raise ProtocolError(f"first byte {sync:#04x} is not the SYNC byte 0xAA")
    ftype, version = tv >> 4, tv & 0x0F
    if ftype > FrameType.CFG3:
        raise FrameTypeError(f"reserved frame type {ftype}")
    if not 1 <= version <= 3:
        raise FrameTypeError(f"unsupported version {version}")
    if size != len(data):
        raise FrameSizeError(f"FRAMESIZE {size} but {len(data)} bytes given")
    if crc_hqx(data[:-2], 0xFFFF) != _CRC.unpack_from(data, size - 2)[0]:
        raise ChecksumError(f"bad CHK in {FrameType(ftype).name} frame from IDCODE {idcode}")
    return FrameType(ftype), version, size, idcode, soc, fracsec


def decode_frame(data: bytes, configs: Mapping[int, ConfigFrame]) -> Frame:
    """Decode exactly one frame. ``configs`` maps IDCODE to the config of data frames.

    Raises :class:`ProtocolError` (or a subclass: :class:`ChecksumError`,
    :class:`FrameSizeError`, :class:`FrameTypeError`, :class:`UnknownConfigError`) for
    anything wrong, and nothing else. A CFG-3 fragment (CONT_IDX != 0) is refused here;
    the streaming :class:`Decoder` assembles fragments.
    """
    data = bytes(data)
    ftype, version, _, idcode, soc, fracsec = parse_header(data)
    try:
        return _DECODERS[ftype](data, (version, idcode, soc, fracsec), configs)
    except ProtocolError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError) as exc:
        raise FrameSizeError(f"malformed {ftype.name} frame: {exc}") from exc


#: (version, idcode, soc, fracsec) of a checked frame.
Head = tuple[int, int, int, int]
_Decode = Callable[[bytes, Head, Mapping[int, ConfigFrame]], Frame]


def _data(data: bytes, head: Head, c: Mapping[int, ConfigFrame]) -> Frame:
    idcode = head[1]
    config = c.get(idcode)
    if config is None:
        raise UnknownConfigError(idcode)
    layout = layout_for(config)
    if layout.size != len(data):
        raise ConfigMismatchError(
            idcode, f"data frame of {len(data)} bytes, config says {layout.size}"
        )
    return layout.decode(data, head[0])


def _header(data: bytes, head: Head, c: Mapping[int, ConfigFrame]) -> Frame:
    text = data[HEADER_SIZE:-2].decode("utf-8", errors="replace")
    return HeaderFrame(*head, text)


def _command(data: bytes, head: Head, c: Mapping[int, ConfigFrame]) -> Frame:
    if len(data) < HEADER_SIZE + 4:
        raise FrameSizeError("command frame without CMD")
    (cmd,) = _CMD.unpack_from(data, HEADER_SIZE)
    return CommandFrame(*head, cmd, data[HEADER_SIZE + 2 : -2])


def _cfg12(data: bytes, head: Head, c: Mapping[int, ConfigFrame]) -> Frame:
    end, tb, pmus, rate = decode_cfg12_body(data, HEADER_SIZE, len(data) - 2)
    if end != len(data) - 2:
        raise FrameSizeError(f"configuration fields end at {end}, FRAMESIZE {len(data)}")
    ftype = FrameType((data[1] >> 4) & 7)
    return ConfigFrame(ftype, *head, tb & 0xFFFFFF, pmus, rate, tb >> 24)


def _cfg3(data: bytes, head: Head, c: Mapping[int, ConfigFrame]) -> Frame:
    (cont,) = _CONT.unpack_from(data, HEADER_SIZE)
    if cont != 0:
        raise ProtocolError(f"CFG-3 fragment CONT_IDX {cont}: feed it to a Decoder")
    return cfg3_from_body(data[HEADER_SIZE + 2 : -2], head)


def cfg3_from_body(body: bytes, head: Head) -> ConfigFrame:
    """Build a CFG-3 from its (assembled) body after CONT_IDX."""
    tb, pmus, rate = decode_cfg3_body(body)
    return ConfigFrame(FrameType.CFG3, *head, tb & 0xFFFFFF, pmus, rate, tb >> 24)


_DECODERS: dict[FrameType, _Decode] = {
    FrameType.DATA: _data,
    FrameType.HEADER: _header,
    FrameType.CFG1: _cfg12,
    FrameType.CFG2: _cfg12,
    FrameType.COMMAND: _command,
    FrameType.CFG3: _cfg3,
}


def _frame(ftype: FrameType, head: Head, body: bytes) -> bytes:
    size = HEADER_SIZE + len(body) + 2
    if size > MAX_FRAME_SIZE:
        raise ValueError(f"{ftype.name} frame of {size} bytes exceeds FRAMESIZE")
    version, idcode, soc, fracsec = head
    raw = _HEAD.pack(SYNC_BYTE, (ftype << 4) | version, size, idcode, soc, fracsec) + body
    return raw + _CRC.pack(crc_hqx(raw, 0xFFFF))


def encode(frame: Frame, config: ConfigFrame | None = None) -> bytes:
    """The bytes of one frame, CHK included. Data frames need the ``config`` that
    describes them. A CFG-3 too big for one frame needs :func:`encode_cfg3_fragments`."""
    if isinstance(frame, DataFrame):
        if config is None:
            raise ValueError("encoding a data frame needs its configuration")
        layout = layout_for(config)
        out = bytearray(layout.pack(layout.encode_body(frame)))
        out[0], out[1] = SYNC_BYTE, frame.version
        return bytes(out + _CRC.pack(crc_hqx(out, 0xFFFF)))
    head = (frame.version, frame.idcode, frame.soc, frame.fracsec)
    if isinstance(frame, HeaderFrame):
        return _frame(FrameType.HEADER, head, frame.text.encode("utf-8"))
    if isinstance(frame, CommandFrame):
        return _frame(FrameType.COMMAND, head, _CMD.pack(frame.command) + frame.extended)
    tb = (frame.time_base_flags << 24) | frame.time_base
    if frame.frame_type == FrameType.CFG3:
        body = _CONT.pack(0) + encode_cfg3_body(tb, frame.pmus, frame.data_rate)
    else:
        body = encode_cfg12_body(tb, frame.pmus, frame.data_rate)
    return _frame(frame.frame_type, head, body)


def encode_cfg3_fragments(frame: ConfigFrame, max_frame_size: int = MAX_FRAME_SIZE) -> list[bytes]:
    """A CFG-3 split into frames of at most ``max_frame_size`` bytes, CONT_IDX 1, 2, ...
    and 0xFFFF for the last (Table 11). A body that fits in one frame gives CONT_IDX 0."""
    if frame.frame_type != FrameType.CFG3:
        raise ValueError("only CFG-3 frames are fragmented")
    tb = (frame.time_base_flags << 24) | frame.time_base
    body = encode_cfg3_body(tb, frame.pmus, frame.data_rate)
    room = max_frame_size - HEADER_SIZE - 4
    if room < 1:
        raise ValueError(f"max_frame_size {max_frame_size} leaves no room for a body")
    head = (frame.version, frame.idcode, frame.soc, frame.fracsec)
    if len(body) <= room:
        return [_frame(FrameType.CFG3, head, _CONT.pack(0) + body)]
    parts = [body[i : i + room] for i in range(0, len(body), room)]
    if len(parts) >= CONT_LAST:
        raise ValueError("CFG-3 too large even for fragmentation")
    return [
        _frame(FrameType.CFG3, head, _CONT.pack(CONT_LAST if i == len(parts) else i) + part)
        for i, part in enumerate(parts, start=1)
    ]
