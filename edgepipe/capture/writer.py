"""Segment writer: rows of each stream into rotated Arrow IPC segments, with retention.

Not thread-safe; called from the event loop by :class:`~edgepipe.capture.Recorder`.
Rows are buffered per stream and written as one record batch per stream on ``flush``
(every ``flush_s``), then the file is flushed to the OS: a crash loses at most the
rows since the last flush. Raw frames (``append_frames``) go the same way into
``raw/<source>/`` segments. A write error is logged, counted, and the rows it held are
counted as dropped; the pipeline itself never stops because recording failed.
"""

from __future__ import annotations

__all__ = ["CaptureWriter", "WriterStats"]

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import structlog

from edgepipe import __version__
from edgepipe.capture._format import (
    DIGEST_KEY,
    FORMAT_VERSION,
    batch_digest,
    raw_schema,
    safe_name,
    schema_for,
)
from edgepipe.capture.config import CaptureConfig
from edgepipe.core import Clock, SampleBatch, SourceStatus, StreamInfo

log = structlog.get_logger("edgepipe.capture")
_NS = 1_000_000_000


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    rows: int = 0
    rows_written: int = 0
    rows_dropped: int = 0  # pending bound or write errors; always logged
    events: int = 0
    segments_opened: int = 0
    segments_deleted: int = 0
    bytes_deleted: int = 0
    write_errors: int = 0
    raw_frames: int = 0  # raw wire frames handed over (``raw_frames = true``)
    raw_frames_written: int = 0
    raw_frames_dropped: int = 0  # pending bound or write errors; always logged


@dataclass(slots=True)
class _Segment:
    path: Path
    file: BinaryIO
    writer: pa.RecordBatchStreamWriter
    opened_ns: int
    bytes: int = 0


@dataclass(slots=True)
class _Stream:
    info: StreamInfo
    pending: list[tuple[SampleBatch, int]] = field(default_factory=list)
    segment: _Segment | None = None
    count: int = 0  # segments opened for this stream, for unique names

    @property
    def label(self) -> str:
        return self.info.stream


@dataclass(slots=True)
class _Raw:
    """Raw frames of one source: (receipt time, seq, frames) per hand-over."""

    source: str
    pending: list[tuple[int, int, Sequence[bytes]]] = field(default_factory=list)
    segment: _Segment | None = None
    count: int = 0

    @property
    def label(self) -> str:
        return f"raw/{self.source}"


class CaptureWriter:
    """Writes one capture directory (layout: ``edgepipe.capture._format``)."""

    def __init__(
        self,
        config: CaptureConfig,
        clock: Clock,
        site: str = "",
        sources: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.directory = Path(config.dir)
        self._clock = clock
        self._sources = {k: dict(v) for k, v in (sources or {}).items()}
        self._site = site
        self._streams: dict[str, _Stream] = {}
        self._raw: dict[str, _Raw] = {}
        self._events: list[str] = []
        self._pending_rows = 0
        self._seq = 0
        self.stats = WriterStats()

    def open(self) -> None:
        """Create the directory and write the manifest."""
        (self.directory / "streams").mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT_VERSION,
            "edgepipe_version": __version__,
            "site": self._site,
            "created_ns": self._clock.time_ns(),
            "sources": self._sources,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, default=str)
        (self.directory / "capture.json").write_text(text + "\n", encoding="utf-8")

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def on_stream(self, info: StreamInfo) -> None:
        st = self._streams.get(info.stream)
        if st is None:
            self._streams[info.stream] = _Stream(info)
            return
        if st.info != info:
            self._flush_stream(st)  # rows of the old layout go to the old segment
            self._close_segment(st)
            st.info = info

    def append(self, batch: SampleBatch, seq: int) -> None:
        st = self._streams.get(batch.stream)
        if st is None or len(batch) == 0:
            return
        st.pending.append((batch, seq))
        self._pending_rows += len(batch)
        self.stats.batches += 1
        self.stats.rows += len(batch)
        if self._pending_rows > self.config.max_pending_rows:
            self._drop_oldest()

    def append_frames(self, source: str, time_ns: int, frames: Sequence[bytes], seq: int) -> None:
        """Raw wire frames ``source`` received at ``time_ns`` (kept as given)."""
        if not frames:
            return
        raw = self._raw.get(source)
        if raw is None:
            raw = self._raw[source] = _Raw(source)
        raw.pending.append((time_ns, seq, frames))
        self._pending_rows += len(frames)
        self.stats.raw_frames += len(frames)
        if self._pending_rows > self.config.max_pending_rows:
            self._drop_oldest()

    def on_status(self, status: SourceStatus, seq: int) -> None:
        self.stats.events += 1
        self._events.append(
            json.dumps(
                {
                    "seq": seq,
                    "time_ns": status.time_ns,
                    "source": status.source,
                    "stream": status.stream,
                    "kind": status.kind.value,
                    "detail": status.detail,
                },
                sort_keys=True,
            )
        )

    def flush(self) -> None:
        """Write every pending row, rotate segments that are due, apply retention."""
        rotated = self._rotate()  # by age first, so no segment spans more than segment_s
        for st in self._streams.values():
            self._flush_stream(st)
        for raw in self._raw.values():
            self._flush_raw(raw)
        if self._events:
            lines, self._events = self._events, []
            try:
                with (self.directory / "events.jsonl").open("a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
            except OSError as exc:
                self._write_failed("events.jsonl", exc, 0)
        if self._rotate() or rotated:
            self.apply_retention()

    def _rotate(self) -> bool:
        """Close the segments that reached ``segment_bytes`` or ``segment_s``."""
        rotated = False
        now = self._clock.monotonic_ns()
        for st in self._holders():
            seg = st.segment
            if seg is not None and (
                seg.bytes >= self.config.segment_bytes
                or now - seg.opened_ns >= self.config.segment_s * _NS
            ):
                self._close_segment(st)
                rotated = True
        return rotated

    def close(self) -> None:
        self.flush()
        for st in self._holders():
            self._close_segment(st)
        self.apply_retention()

    def _holders(self) -> list[_Stream | _Raw]:
        return [*self._streams.values(), *self._raw.values()]

    def _drop_oldest(self) -> None:
        oldest = min((h for h in self._holders() if h.pending), key=lambda h: h.pending[0][1])
        if isinstance(oldest, _Raw):
            n = len(oldest.pending.pop(0)[2])
            self.stats.raw_frames_dropped += n
        else:
            n = len(oldest.pending.pop(0)[0])
            self.stats.rows_dropped += n
        self._pending_rows -= n
        log.error("capture_rows_dropped", stream=oldest.label, rows=n,
                  reason="max_pending_rows reached")  # fmt: skip

    def _flush_stream(self, st: _Stream) -> None:
        if not st.pending:
            return
        pending, st.pending = st.pending, []
        rows = sum(len(b) for b, _ in pending)
        self._pending_rows -= rows
        try:
            self._write(st, _record_batch(st.info, pending), int(pending[0][0].times_ns[0]))
        except (OSError, pa.ArrowException, ValueError) as exc:
            self._write_failed(st.info.stream, exc, rows)
            self._close_segment(st)
            return
        self.stats.rows_written += rows

    def _flush_raw(self, raw: _Raw) -> None:
        if not raw.pending:
            return
        pending, raw.pending = raw.pending, []
        n = sum(len(frames) for _, _, frames in pending)
        self._pending_rows -= n
        try:
            self._write(raw, _raw_record_batch(pending), pending[0][0])
        except (OSError, pa.ArrowException, ValueError) as exc:
            self._write_failed(raw.label, exc, 0)
            self.stats.raw_frames_dropped += n
            self._close_segment(raw)
            return
        self.stats.raw_frames_written += n

    def _write(self, st: _Stream | _Raw, record: pa.RecordBatch, t0: int) -> None:
        seg = st.segment or self._open_segment(st, t0)
        seg.writer.write_batch(record, custom_metadata={DIGEST_KEY: batch_digest(record)})
        seg.file.flush()
        if self.config.fsync:
            os.fsync(seg.file.fileno())
        seg.bytes = seg.file.tell()

    def _open_segment(self, st: _Stream | _Raw, t0: int) -> _Segment:
        if isinstance(st, _Raw):
            folder = self.directory / "raw" / safe_name(st.source)
            schema = raw_schema(st.source, self._sources.get(st.source, {}))
        else:
            folder = self.directory / "streams" / safe_name(st.info.stream)
            schema = schema_for(st.info, self._sources.get(st.info.source, {}))
        folder.mkdir(parents=True, exist_ok=True)
        st.count += 1
        path = folder / f"{t0:020d}-{st.count:06d}.arrows"
        file = path.open("wb")
        writer = pa.ipc.new_stream(file, schema)
        st.segment = _Segment(path, file, writer, self._clock.monotonic_ns())
        self.stats.segments_opened += 1
        log.info("capture_segment_opened", stream=st.label, path=str(path))
        return st.segment

    def _close_segment(self, st: _Stream | _Raw) -> None:
        seg, st.segment = st.segment, None
        if seg is None:
            return
        try:
            seg.writer.close()
            seg.file.close()
        except (OSError, pa.ArrowException) as exc:
            self._write_failed(st.label, exc, 0)

    def _write_failed(self, what: str, exc: Exception, rows: int) -> None:
        self.stats.write_errors += 1
        self.stats.rows_dropped += rows
        log.error("capture_write_failed", target=what, error=str(exc), rows_lost=rows)

    def apply_retention(self) -> None:
        """Delete the oldest closed segments beyond ``max_bytes`` or ``max_age_s``."""
        open_paths = {st.segment.path for st in self._holders() if st.segment}
        files = []
        segments = [
            *self.directory.glob("streams/*/*.arrows"),
            *self.directory.glob("raw/*/*.arrows"),
        ]
        for p in segments:
            try:
                s = p.stat()
            except OSError:
                continue
            files.append((s.st_mtime_ns, p, s.st_size))
        files.sort()
        total = sum(size for _, _, size in files)
        oldest_ok = self._clock.time_ns() - int(self.config.max_age_s * _NS)
        for mtime, path, size in files:
            if path in open_paths:
                continue
            if total <= self.config.max_bytes and mtime >= oldest_ok:
                continue
            try:
                os.unlink(path)
            except OSError as exc:
                self._write_failed(str(path), exc, 0)
                continue
            total -= size
            self.stats.segments_deleted += 1
            self.stats.bytes_deleted += size
            log.info("capture_segment_deleted", path=str(path), bytes=size)


def _record_batch(info: StreamInfo, pending: list[tuple[SampleBatch, int]]) -> pa.RecordBatch:
    times = np.concatenate([b.times_ns for b, _ in pending])
    quality = np.concatenate([b.quality for b, _ in pending])
    seq = np.concatenate([np.full(len(b), s, dtype=np.int64) for b, s in pending])
    device = np.concatenate([np.full(len(b), b.device_time, dtype=np.bool_) for b, _ in pending])
    values = np.concatenate([b.values for b, _ in pending])
    if values.shape[1] != len(info.channels):
        raise ValueError(
            f"{info.stream}: {values.shape[1]} values for {len(info.channels)} channels"
        )
    arrays = [pa.array(times), pa.array(quality), pa.array(seq), pa.array(device)]
    arrays += [pa.array(np.ascontiguousarray(values[:, i])) for i in range(values.shape[1])]
    return pa.RecordBatch.from_arrays(arrays, schema=schema_for(info).remove_metadata())


def _raw_record_batch(pending: list[tuple[int, int, Sequence[bytes]]]) -> pa.RecordBatch:
    times = np.concatenate([np.full(len(f), t, dtype=np.int64) for t, _, f in pending])
    seq = np.concatenate([np.full(len(f), s, dtype=np.int64) for _, s, f in pending])
    frames = pa.array([bytes(b) for _, _, f in pending for b in f], type=pa.binary())
    return pa.RecordBatch.from_arrays(
        [pa.array(times), pa.array(seq), frames], schema=raw_schema("").remove_metadata()
    )
