"""The C37.118.2 codec, sans-IO: bytes in, frames out; frames in, bytes out.

No sockets, no clock, no logging. ``decode_frame`` takes exactly one frame and raises a
:class:`~edgepipe.core.ProtocolError` subclass for anything wrong; :class:`Decoder` is
the streaming decoder for bytes arriving in arbitrary chunks; ``decode_data_block``
decodes many equal-length data frames at once into numpy arrays.
"""

from __future__ import annotations

__all__ = [
    "encode",
    "encode_cfg3_fragments",
    "decode_frame",
    "parse_header",
    "Decoder",
    "DecoderStats",
    "RecordingDecoder",
    "BadFrame",
    "UnknownConfig",
    "NeedData",
    "NEED_DATA",
    "Event",
    "DataBlock",
    "decode_data_block",
    "ChecksumError",
    "FrameSizeError",
    "FrameTypeError",
    "UnknownConfigError",
    "ConfigMismatchError",
]

from adapters.c37118._block import DataBlock, decode_data_block
from adapters.c37118._decoder import (
    NEED_DATA,
    BadFrame,
    Decoder,
    DecoderStats,
    Event,
    NeedData,
    RecordingDecoder,
    UnknownConfig,
)
from adapters.c37118._errors import (
    ChecksumError,
    ConfigMismatchError,
    FrameSizeError,
    FrameTypeError,
    UnknownConfigError,
)
from adapters.c37118._frame_codec import decode_frame, encode, encode_cfg3_fragments, parse_header
