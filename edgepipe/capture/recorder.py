"""The recorder: a ``Sink`` tap that records what sources report, then passes it on.

``Recorder(inner, writer)`` is given to the sources in place of ``inner`` (the
pipeline). Every ``SampleBatch`` and ``SourceStatus`` gets a capture-wide sequence
number, so a replay feeds them back in the order the pipeline saw them.

With ``raw_frames = true`` it also has ``on_frames`` (the optional ``Sink`` method, see
``edgepipe.core.source.frames_hook``): sources that find it hand over their exact wire
frames, which go to the writer only (the pipeline never sees them). Without it the
method does not exist, so sources skip that work entirely.
"""

from __future__ import annotations

__all__ = ["Recorder"]

from collections.abc import Sequence

import structlog

from edgepipe.capture.writer import CaptureWriter
from edgepipe.core import Clock, SampleBatch, SourceStatus, StreamInfo
from edgepipe.core.source import Sink

log = structlog.get_logger("edgepipe.capture")
_NS = 1_000_000_000


class Recorder(Sink):
    def __init__(self, inner: Sink, writer: CaptureWriter, clock: Clock) -> None:
        self._inner = inner
        self.writer = writer
        self._clock = clock
        if writer.config.raw_frames:
            self.on_frames = self._record_frames

    def on_stream(self, info: StreamInfo) -> None:
        self.writer.on_stream(info)
        self._inner.on_stream(info)

    def on_batch(self, batch: SampleBatch) -> None:
        self.writer.append(batch, self.writer.next_seq())
        self._inner.on_batch(batch)

    def on_status(self, status: SourceStatus) -> None:
        self.writer.on_status(status, self.writer.next_seq())
        self._inner.on_status(status)

    def _record_frames(self, source: str, time_ns: int, frames: Sequence[bytes]) -> None:
        self.writer.append_frames(source, time_ns, frames, self.writer.next_seq())

    async def run(self) -> None:
        """Open the capture, flush every ``flush_s`` until cancelled, then close it."""
        self.writer.open()
        log.info("capture_started", dir=str(self.writer.directory))
        period = int(self.writer.config.flush_s * _NS)
        try:
            while True:
                await self._clock.sleep_until_ns(self._clock.monotonic_ns() + period)
                self.writer.flush()
        finally:
            self.writer.close()
            s = self.writer.stats
            log.info("capture_stopped", rows=s.rows, rows_written=s.rows_written,
                     rows_dropped=s.rows_dropped, segments=s.segments_opened,
                     segments_deleted=s.segments_deleted, raw_frames=s.raw_frames,
                     raw_frames_written=s.raw_frames_written,
                     raw_frames_dropped=s.raw_frames_dropped)  # fmt: skip
