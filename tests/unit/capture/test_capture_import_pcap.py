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


def test_udp_traffic_that_is_not_c37118_is_ignored_not_counted_as_bad_frames() -> None:
    # Clean by its provenance; it also holds NetBIOS (138) and broadcasts/multicast on
    # 4987-4989 that are not C37.118: before, each counted as a bad frame ("no SYNC byte").
    stats = import_pcap(C37 / "C37.118_2PMUsInSync_TCP.pcap", "two", RecordingSink())
    assert stats.c37118_bad_frames == 0 and stats.c37118_frames == 3002
    assert stats.other_flows == 4 and stats.c37118_flows == 4
    assert any(k.endswith(":138/udp") for k in stats.other_flow_keys)
    assert stats.damage is None and stats.notes == []


def test_a_corrupt_stream_on_the_c37118_port_still_counts_its_bad_frames() -> None:
    import io

    import dpkt

    junk = b"\xaa\x31\x00\x20" + b"\x00" * 28  # a CFG-2 of 32 bytes with a wrong CHK
    seg = dpkt.tcp.TCP(sport=4712, dport=50000, seq=1, flags=dpkt.tcp.TH_ACK, data=junk)
    ip = dpkt.ip.IP(src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", p=dpkt.ip.IP_PROTO_TCP, data=seg)
    out = io.BytesIO()
    dpkt.pcap.Writer(out).writepkt(bytes(dpkt.ethernet.Ethernet(data=ip)), ts=1.0)
    stats = import_pcap(out.getvalue(), "j", RecordingSink())
    assert stats.c37118_flows == 1 and stats.other_flows == 0
    assert stats.c37118_bad_frames >= 1


def test_a_truncated_pcap_imports_what_came_before_and_says_where_it_stops() -> None:
    data = (C37 / "C37.118_1PMU_TCP.pcap").read_bytes()
    stats = import_pcap(data[: len(data) // 2], "half", RecordingSink())
    assert 0 < stats.c37118_frames < 252 and stats.rows == stats.c37118_frames
    assert stats.damage is not None and "cut short" in stats.damage and "at byte" in stats.damage


def test_modbus_reads_the_profile_does_not_map_are_explained() -> None:
    stats = import_pcap(DATA / "modbus" / "modbus_example.pcap", "mb", RecordingSink())
    assert stats.rows == 0 and stats.modbus_reads == 8
    (note,) = stats.notes
    assert "8 Modbus read(s)" in note and "--profile" in note and "unit 4" in note
    other = parse_profile({**PROFILE, "unit_id": 1})
    stats = import_pcap(DATA / "modbus" / "modbus_example.pcap", "mb", RecordingSink(), other)
    (note,) = stats.notes
    assert stats.rows == 0 and "8 of 8" in note and "8 for unit(s) other than" in note
    assert "(4, 5)" in note and "reads unit 1: coil 1; discrete_input 1" in note
    far = parse_profile({**PROFILE, "points": [{"name": "x", "table": "input", "address": 9}]})
    stats = import_pcap(DATA / "modbus" / "modbus_example.pcap", "mb", RecordingSink(), far)
    (note,) = stats.notes
    assert stats.rows == 0 and "4 of registers the profile does not map" in note
