"""Replay mechanics: hand-over granularity does not change alerts; pacing; statuses."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest

from adapters.capture.importers import import_pcap
from edgepipe.app.capture_commands import import_to_capture
from edgepipe.app.config import AppConfig
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import Capture, CaptureConfig, CaptureWriter, read_capture
from edgepipe.core import SampleBatch, SourceStatus, StatusKind, VirtualClock
from edgepipe.delivery import alert_to_json

PCAP = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "c37118"
    / "C37.118_4in1PMU_TCP.pcap"
)  # fmt: skip
NS = 1_000_000_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    out = tmp_path_factory.mktemp("rp") / "cap"
    import_to_capture(out, {"name": "ref"}, lambda s: import_pcap(PCAP, "ref", s))
    return read_capture(out)


def _alerts(capture: Capture, options: ReplayOptions) -> list[bytes]:
    config = AppConfig(site="s", sources=())
    result = asyncio.run(run_replay(capture, config, options, io.StringIO()))
    return [alert_to_json(a) for a in result.alerts]


def test_alerts_do_not_depend_on_how_rows_are_handed_over(capture: Capture) -> None:
    coarse = _alerts(capture, ReplayOptions(tick_ns=10 * NS))
    fine = _alerts(capture, ReplayOptions(tick_ns=NS // 50))  # one frame per tick (50/s)
    assert coarse and coarse == fine  # the same alerts in the same order


def test_a_time_range_keeps_only_its_alerts(capture: Capture) -> None:
    t0 = int(capture.parts[0].times_ns[0])
    late = _alerts(capture, ReplayOptions(from_ns=t0 + 10 * NS))
    assert all(b'"event_time_ns":' in a for a in late)
    for a in late:
        ns = int(a.split(b'"event_time_ns":')[1].split(b",")[0])
        assert ns >= t0 + 10 * NS


def test_speed_paces_against_real_time(capture: Capture) -> None:
    t0 = int(capture.parts[0].times_ns[0])
    opts = ReplayOptions(speed=10.0, from_ns=t0, to_ns=t0 + 2 * NS, tick_ns=NS // 10)
    started = time.monotonic()
    _alerts(capture, opts)
    assert time.monotonic() - started >= 0.18  # 2 s of event time at 10x


def test_status_events_replay_into_data_quality_alerts(tmp_path: Path, capture: Capture) -> None:
    # A copy of the capture with a QUIET status recorded after its last row.
    part = capture.parts[0]
    clock = VirtualClock(int(part.times_ns[-1]))
    w = CaptureWriter(CaptureConfig(dir=str(tmp_path / "q")), clock, "s")
    w.open()
    w.on_stream(part.info)

    w.append(SampleBatch(part.info.stream, part.times_ns, part.values, part.quality), 1)
    quiet = SourceStatus(part.info.source, part.info.stream, StatusKind.QUIET,
                         int(part.times_ns[-1]) + 2 * NS, "no data")  # fmt: skip
    w.on_status(quiet, 2)
    w.close()
    alerts = _alerts(read_capture(tmp_path / "q"), ReplayOptions())
    assert any(b'"state":"raised"' in a and str(quiet.time_ns).encode() in a for a in alerts)
