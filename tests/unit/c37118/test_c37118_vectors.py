"""IEEE C37.118.2-2011 Annex D worked examples and the reference captures."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.c37118.codec import (
    NEED_DATA,
    BadFrame,
    ChecksumError,
    Decoder,
    Event,
    UnknownConfig,
    decode_data_block,
    decode_frame,
    encode,
)
from adapters.c37118.constants import Format, FrameType
from adapters.c37118.frames import ConfigFrame, DataFrame
from adapters.capture.pcap import read_flows

Feed = Callable[[Decoder, bytes], list[Event]]


@pytest.fixture
def annex_d(data_dir: Path) -> tuple[bytes, bytes]:
    vec = data_dir / "vectors"
    return (vec / "annexD_cfg2.bin").read_bytes(), (vec / "annexD_data.bin").read_bytes()


def test_annex_d_cfg2_decodes_to_the_documented_values(annex_d: tuple[bytes, bytes]) -> None:
    cfg = decode_frame(annex_d[0], {})
    assert isinstance(cfg, ConfigFrame)
    assert (cfg.frame_type, cfg.idcode, cfg.time_base, cfg.data_rate) == (
        FrameType.CFG2,
        7734,
        1_000_000,
        30,
    )
    assert cfg.soc == 1149577200  # 2006-06-06 07:00:00 UTC
    assert cfg.fraction == 463000
    (pmu,) = cfg.pmus
    assert pmu.station == "Station A"
    assert pmu.fmt == Format.ANALOG_FLOAT  # FREQ int16, analogs float, phasors int16 rect
    assert not (pmu.freq_float or pmu.phasor_float or pmu.phasor_polar)
    assert [(p.name, p.unit, p.phunit & 0xFFFFFF) for p in pmu.phasors] == [
        ("VA", "V", 915527),
        ("VB", "V", 915527),
        ("VC", "V", 915527),
        ("I1", "A", 45776),
    ]
    assert [(a.name, a.kind) for a in pmu.analogs] == [
        ("ANALOG1", 0),
        ("ANALOG2", 1),
        ("ANALOG3", 2),
    ]
    (word,) = pmu.digitals
    assert word.labels[0] == "BREAKER 1 STATUS" and word.labels[15] == "BREAKER G STATUS"
    assert (word.normal, word.valid) == (0x0000, 0xFFFF)
    assert (pmu.fnom_hz, pmu.cfgcnt) == (60.0, 22)
    assert cfg.rate_hz == 30.0


def test_annex_d_data_frame_decodes_and_both_reencode_byte_identical(
    annex_d: tuple[bytes, bytes],
) -> None:
    cfg_bytes, data_bytes = annex_d
    cfg = decode_frame(cfg_bytes, {})
    assert isinstance(cfg, ConfigFrame)
    frame = decode_frame(data_bytes, {7734: cfg})
    assert isinstance(frame, DataFrame)
    assert (frame.idcode, frame.soc, frame.fraction) == (7734, 1149580800, 16817)
    pmu = frame.pmus[0]
    assert pmu.stat == 0 and not pmu.sync_lost
    assert pmu.phasors[0] == pytest.approx(14635 * 9.15527 + 0j)
    assert abs(pmu.phasors[0]) == pytest.approx(133987.376, rel=1e-6)
    assert pmu.freq_hz == pytest.approx(62.5)  # FREQ 2500 mHz above 60 Hz
    assert pmu.rocof == 0.0
    assert pmu.analogs == (100.0, 1000.0, 10000.0)
    assert pmu.digitals == (0x3C12,)
    assert frame.time_ns(cfg.time_base) == 1149580800_016817000
    assert encode(cfg) == cfg_bytes
    assert encode(frame, cfg) == data_bytes


def test_annex_d_streamed(annex_d: tuple[bytes, bytes], feed: Feed) -> None:
    events = feed(Decoder(), annex_d[0] + annex_d[1] * 3)
    assert [type(e) for e in events] == [ConfigFrame] + [DataFrame] * 3
    assert encode(events[1], events[0]) == annex_d[1]  # type: ignore[arg-type]


def test_flipped_bit_is_a_checksum_error(annex_d: tuple[bytes, bytes]) -> None:
    bad = bytearray(annex_d[1])
    bad[20] ^= 0x01
    with pytest.raises(ChecksumError):
        decode_frame(bytes(bad), {})


def test_data_before_its_config_is_reported(annex_d: tuple[bytes, bytes], feed: Feed) -> None:
    events = feed(Decoder(), annex_d[1] + annex_d[0] + annex_d[1])
    assert isinstance(events[0], UnknownConfig) and events[0].idcode == 7734
    assert events[0].frame_bytes == annex_d[1]
    assert [type(e) for e in events[1:]] == [ConfigFrame, DataFrame]


def test_data_block_matches_frame_by_frame(annex_d: tuple[bytes, bytes]) -> None:
    cfg = decode_frame(annex_d[0], {})
    assert isinstance(cfg, ConfigFrame)
    block = decode_data_block([annex_d[1]] * 4, cfg)
    one = decode_frame(annex_d[1], {7734: cfg})
    assert isinstance(one, DataFrame)
    assert block.phasors.shape == (4, 4)
    assert block.phasors[3].tolist() == pytest.approx(list(one.pmus[0].phasors))
    assert block.freq[:, 0].tolist() == [62.5] * 4
    assert block.times_ns.tolist() == [one.time_ns(cfg.time_base)] * 4
    assert block.digitals[0, 0] == 0x3C12
    bad = bytearray(annex_d[1])
    bad[30] ^= 0xFF
    with pytest.raises(ChecksumError):
        decode_data_block([annex_d[1], bytes(bad)], cfg)


# Frame counts per direction: (commands, CFG-2, header, data) for each C37.118 flow.
# Established independently with tshark 4.0 (`tshark -r F -Y synphasor -T fields -e
# synphasor.frtype`, counted per type) and the README. c37_1100_clean_tcp.pcap also holds
# a 16-byte header frame with empty text (packet 6, bytes `aa 11 00 10 ...`, good CHK,
# found by hex inspection) that tshark 4.0 does not dissect; hence 427 frames, not 426.
CAPTURES = {
    "C37.118_1PMU_TCP.pcap": [(3, 0, 0, 0), (0, 1, 0, 252)],
    "C37.118_1PMU_UDP.pcap": [(4, 0, 0, 0), (0, 1, 0, 356)],
    "C37.118_1PMU_UDP_minimal.pcap": [(3, 0, 0, 0), (0, 1, 0, 1)],
    "C37.118_2PMUsInSync_TCP.pcap": [(3, 0, 0, 0), (0, 1, 0, 1501), (3, 0, 0, 0), (0, 1, 0, 1501)],
    "C37.118_4in1PMU_TCP.pcap": [(8, 0, 0, 0), (0, 3, 0, 1342)],
    "c37_1100_clean_tcp.pcap": [(3, 0, 0, 0), (0, 1, 1, 422)],
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_decodes_with_exact_counts(name: str, data_dir: Path, feed: Feed) -> None:
    flows = [
        f for f in read_flows(data_dir / "c37118" / name) if 4712 in (f.key.sport, f.key.dport)
    ]
    counts = []
    for flow in flows:
        decoder = Decoder()
        events = feed(decoder, flow.payload())
        assert not [e for e in events if isinstance(e, BadFrame | UnknownConfig)]
        kinds = Counter(e.frame_type for e in events)  # type: ignore[union-attr]
        counts.append(
            (
                kinds[FrameType.COMMAND],
                kinds[FrameType.CFG2],
                kinds[FrameType.HEADER],
                kinds[FrameType.DATA],
            )
        )
        assert decoder.stats.bad_crc == 0 and decoder.buffered == 0
        data = [e for e in events if isinstance(e, DataFrame)]
        assert all(len(d.pmus) == len(decoder.configs[d.idcode].pmus) for d in data)
        assert all(not math.isinf(d.pmus[0].freq_hz) for d in data)
    assert counts == CAPTURES[name]


def test_four_pmu_capture_has_four_pmus(data_dir: Path) -> None:
    flow = max(
        read_flows(data_dir / "c37118" / "C37.118_4in1PMU_TCP.pcap"), key=lambda f: len(f.payload())
    )
    decoder = Decoder()
    decoder.receive_data(flow.payload())
    frames = []
    while (event := decoder.next_event()) is not NEED_DATA:
        frames.append(event)
    cfg = next(f for f in frames if isinstance(f, ConfigFrame))
    assert len(cfg.pmus) == 4
    data = [f for f in frames if isinstance(f, DataFrame)]
    assert {len(d.pmus) for d in data} == {4}
