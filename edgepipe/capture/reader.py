"""Reading a capture back: every stream's rows with their layout, and the status events.

A segment cut short by a crash is read up to its last complete record batch (counted in
``Capture.truncated_segments``); the rest of the capture is unaffected. Raw wire frames
(``raw/``) are in ``Capture.raw``, one :class:`RawFrames` per source.
"""

from __future__ import annotations

__all__ = ["Capture", "Event", "Part", "RawFrames", "read_capture"]

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from edgepipe.capture._format import info_from_json, raw_schema
from edgepipe.core import EdgepipeError, SourceStatus, StatusKind, StreamInfo


@dataclass(frozen=True, slots=True)
class Part:
    """Consecutive rows of one stream with one layout (one or more segments)."""

    info: StreamInfo
    times_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint16]
    seq: npt.NDArray[np.int64]
    device: npt.NDArray[np.bool_]
    segments: int

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    status: SourceStatus


@dataclass(frozen=True, slots=True)
class RawFrames:
    """The raw frames one source received, in arrival order (all its raw segments)."""

    source: str
    times_ns: npt.NDArray[np.int64]  # receipt time (wall clock)
    seq: npt.NDArray[np.int64]
    frames: tuple[bytes, ...]
    segments: int

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True, slots=True)
class Capture:
    path: Path
    manifest: dict[str, Any]
    parts: tuple[Part, ...]
    events: tuple[Event, ...]
    truncated_segments: int = 0
    raw: tuple[RawFrames, ...] = ()

    @property
    def streams(self) -> list[str]:
        return sorted({p.info.stream for p in self.parts})


def _read_segment(path: Path) -> tuple[StreamInfo, list[pa.RecordBatch], bool]:
    """(info, batches, truncated) of one segment."""
    meta, batches, cut = _read_ipc(path, b"edgepipe.stream")
    return info_from_json(meta[b"edgepipe.stream"]), batches, cut


def _read_ipc(path: Path, key: bytes) -> tuple[dict[bytes, bytes], list[pa.RecordBatch], bool]:
    """(schema metadata, batches, truncated) of one segment whose metadata has ``key``."""
    batches: list[pa.RecordBatch] = []
    with pa.OSFile(str(path), "rb") as f:
        try:
            reader = pa.ipc.open_stream(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise EdgepipeError(f"{path}: not an edgepipe capture segment: {exc}") from exc
        meta = dict(reader.schema.metadata or {})
        if key not in meta:
            raise EdgepipeError(f"{path}: segment without {key.decode()} metadata")
        try:
            batches.extend(reader)
        except (pa.ArrowInvalid, OSError):
            return meta, batches, True
    return meta, batches, False


def _read_raw(root: Path) -> tuple[list[RawFrames], int]:
    """Every source's raw frames (segments in name order = time order), and cut segments."""
    out: list[RawFrames] = []
    truncated = 0
    for folder in sorted(p for p in (root / "raw").glob("*") if p.is_dir()):
        source, count = "", 0
        batches: list[pa.RecordBatch] = []
        for seg in sorted(folder.glob("*.arrows")):
            meta, got, cut = _read_ipc(seg, b"edgepipe.raw")
            source = meta[b"edgepipe.raw"].decode()
            truncated += cut
            batches.extend(b for b in got if b.num_rows)
            count += 1
        if count:
            table = pa.Table.from_batches(batches, schema=raw_schema(source).remove_metadata())
            times = np.asarray(table.column("time_ns").to_numpy(), dtype=np.int64)
            seq = np.asarray(table.column("seq").to_numpy(), dtype=np.int64)
            frames = tuple(table.column("frame").to_pylist())
            out.append(RawFrames(source, times, seq, frames, count))
    return out, truncated


def _to_part(info: StreamInfo, batches: list[pa.RecordBatch], segments: int) -> Part:
    table = pa.Table.from_batches(batches)

    def col(name: str, dtype: Any) -> Any:
        return np.ascontiguousarray(table.column(name).to_numpy(), dtype=dtype)

    n_ch = len(info.channels)
    values = np.empty((table.num_rows, n_ch), dtype=np.float64)
    for i, c in enumerate(info.channels):
        values[:, i] = table.column(c.name).to_numpy()
    return Part(
        info, col("time_ns", np.int64), values, col("quality", np.uint16),
        col("seq", np.int64), col("device", np.bool_), segments,
    )  # fmt: skip


def read_capture(path: str | Path) -> Capture:
    """Read the capture directory ``path`` (raises ``EdgepipeError`` if it is not one)."""
    root = Path(path)
    manifest_path = root / "capture.json"
    if not manifest_path.is_file():
        raise EdgepipeError(f"{root}: not a capture (no capture.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    parts: list[Part] = []
    truncated = 0
    for folder in sorted(p for p in (root / "streams").glob("*") if p.is_dir()):
        current: StreamInfo | None = None
        group: list[pa.RecordBatch] = []
        count = 0
        for seg in sorted(folder.glob("*.arrows")):
            info, batches, cut = _read_segment(seg)
            truncated += cut
            if current is not None and info != current and group:
                parts.append(_to_part(current, group, count))
                group, count = [], 0
            current = info
            group.extend(b for b in batches if b.num_rows)
            count += 1
        if current is not None and group:
            parts.append(_to_part(current, group, count))
    parts.sort(key=lambda p: (int(p.seq[0]), p.info.stream))
    raw, raw_cut = _read_raw(root)
    return Capture(
        root, manifest, tuple(parts), tuple(_events(root)), truncated + raw_cut, tuple(raw)
    )


def _events(root: Path) -> list[Event]:
    path = root / "events.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            status = SourceStatus(d["source"], d["stream"], StatusKind(d["kind"]),
                                  int(d["time_ns"]), d.get("detail", ""))  # fmt: skip
        except (ValueError, KeyError):
            continue  # a line cut by a crash
        out.append(Event(int(d["seq"]), status))
    out.sort(key=lambda e: e.seq)
    return out
