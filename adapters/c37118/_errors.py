"""Errors of the C37.118 codec, all in the ``ProtocolError`` branch of the core tree."""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "FrameSizeError",
    "FrameTypeError",
    "UnknownConfigError",
    "ConfigMismatchError",
]

from edgepipe.core import ProtocolError


class ChecksumError(ProtocolError):
    """CHK does not match the CRC-16/CCITT-FALSE of the frame (clause 6.2)."""


class FrameSizeError(ProtocolError):
    """FRAMESIZE is impossible, or the frame's fields do not add up to it."""


class FrameTypeError(ProtocolError):
    """The SYNC word names a reserved frame type or an unsupported version."""


class UnknownConfigError(ProtocolError):
    """A data frame arrived for an IDCODE whose configuration frame is not known."""

    def __init__(self, idcode: int, message: str = "") -> None:
        self.idcode = idcode
        super().__init__(message or f"no configuration known for IDCODE {idcode}")


class ConfigMismatchError(UnknownConfigError):
    """A data frame's size disagrees with the known configuration (it changed)."""
