"""Capture segments: round trip, polars readability, rotation, retention, crash tolerance."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from adapters.c37118.testing import RecordingSink
from edgepipe.capture import CaptureConfig, CaptureWriter, Recorder, read_capture, summarize
from edgepipe.core import (
    ChannelInfo,
    ChannelKind,
    ConfigError,
    Quality,
    SampleBatch,
    SourceStatus,
    StatusKind,
    StreamInfo,
    VirtualClock,
)

NS = 1_000_000_000
T0 = 1_795_000_000 * NS


def _info(stream: str = "sim/1", extra: bool = False) -> StreamInfo:
    chans = [
        ChannelInfo("VA.mag", ChannelKind.MAGNITUDE, "V", "VA", "A", 132_790.0),
        ChannelInfo("VA.ang", ChannelKind.ANGLE, "rad", "VA", "A"),
        ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=60.0),
    ]
    if extra:
        chans.append(ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s"))
    return StreamInfo(stream, "sim", "PMU1", tuple(chans), 60.0, 60.0, 1, "pmu", (("k", 2.0),))


def _batch(info: StreamInfo, k0: int, n: int) -> SampleBatch:
    k = np.arange(k0, k0 + n, dtype=np.int64)
    values = np.column_stack([k * 1.0 + c for c in range(len(info.channels))])
    values[0, 1] = np.nan
    quality = np.where(k % 7 == 0, int(Quality.SYNC_LOST), 0).astype(np.uint16)
    return SampleBatch(info.stream, T0 + k * NS // 60, values, quality)


def _writer(tmp_path: Path, clock: VirtualClock, **kw: float) -> CaptureWriter:
    cfg = CaptureConfig(dir=str(tmp_path / "cap"), **kw)  # type: ignore[arg-type]
    w = CaptureWriter(cfg, clock, "site-a", {"sim": {"type": "pmu", "idcode": 1}})
    w.open()
    return w


def test_round_trip_keeps_rows_metadata_and_order(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    inner = RecordingSink()
    rec = Recorder(inner, w, clock)
    info = _info()
    rec.on_stream(info)
    batches = [_batch(info, 0, 5), _batch(info, 5, 3)]
    for b in batches:
        rec.on_batch(b)
    rec.on_status(SourceStatus("sim", "sim/1", StatusKind.QUIET, T0 + 5 * NS, "no data"))
    w.close()
    assert inner.batches == batches  # the tap passes everything on unchanged
    cap = read_capture(tmp_path / "cap")
    assert cap.manifest["site"] == "site-a" and cap.manifest["sources"]["sim"]["idcode"] == 1
    (part,) = cap.parts
    assert part.info == info
    np.testing.assert_array_equal(part.times_ns, np.concatenate([b.times_ns for b in batches]))
    np.testing.assert_array_equal(part.values, np.concatenate([b.values for b in batches]))
    np.testing.assert_array_equal(part.quality, np.concatenate([b.quality for b in batches]))
    assert part.seq.tolist() == [1] * 5 + [2] * 3
    (event,) = cap.events
    assert event.seq == 3 and event.status.kind is StatusKind.QUIET


def test_segments_are_plain_arrow_ipc_readable_with_polars(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    info = _info()
    w.on_stream(info)
    w.append(_batch(info, 0, 10), w.next_seq())
    w.close()
    (seg,) = (tmp_path / "cap" / "streams").glob("*/*.arrows")
    df = pl.read_ipc_stream(seg)
    assert df.columns == ["time_ns", "quality", "seq", "device", "VA.mag", "VA.ang", "freq"]
    assert df["time_ns"][0] == T0 and df.height == 10
    meta = json.loads((tmp_path / "cap" / "capture.json").read_text())
    assert meta["format"] == "2" and meta["edgepipe_version"]


def test_layout_change_starts_a_new_part(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    a, b = _info(), _info(extra=True)
    w.on_stream(a)
    w.append(_batch(a, 0, 4), w.next_seq())
    w.on_stream(b)
    w.append(_batch(b, 4, 4), w.next_seq())
    w.close()
    parts = read_capture(tmp_path / "cap").parts
    assert [p.info for p in parts] == [a, b] and [len(p) for p in parts] == [4, 4]


def test_rotation_by_time_and_by_size(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock, segment_s=10.0, segment_bytes=4096)
    info = _info()
    w.on_stream(info)
    for i in range(3):  # time: one flush every 10 s closes the segment
        w.append(_batch(info, i * 10, 10), w.next_seq())
        w.flush()
        clock.advance(10 * NS)
    assert w.stats.segments_opened == 3
    w.append(_batch(info, 100, 2000), w.next_seq())  # size: > 4096 bytes in one flush
    w.flush()
    w.append(_batch(info, 2100, 10), w.next_seq())
    w.close()
    assert w.stats.segments_opened == 5
    cap = read_capture(tmp_path / "cap")
    assert len(cap.parts) == 1 and len(cap.parts[0]) == 2040 and cap.parts[0].segments == 5


def test_retention_deletes_oldest_by_size_and_age(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock, segment_bytes=4096, max_bytes=40_000, max_age_s=3600.0)
    info = _info()
    w.on_stream(info)
    for i in range(20):
        w.append(_batch(info, i * 300, 300), w.next_seq())
        w.flush()
    w.close()
    total = sum(p.stat().st_size for p in (tmp_path / "cap" / "streams").glob("*/*.arrows"))
    assert total <= 40_000 and w.stats.segments_deleted > 0
    cap = read_capture(tmp_path / "cap")
    assert cap.parts[0].times_ns[-1] == T0 + (20 * 300 - 1) * NS // 60  # newest kept
    # Age: a segment last written two hours ago (file time) goes at the next retention pass.
    segs = sorted((tmp_path / "cap" / "streams").glob("*/*.arrows"))
    old = segs[0]
    clock.advance_to(os.stat(segs[-1]).st_mtime_ns)
    os.utime(old, ns=(clock.time_ns() - 7200 * NS, clock.time_ns() - 7200 * NS))
    w.apply_retention()
    assert not old.exists() and segs[-1].exists()


def _three_batches(tmp_path: Path, close: bool = True) -> Path:
    """A capture of one segment with three flushed batches of 10 rows (k 0-29); its path.
    ``close=False``: left as a crash leaves it, without the end-of-stream marker."""
    w = _writer(tmp_path, VirtualClock(T0))
    info = _info()
    w.on_stream(info)
    for i in range(3):
        w.append(_batch(info, i * 10, 10), w.next_seq())
        w.flush()  # what the recorder does every flush_s
    if close:
        w.close()
    (seg,) = (tmp_path / "cap" / "streams").glob("*/*.arrows")
    return seg


def test_a_segment_cut_by_a_crash_reads_to_its_last_batch(tmp_path: Path) -> None:
    seg = _three_batches(tmp_path, close=False)
    data = seg.read_bytes()  # the process dies here: no end-of-stream marker, no close
    seg.write_bytes(data[:-37])  # and the last write was cut half way
    cap = read_capture(tmp_path / "cap")
    assert cap.truncated_segments == 1
    assert len(cap.parts[0]) == 20  # everything flushed before the cut batch survives


def test_a_batch_altered_on_disk_is_left_out_and_named(tmp_path: Path) -> None:
    # Format 1 had no checksum: a flipped bit in a value read back as a plausible number.
    seg = _three_batches(tmp_path)
    data = bytearray(seg.read_bytes())
    at = data.index(np.float64(15.0).tobytes())  # VA.mag of k = 15: the second batch
    data[at + 6] ^= 0x01
    seg.write_bytes(bytes(data))
    cap = read_capture(tmp_path / "cap")
    assert cap.corrupt_batches == 1 and cap.corrupt_rows == 10
    assert cap.corrupt[0].startswith(f"{seg}: batch 1 (10 rows) fails its digest")
    k = cap.parts[0].values[:, 0]
    assert len(k) == 20 and set(k) == set(range(10)) | set(range(20, 30))
    assert cap.truncated_segments == 0


def test_a_format_1_segment_reads_unchecked(tmp_path: Path) -> None:
    import pyarrow as pa

    seg = _three_batches(tmp_path)
    table = pa.ipc.open_stream(seg.read_bytes()).read_all()
    meta = dict(table.schema.metadata) | {b"edgepipe.format": b"1"}
    with (
        pa.OSFile(str(seg), "wb") as f,
        pa.ipc.new_stream(f, table.schema.with_metadata(meta)) as out,
    ):
        for batch in table.to_batches():
            out.write_batch(batch)  # no digest, as format 1 wrote
    cap = read_capture(tmp_path / "cap")
    assert cap.corrupt_batches == 0 and len(cap.parts[0]) == 30


def test_pending_rows_are_bounded_and_drops_counted(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock, max_pending_rows=25)
    info = _info()
    w.on_stream(info)
    for i in range(4):
        w.append(_batch(info, i * 10, 10), w.next_seq())
    assert w.stats.rows_dropped == 20 and w.stats.rows == 40
    w.close()
    assert len(read_capture(tmp_path / "cap").parts[0]) == 20


def test_info_counts_gaps_and_bad_quality(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = _writer(tmp_path, clock)
    info = _info()
    w.on_stream(info)
    w.append(_batch(info, 0, 14), w.next_seq())
    w.append(_batch(info, 20, 10), w.next_seq())  # frames 14..19 missing
    w.close()
    (s,) = summarize(read_capture(tmp_path / "cap"))
    assert (s.rows, s.gaps, s.missing) == (24, 1, 6)
    assert s.bad_quality == 4  # frames 0, 7, 21, 28 flagged SYNC_LOST
    assert s.nan_values == 2


def test_config_checks_name_their_key() -> None:
    with pytest.raises(ConfigError, match="flush_s"):
        CaptureConfig(dir="x", flush_s=30.0)
    with pytest.raises(ConfigError, match="dir"):
        CaptureConfig()
