"""Raw-frame segments: round trip, polars, rotation, retention, bound, crash cut, the hook."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from adapters.c37118.testing import RecordingSink
from edgepipe.app.config import parse_config
from edgepipe.capture import (
    CaptureConfig,
    CaptureWriter,
    Recorder,
    read_capture,
    summarize_raw,
)
from edgepipe.core import VirtualClock
from edgepipe.core.source import frames_hook

NS = 1_000_000_000
T0 = 1_795_000_000 * NS


def _writer(tmp_path: Path, clock: VirtualClock, **kw: float) -> CaptureWriter:
    cfg = CaptureConfig(dir=str(tmp_path / "cap"), raw_frames=True, **kw)  # type: ignore[arg-type]
    w = CaptureWriter(cfg, clock, "site-a", {"pmu1": {"type": "pmu", "idcode": 1}})
    w.open()
    return w


def _frames(k0: int, n: int, size: int = 40) -> list[bytes]:
    return [bytes([0xAA, 0x01]) + k.to_bytes(4, "big") * (size // 4) for k in range(k0, k0 + n)]


def test_recorder_hands_raw_frames_to_the_writer_only(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    inner = RecordingSink()
    rec = Recorder(inner, w, clock)
    hook = frames_hook(rec)
    assert hook is not None
    hook("pmu1", T0, _frames(0, 3))
    hook("pmu1", T0 + NS, _frames(3, 2))
    hook("other", T0 + 2 * NS, _frames(100, 1))
    hook("pmu1", T0 + 3 * NS, [])  # nothing to keep
    w.close()
    assert not inner.batches and not inner.infos  # the pipeline never sees raw frames
    cap = read_capture(tmp_path / "cap")
    assert [r.source for r in cap.raw] == ["other", "pmu1"]
    raw = cap.raw[1]
    assert list(raw.frames) == _frames(0, 5)
    assert raw.times_ns.tolist() == [T0] * 3 + [T0 + NS] * 2
    assert raw.seq.tolist() == [1, 1, 1, 2, 2]
    (seg,) = (tmp_path / "cap" / "raw" / "pmu1").glob("*.arrows")
    df = pl.read_ipc_stream(seg)  # plain Arrow IPC: polars reads it as it is
    assert df.columns == ["time_ns", "seq", "frame"] and df["frame"].to_list() == _frames(0, 5)
    infos = {s.raw: s for s in summarize_raw(cap)}
    assert infos["pmu1"].frames == 5 and infos["pmu1"].bytes == 5 * 42
    assert w.stats.raw_frames == w.stats.raw_frames_written == 6


def test_without_raw_frames_the_recorder_has_no_hook(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    cfg = CaptureConfig(dir=str(tmp_path / "cap"))
    rec = Recorder(RecordingSink(), CaptureWriter(cfg, clock), clock)
    assert frames_hook(rec) is None and frames_hook(RecordingSink()) is None
    pmu = {"type": "pmu", "url": "tcp://127.0.0.1:4712", "idcode": 1}
    table = {"site": "s", "sources": {"p": pmu}, "capture": {"dir": "c", "raw_frames": True}}
    config = parse_config(table)
    assert config.capture is not None and config.capture.raw_frames


def test_raw_segments_rotate_and_retention_counts_them(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock, segment_bytes=4096, max_bytes=20_000, segment_s=10.0)
    for i in range(40):
        w.append_frames("pmu1", T0 + i * NS, _frames(i * 30, 30, 200), w.next_seq())
        w.flush()
        clock.advance(NS)
    w.close()
    segs = sorted((tmp_path / "cap" / "raw").glob("*/*.arrows"))
    assert w.stats.segments_opened == 40 and w.stats.segments_deleted == 40 - len(segs)
    assert sum(p.stat().st_size for p in segs) <= 20_000
    (raw,) = read_capture(tmp_path / "cap").raw
    assert raw.frames[-1] == _frames(39 * 30 + 29, 1, 200)[0]  # the newest are kept
    assert raw.segments == len(segs)
    # Age: an old raw segment goes at the next pass, like a stream segment.
    clock.advance_to(os.stat(segs[-1]).st_mtime_ns)
    old = segs[0]
    os.utime(old, ns=(clock.time_ns() - 30 * 86400 * NS, clock.time_ns() - 30 * 86400 * NS))
    w.apply_retention()
    assert not old.exists()


def test_pending_raw_frames_are_bounded_and_drops_counted(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock, max_pending_rows=25)
    for i in range(4):
        w.append_frames("pmu1", T0 + i * NS, _frames(i * 10, 10), w.next_seq())
    assert w.stats.raw_frames_dropped == 20 and w.stats.raw_frames == 40
    w.close()
    (raw,) = read_capture(tmp_path / "cap").raw
    assert list(raw.frames) == _frames(20, 20)  # the oldest went first


def test_a_raw_segment_cut_by_a_crash_reads_to_its_last_batch(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    for i in range(3):
        w.append_frames("pmu1", T0 + i * NS, _frames(i * 10, 10), w.next_seq())
        w.flush()
    (seg,) = (tmp_path / "cap" / "raw").glob("*/*.arrows")
    seg.write_bytes(seg.read_bytes()[:-30])  # died during the third write, never closed
    cap = read_capture(tmp_path / "cap")
    assert cap.truncated_segments == 1 and list(cap.raw[0].frames) == _frames(0, 20)


def test_a_raw_frame_altered_on_disk_leaves_out_its_batch(tmp_path: Path) -> None:
    w = _writer(tmp_path, VirtualClock(T0))
    for i in range(3):
        w.append_frames("pmu1", T0 + i * NS, _frames(i * 10, 10), w.next_seq())
        w.flush()
    w.close()
    (seg,) = (tmp_path / "cap" / "raw").glob("*/*.arrows")
    data = bytearray(seg.read_bytes())
    at = data.index(_frames(25, 1)[0])  # a frame of the third batch
    data[at + 10] ^= 0x80
    seg.write_bytes(bytes(data))
    cap = read_capture(tmp_path / "cap")
    assert cap.corrupt_batches == 1 and cap.corrupt_rows == 10
    assert list(cap.raw[0].frames) == _frames(0, 20)
