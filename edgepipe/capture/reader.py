"""Reading a capture back: every stream's rows with their layout, and the status events.

A segment cut short by a crash is read up to its last complete record batch (counted in
``Capture.truncated_segments``); the rest of the capture is unaffected. A batch whose
digest (format 2) does not match its values was altered after it was written: it is
left out and counted (``Capture.corrupt_batches``, ``corrupt_rows``, and where in
``corrupt``). Raw wire frames (``raw/``) are in ``Capture.raw``, one :class:`RawFrames`
per source.
"""

from __future__ import annotations

__all__ = ["Capture", "Event", "Part", "RawFrames", "read_capture"]

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from edgepipe.capture._format import DIGEST_KEY, batch_digest, info_from_json, raw_schema
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
    # "<segment>: batch <k> (<n> rows) fails its digest: ..." per batch left out, or
    # "<segment>: unreadable ..." for a segment whose header is damaged
    corrupt: tuple[str, ...] = ()
    corrupt_rows: int = 0

    @property
    def corrupt_batches(self) -> int:
        return len(self.corrupt)

    @property
    def streams(self) -> list[str]:
        return sorted({p.info.stream for p in self.parts})


@dataclass(slots=True)
class _Damage:
    """What reading the segments found wrong: cut segments and batches left out."""

    truncated: int = 0
    corrupt: list[str] = field(default_factory=list)
    corrupt_rows: int = 0


def _read_segment(path: Path, damage: _Damage) -> tuple[StreamInfo | None, list[pa.RecordBatch]]:
    """(info, batches) of one segment; no info when its header cannot be read."""
    meta, batches = _read_ipc(path, b"edgepipe.stream", damage)
    if meta is None:
        return None, []
    try:
        return info_from_json(meta[b"edgepipe.stream"]), batches
    except (ValueError, KeyError, TypeError) as exc:
        damage.corrupt.append(f"{path}: unreadable stream description ({exc})")
        return None, []


def _read_ipc(
    path: Path, key: bytes, damage: _Damage
) -> tuple[dict[bytes, bytes] | None, list[pa.RecordBatch]]:
    """(schema metadata, good batches) of one segment whose metadata has ``key``; no
    metadata when the segment's header is unreadable (the segment is then counted as
    corrupt and the rest of the capture still reads)."""
    batches: list[pa.RecordBatch] = []
    with pa.OSFile(str(path), "rb") as f:
        try:
            reader = pa.ipc.open_stream(f)
        except (pa.ArrowInvalid, OSError) as exc:
            if path.stat().st_size == 0:  # a crash right after the segment was opened
                damage.truncated += 1
            else:
                damage.corrupt.append(f"{path}: unreadable segment header ({exc})")
            return None, []
        meta = dict(reader.schema.metadata or {})
        if key not in meta:
            damage.corrupt.append(f"{path}: segment without {key.decode()} metadata")
            return None, []
        checked = meta.get(b"edgepipe.format", b"1") != b"1"  # format 1 has no digests
        k = 0
        while True:
            try:
                got = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                damage.truncated += 1
                break
            digest = (got.custom_metadata or {}).get(DIGEST_KEY.encode())
            if checked and (digest is None or digest.decode() != batch_digest(got.batch)):
                damage.corrupt.append(f"{path}: batch {k} ({got.batch.num_rows} rows) fails its "
                                      "digest: altered since it was written")  # fmt: skip
                damage.corrupt_rows += got.batch.num_rows
            else:
                batches.append(got.batch)
            k += 1
    return meta, batches


def _read_raw(root: Path, damage: _Damage) -> list[RawFrames]:
    """Every source's raw frames (segments in name order = time order)."""
    out: list[RawFrames] = []
    for folder in sorted(p for p in (root / "raw").glob("*") if p.is_dir()):
        source, count = "", 0
        batches: list[pa.RecordBatch] = []
        for seg in sorted(folder.glob("*.arrows")):
            meta, got = _read_ipc(seg, b"edgepipe.raw", damage)
            if meta is None:
                continue
            source = meta[b"edgepipe.raw"].decode()
            batches.extend(b for b in got if b.num_rows)
            count += 1
        if count:
            table = pa.Table.from_batches(batches, schema=raw_schema(source).remove_metadata())
            times = np.asarray(table.column("time_ns").to_numpy(), dtype=np.int64)
            seq = np.asarray(table.column("seq").to_numpy(), dtype=np.int64)
            frames = tuple(table.column("frame").to_pylist())
            out.append(RawFrames(source, times, seq, frames, count))
    return out


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
    damage = _Damage()
    for folder in sorted(p for p in (root / "streams").glob("*") if p.is_dir()):
        current: StreamInfo | None = None
        group: list[pa.RecordBatch] = []
        count = 0
        for seg in sorted(folder.glob("*.arrows")):
            info, batches = _read_segment(seg, damage)
            if info is None:
                continue
            if current is not None and info != current and group:
                parts.append(_to_part(current, group, count))
                group, count = [], 0
            current = info
            group.extend(b for b in batches if b.num_rows)
            count += 1
        if current is not None and group:
            parts.append(_to_part(current, group, count))
    parts.sort(key=lambda p: (int(p.seq[0]), p.info.stream))
    raw = _read_raw(root, damage)
    return Capture(
        root, manifest, tuple(parts), tuple(_events(root)), damage.truncated, tuple(raw),
        tuple(damage.corrupt), damage.corrupt_rows,
    )  # fmt: skip


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
