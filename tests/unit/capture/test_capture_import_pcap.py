"""Golden: reference pcaps -> capture -> replay gives back every frame's values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from adapters.c37118.codec import NEED_DATA, Decoder
from adapters.c37118.frames import ConfigFrame, DataFrame
from adapters.c37118.testing import RecordingSink
from adapters.capture.importers import import_pcap
from adapters.capture.pcap import read_flows
from adapters.modbus.profile import parse_profile
from edgepipe.app.capture_commands import import_to_capture
from edgepipe.app.replay import ReplayOptions, replay_capture
from edgepipe.capture import read_capture
from edgepipe.core import VirtualClock

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
C37 = DATA / "c37118"


def _frames(path: Path) -> tuple[list[DataFrame], dict[int, ConfigFrame]]:
    """Every data frame, decoded independently of the importer (flow by flow)."""
    out: list[DataFrame] = []
    configs: dict[int, ConfigFrame] = {}
    for _ in range(2):  # the second pass knows every configuration
        out = []
        for flow in read_flows(path):
            dec = Decoder(configs)
            for _, chunk in flow.chunks:
                dec.receive_data(chunk)
                while (ev := dec.next_event()) is not NEED_DATA:
                    if isinstance(ev, DataFrame):
                        out.append(ev)
            configs.update(dec.configs)
    return out, configs


@pytest.mark.parametrize(
    ("name", "frames", "streams"),
    [
        ("C37.118_1PMU_TCP.pcap", 252, 1),
        ("C37.118_1PMU_UDP.pcap", 356, 1),
        ("C37.118_4in1PMU_TCP.pcap", 1342, 4),
        ("c37_1100_clean_tcp.pcap", 422, 1),
    ],
    ids=["tcp", "udp", "4in1-split-segments", "other-device"],
)
def test_pcap_capture_replay_reproduces_frame_values(
    tmp_path: Path, name: str, frames: int, streams: int
) -> None:
    out = tmp_path / "cap"
    source = {"name": "ref", "type": "pcap"}
    stats = import_to_capture(out, source, lambda s: import_pcap(C37 / name, "ref", s))
    assert stats.c37118_frames == frames and len(stats.streams) == streams
    sink = RecordingSink()
    asyncio.run(replay_capture(read_capture(out), sink, VirtualClock(), ReplayOptions()))
    assert [i.stream for i in sink.infos] == stats.streams
    decoded, configs = _frames(C37 / name)
    assert len(decoded) == frames
    for p, info in enumerate(sink.infos):
        got = [b for b in sink.batches if b.stream == info.stream]
        values = np.concatenate([b.values for b in got])
        times = np.concatenate([b.times_ns for b in got])
        assert len(times) == frames
        first = decoded[0].pmus[p]
        k = len(first.phasors)
        expect_ph = np.array([[ph for ph in f.pmus[p].phasors] for f in decoded])
        np.testing.assert_allclose(values[:, 0 : 2 * k : 2], np.abs(expect_ph), rtol=1e-12)
        np.testing.assert_allclose(values[:, 2 * k], [f.pmus[p].freq_hz for f in decoded])
        expect_t = [f.time_ns(configs[f.idcode].time_base) for f in decoded]
        np.testing.assert_array_equal(times, expect_t)


def test_pcap_with_a_range_replays_only_that_range(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    import_to_capture(
        out, {"name": "r"}, lambda s: import_pcap(C37 / "C37.118_1PMU_TCP.pcap", "r", s)
    )
    cap = read_capture(out)
    t0 = int(cap.parts[0].times_ns[0])
    sink = RecordingSink()
    opts = ReplayOptions(from_ns=t0 + 1_000_000_000, to_ns=t0 + 2_000_000_000)
    asyncio.run(replay_capture(cap, sink, VirtualClock(), opts))
    times = np.concatenate([b.times_ns for b in sink.batches])
    assert times.min() >= t0 + 1_000_000_000 and times.max() <= t0 + 2_000_000_000
    assert len(times) > 0


PROFILE = {
    "name": "meter",
    "unit_id": 4,
    "poll_interval_s": 1.0,
    "points": [
        {"name": "coil1", "table": "coil", "address": 1, "type": "bool"},
        {"name": "di1", "table": "discrete_input", "address": 1, "type": "bool"},
        {"name": "hr1", "table": "holding", "address": 1, "type": "u16"},
        {"name": "ir1", "table": "input", "address": 1, "type": "u16", "scale": 0.5},
    ],
}


def test_modbus_requests_pair_with_responses_and_decode_with_the_profile() -> None:
    sink = RecordingSink()
    stats = import_pcap(DATA / "modbus" / "modbus_example.pcap", "mb", sink, parse_profile(PROFILE))
    m = stats.modbus
    assert (m.requests, m.responses, m.paired, m.unpaired) == (24, 24, 24, 0)
    assert m.exceptions == 1  # one request the server refused
    (info,) = sink.infos
    assert info.stream == "mb/127.0.0.1/4" and [c.name for c in info.channels] == [
        "coil1", "di1", "hr1", "ir1"]  # fmt: skip
    rows = np.concatenate([b.values for b in sink.batches])
    assert rows.shape == (4, 4)  # unit 4 answered one read of each table
    last = rows[-1]
    assert not np.isnan(last).any()  # every point seen once all four reads are in
    assert sink.batches[0].device_time is False  # Modbus has no device time stamps
