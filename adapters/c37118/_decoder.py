"""The streaming, sans-IO C37.118.2 decoder (h11/wsproto style).

Feed bytes with :meth:`Decoder.receive_data` as they arrive, in any chunking, then call
:meth:`Decoder.next_event` until it returns :data:`NEED_DATA`. The decoder keeps one
growing buffer and a read offset: a frame is consumed (committed) only once it is
complete and its CHK is good, otherwise the offset stays put (rolled back) until more
bytes arrive.

A data frame of a known stream whose header is intact but whose CHK fails is skipped
whole and reported as one :class:`BadFrame`: ten such frames in a row are ten. Any other
bad frame (FRAMESIZE, type, version, a header hit by the damage) gives one ``BadFrame``
and a resynchronisation on the next 0xAA whose frame checks out; candidates that fail
while it resynchronises are skipped silently (counted in ``stats``), so one corrupted
stretch yields one ``BadFrame`` and every good frame after it.
"""

from __future__ import annotations

__all__ = [
    "NEED_DATA",
    "BadFrame",
    "Decoder",
    "DecoderStats",
    "Event",
    "NeedData",
    "RecordingDecoder",
    "UnknownConfig",
]

import heapq
import struct
from binascii import crc_hqx
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from adapters.c37118._data_codec import DataLayout, layout_for
from adapters.c37118._frame_codec import _DECODERS, CONT_LAST, cfg3_from_body
from adapters.c37118.constants import MAX_FRAME_SIZE, MIN_FRAME_SIZE, SYNC_BYTE, FrameType
from adapters.c37118.frames import ConfigFrame, DataFrame, Frame
from edgepipe.core import ProtocolError

_HEAD = struct.Struct(">HII")  # IDCODE, SOC, FRACSEC at offset 4
_CONT = struct.Struct(">H")
_COMPACT_AT = 1 << 16  # drop consumed bytes once this many have piled up


_WAIT = ("", "")  # the header is not complete yet


def _head_problem(buf: bytearray, pos: int, avail: int, max_size: int) -> tuple[str, str] | None:
    """Why the bytes at ``pos`` cannot start a frame: (reason, stats counter), or
    ``_WAIT`` if more bytes are needed to tell, or None if the header is plausible."""
    if buf[pos] != SYNC_BYTE:
        return ("no SYNC byte where a frame should start", "no_sync")
    if avail < 4:
        return _WAIT
    tv = buf[pos + 1]
    if (tv >> 4) > FrameType.CFG3:
        return (f"reserved frame type in SYNC {tv:#04x}", "bad_type")
    if not 1 <= (tv & 0x0F) <= 3:
        return (f"unsupported version in SYNC {tv:#04x}", "bad_type")
    size = (buf[pos + 2] << 8) | buf[pos + 3]
    if not MIN_FRAME_SIZE <= size <= max_size:
        return (f"impossible FRAMESIZE {size}", "bad_size")
    return None


class NeedData:
    """The decoder needs more bytes before it can report anything else."""

    __slots__ = ()
    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame was rejected; ``skipped`` bytes were dropped when it was reported (more
    may be dropped silently while resynchronising, see ``DecoderStats.bytes_skipped``)."""

    reason: str
    skipped: int


@dataclass(frozen=True, slots=True)
class UnknownConfig:
    """A data frame (good CHK) whose config is unknown or no longer fits it: ask the PMU
    for CFG-2, :meth:`Decoder.set_config`, then decode ``frame_bytes`` again if wanted."""

    idcode: int
    frame_bytes: bytes
    reason: str = "no configuration for this IDCODE"


@dataclass(slots=True)
class DecoderStats:
    """Counters of one decoder; ``frames`` counts good frames by type."""

    frames: Counter[FrameType] = field(default_factory=Counter)
    no_sync: int = 0
    bad_crc: int = 0
    bad_size: int = 0
    bad_type: int = 0
    bad_body: int = 0
    unknown_config: int = 0
    resyncs: int = 0
    bytes_skipped: int = 0


Event = Frame | NeedData | BadFrame | UnknownConfig


class _LookAhead:
    """Whether a good frame starts after a position, found incrementally.

    A header that claims more bytes than have arrived blocks the stream unless a later
    good frame shows it corrupt. Rescanning the buffer for one per header was quadratic
    (16 kB of such headers cost 10 s of CPU in the event loop); this keeps what it has
    seen: how far it has looked, and the candidates still waiting for their bytes
    (by the buffer length that completes them), so each candidate is examined once for
    its header and once for its CHK. Positions are offsets into the decoder's buffer; a
    new instance goes with every compaction.
    """

    __slots__ = ("_good_at", "_scanned", "_waiting")

    def __init__(self) -> None:
        self._good_at = -1  # start of a good complete frame, if one was found
        self._scanned = 0  # every 0xAA before this offset has been looked at
        self._waiting: list[tuple[int, int]] = []  # heap of (end offset, start offset)

    def good_frame_after(self, buf: bytearray, pos: int, max_size: int) -> bool:
        if self._good_at > pos:
            return True
        end = len(buf)
        waiting = self._waiting
        while waiting and waiting[0][0] <= end:
            stop, start = heapq.heappop(waiting)
            if start > pos and _good_chk(buf, start, stop):
                self._good_at = start
                return True
        nxt = buf.find(SYNC_BYTE, max(pos + 1, self._scanned))
        while 0 <= nxt <= end - MIN_FRAME_SIZE:
            self._scanned = nxt + 1
            if _head_problem(buf, nxt, end - nxt, max_size) is None:
                stop = nxt + ((buf[nxt + 2] << 8) | buf[nxt + 3])
                if stop > end:
                    heapq.heappush(waiting, (stop, nxt))
                elif _good_chk(buf, nxt, stop):
                    self._good_at = nxt
                    return True
            nxt = buf.find(SYNC_BYTE, nxt + 1)
        return False


def _good_chk(buf: bytearray, start: int, stop: int) -> bool:
    return crc_hqx(buf[start : stop - 2], 0xFFFF) == ((buf[stop - 2] << 8) | buf[stop - 1])


class Decoder:
    """Streaming decoder; keeps the config of each IDCODE it sees (clause 6.4)."""

    def __init__(
        self,
        configs: Mapping[int, ConfigFrame] | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._resyncing = False
        self._ahead = _LookAhead()
        self._max = max_frame_size
        self._configs: dict[int, ConfigFrame] = {}
        self._layouts: dict[int, DataLayout] = {}
        # IDCODE -> (next expected CONT_IDX, fragments so far) of a CFG-3 being assembled
        self._cfg3: dict[int, tuple[int, list[bytes]]] = {}
        self._stats = DecoderStats()
        self._counts = [0] * 8  # good frames by frame type (hot path: no Counter)
        for cfg in (configs or {}).values():
            self.set_config(cfg)

    @property
    def stats(self) -> DecoderStats:
        """The counters, with ``frames`` brought up to date."""
        self._stats.frames = Counter({FrameType(t): n for t, n in enumerate(self._counts[:6]) if n})
        return self._stats

    @property
    def configs(self) -> Mapping[int, ConfigFrame]:
        """The config of each IDCODE, read-only."""
        return MappingProxyType(self._configs)

    def set_config(self, config: ConfigFrame) -> None:
        """Describe the data frames of ``config.idcode`` from now on."""
        self._configs[config.idcode] = config
        self._layouts[config.idcode] = layout_for(config)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        buf, pos = self._buf, self._pos
        if pos:
            if pos >= len(buf):
                buf.clear()
                self._pos = 0
                self._ahead = _LookAhead()
            elif pos >= _COMPACT_AT:
                del buf[:pos]
                self._pos = 0
                self._ahead = _LookAhead()
        buf += data

    def next_event(self) -> Event:
        """The next frame or event; :data:`NEED_DATA` when the buffer holds no more."""
        buf, layouts, counts = self._buf, self._layouts, self._counts
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail <= 0:
                return NEED_DATA
            # Fast path: a data frame (SYNC 0xAA 0x0V) of a known config, fully buffered.
            if avail >= 6 and buf[pos] == SYNC_BYTE and 1 <= buf[pos + 1] <= 3:
                layout = layouts.get((buf[pos + 4] << 8) | buf[pos + 5])
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                if layout is not None and size == layout.size and size <= avail:
                    frame = bytes(buf[pos : pos + size])
                    # CRC-16/CCITT-FALSE over a frame with its CHK appended is 0.
                    if not crc_hqx(frame, 0xFFFF):
                        self._pos = pos + size
                        self._resyncing = False
                        counts[0] += 1
                        return layout.lazy(frame)
            event = self._slow_event(pos, avail)
            if event is not None:
                return event

    def _slow_event(self, pos: int, avail: int) -> Event | None:
        """Everything but a good data frame of a known config; None to loop again."""
        buf = self._buf
        problem = _head_problem(buf, pos, avail, self._max)
        if problem is None:
            size = (buf[pos + 2] << 8) | buf[pos + 3]
            if avail < size:
                if not self._complete_frame_after(pos):
                    return NEED_DATA
                # A corrupted FRAMESIZE must not stall the good frames behind it.
                problem = ("FRAMESIZE runs over a complete later frame", "bad_size")
            else:
                frame = bytes(buf[pos : pos + size])
                if not crc_hqx(frame, 0xFFFF):
                    self._pos = pos + size
                    self._resyncing = False
                    return self._dispatch(frame)
                layout = self._layouts.get((buf[pos + 4] << 8) | buf[pos + 5])
                if buf[pos + 1] >> 4 == FrameType.DATA and layout and layout.size == size:
                    # A data frame of a known stream, its header intact: one whole frame
                    # lost. Skip it as one (no candidates inside its body) and count it,
                    # so ten corrupted frames in a row are ten bad frames, not one stretch.
                    self._pos = pos + size
                    self._resyncing = False
                    self._stats.bytes_skipped += size
                    self._stats.bad_crc += 1
                    return BadFrame("bad CHK", size)
                problem = ("bad CHK", "bad_crc")
        elif problem is _WAIT:
            return NEED_DATA
        return self._reject(*problem)

    def _complete_frame_after(self, pos: int) -> bool:
        """Whether a later 0xAA in the buffer starts a complete frame with a good CHK."""
        return self._ahead.good_frame_after(self._buf, pos, self._max)

    def _reject(self, reason: str, counter: str) -> BadFrame | None:
        """Drop bytes up to the next 0xAA; report only the first failure of a stretch."""
        buf, pos = self._buf, self._pos
        nxt = buf.find(SYNC_BYTE, pos + 1)
        if nxt < 0:
            nxt = len(buf)
        skipped = nxt - pos
        self._pos = nxt
        self._stats.bytes_skipped += skipped
        # The bytes skipped may have held a CFG-3 fragment: an assembly in progress would
        # join the fragments around the gap (the last one carries no index to tell).
        self._cfg3.clear()
        if self._resyncing:
            return None
        self._resyncing = True
        self._stats.resyncs += 1
        setattr(self._stats, counter, getattr(self._stats, counter) + 1)
        return BadFrame(reason, skipped)

    def _dispatch(self, frame: bytes) -> Event | None:
        ftype = FrameType(frame[1] >> 4)
        version = frame[1] & 0x0F
        try:
            if ftype == FrameType.DATA:
                return self._data(frame, version)
            if ftype == FrameType.CFG3 and _CONT.unpack_from(frame, 14)[0] != 0:
                return self._cfg3_fragment(frame, version)
            head = (version, *_HEAD.unpack_from(frame, 4))
            decoded = _DECODERS[ftype](frame, head, self._configs)
        except (ProtocolError, struct.error, ValueError, IndexError, OverflowError) as exc:
            self._stats.bad_body += 1
            return BadFrame(f"malformed {ftype.name} frame: {exc}", 0)
        return self._accept(decoded)

    def _accept(self, frame: Frame) -> Frame:
        if isinstance(frame, ConfigFrame) and (
            frame.frame_type != FrameType.CFG1 or frame.idcode not in self._configs
        ):
            # CFG-2/3 describe the data frames; CFG-1 only the PMU's capabilities.
            self.set_config(frame)
        self._counts[frame.frame_type] += 1
        return frame

    def _data(self, frame: bytes, version: int) -> Event:
        idcode = (frame[4] << 8) | frame[5]
        layout = self._layouts.get(idcode)
        if layout is None or layout.size != len(frame):
            self._stats.unknown_config += 1
            if layout is None:
                return UnknownConfig(idcode, frame)
            return UnknownConfig(idcode, frame, f"{len(frame)} bytes, config says {layout.size}")
        self._counts[FrameType.DATA] += 1
        return layout.lazy(frame)

    def _cfg3_fragment(self, frame: bytes, version: int) -> Event | None:
        """Assemble CONT_IDX 1, 2, ..., 0xFFFF fragments in order (Table 11)."""
        idcode, soc, fracsec = _HEAD.unpack_from(frame, 4)
        (cont,) = _CONT.unpack_from(frame, 14)
        part = frame[16:-2]
        pending = self._cfg3.pop(idcode, None)
        if cont == 1:
            self._cfg3[idcode] = (2, [part])
            return None
        if pending is None or (cont != CONT_LAST and cont != pending[0]):
            self._stats.bad_body += 1
            want = pending[0] if pending else 1
            return BadFrame(f"CFG-3 fragment {cont} out of order (expected {want})", 0)
        expected, parts = pending
        parts.append(part)
        if cont != CONT_LAST:
            self._cfg3[idcode] = (expected + 1, parts)
            return None
        try:
            cfg = cfg3_from_body(b"".join(parts), (version, idcode, soc, fracsec))
        except (ProtocolError, struct.error, ValueError, IndexError, OverflowError) as exc:
            raise ProtocolError(
                f"{len(parts)} fragments do not make a configuration (one lost?): {exc}"
            ) from exc
        return self._accept(cfg)


class RecordingDecoder(Decoder):
    """A :class:`Decoder` that also keeps the exact bytes of every frame whose CHK was
    good (clause 6.2), in arrival order, in ``frames`` (the caller takes and clears it).

    That is every data frame (lazily decoded: its ``raw``), configuration, header and
    command frame, each CFG-3 fragment, and data frames of an unknown config; not the
    stretches a :class:`BadFrame` skipped or frames whose body was malformed. A separate
    class so that the plain decoder's hot path pays nothing when nobody records.
    """

    def __init__(
        self,
        configs: Mapping[int, ConfigFrame] | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(configs, max_frame_size)
        self.frames: list[bytes] = []

    def next_event(self) -> Event:
        event = super().next_event()
        if type(event) is DataFrame and (raw := event.raw) is not None:
            self.frames.append(raw)
        return event

    def _dispatch(self, frame: bytes) -> Event | None:
        event = super()._dispatch(frame)
        # Data frames are taken in next_event (fast path or not); bad bodies are not kept.
        if not isinstance(event, DataFrame | BadFrame):
            self.frames.append(frame)
        return event
