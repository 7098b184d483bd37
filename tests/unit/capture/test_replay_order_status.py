"""The alert output of a replay does not depend on its tick: same alerts, same order.

A flush emits its alerts in event-time order (window end, then stream and detector);
source statuses (QUIET/RESUMED) recorded between the rows come out in that order too,
not ahead of every window alert of their tick.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from adapters.capture.importers import import_pcap
from edgepipe.app.capture_commands import import_to_capture
from edgepipe.app.config import AppConfig
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import Capture, CaptureConfig, CaptureWriter, read_capture
from edgepipe.core import Alert, SampleBatch, SourceStatus, StatusKind, VirtualClock

PCAP = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "c37118"
    / "C37.118_4in1PMU_TCP.pcap"
)  # fmt: skip
NS = 1_000_000_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """The reference pcap (4 PMUs) with a stream going QUIET and RESUMED in between."""
    tmp = tmp_path_factory.mktemp("ro")
    import_to_capture(tmp / "ref", {"name": "ref"}, lambda s: import_pcap(PCAP, "ref", s))
    ref = read_capture(tmp / "ref")
    t0 = min(int(p.times_ns[0]) for p in ref.parts)
    cuts = [t0 + 3 * NS + NS // 3, t0 + 7 * NS + NS // 7]
    w = CaptureWriter(CaptureConfig(dir=str(tmp / "q")), VirtualClock(t0), "s")
    w.open()
    for p in ref.parts:
        w.on_stream(p.info)
    seq = 0
    for i, (lo, hi) in enumerate(zip([t0 - 1, *cuts], [*cuts, 1 << 62], strict=True)):
        for p in ref.parts:
            keep = (p.times_ns > lo) & (p.times_ns <= hi)
            seq += 1
            w.append(SampleBatch(p.info.stream, p.times_ns[keep], p.values[keep],
                                 p.quality[keep]), seq)  # fmt: skip
        if i < len(cuts):
            info = ref.parts[1].info
            kind = StatusKind.QUIET if i == 0 else StatusKind.RESUMED
            seq += 1
            w.on_status(SourceStatus(info.source, info.stream, kind, hi, "test"), seq)
    w.close()
    return read_capture(tmp / "q")


def _alerts(capture: Capture, tick_ns: int) -> list[Alert]:
    config = AppConfig(site="s", sources=())
    return asyncio.run(
        run_replay(capture, config, ReplayOptions(tick_ns=tick_ns), io.StringIO())
    ).alerts


@pytest.mark.parametrize("tick_ns", [NS // 50, NS // 3, 3 * NS, 60 * NS])
def test_alert_order_does_not_depend_on_the_tick(capture: Capture, tick_ns: int) -> None:
    one_frame = _alerts(capture, NS // 100)
    assert [a.kind for a in one_frame].count("stream_quiet") == 2
    assert len({a.stream for a in one_frame}) >= 2
    assert _alerts(capture, tick_ns) == one_frame


def test_alerts_come_out_in_event_time_order(capture: Capture) -> None:
    alerts = _alerts(capture, 60 * NS)
    ends = [a.window_end_ns for a in alerts]
    assert ends == sorted(ends)
    quiet = [i for i, a in enumerate(alerts) if a.kind == "stream_quiet"]
    assert 0 < quiet[0] < len(alerts) - 1  # amid the window alerts, not ahead of them
