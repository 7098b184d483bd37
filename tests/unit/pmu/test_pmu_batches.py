"""C37.118 frames -> StreamInfo and SampleBatch: names, units, times, values, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters.c37118.batches import (
    block_to_batches,
    duplicate_idcodes,
    guess_phase,
    stream_infos,
    to_batches,
)
from adapters.c37118.codec import decode_data_block, encode
from adapters.c37118.constants import Format, FrameType
from adapters.c37118.frames import (
    AnalogChannel,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
)
from edgepipe.core import ChannelKind, Quality


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("VA", "A"),
        ("VAM", "A"),
        ("V_A", "A"),
        ("Va", "A"),
        ("IB", "B"),
        ("VCN", "C"),
        ("PHASE A", "A"),
        ("Bus 2 VB", "B"),
        ("VPOS", "1"),
        ("V1", "1"),
        ("I+", "1"),
        ("Station A VC", "C"),
        ("IL2", ""),
        ("L3", "C"),
        ("FREQ", ""),
        ("VAB", ""),
        ("CHAN 1", ""),
    ],
)
def test_guess_phase(name: str, phase: str) -> None:
    assert guess_phase(name) == phase


def _cfg(time_base: int = 1_000_000) -> ConfigFrame:
    pmu = PmuConfig(
        station="  SUB-A  ",
        idcode=11,
        fmt=Format.PHASOR_POLAR | Format.PHASOR_FLOAT | Format.FREQ_FLOAT | Format.ANALOG_FLOAT,
        phasors=(PhasorChannel("VA", False, 1.0), PhasorChannel("IA", True, 1.0)),
        analogs=(AnalogChannel("MW", 1, 1.0),),
        digitals=(DigitalWord(tuple(f"B{i}" for i in range(16))),),
        fnom_hz=50.0,
    )
    pmu2 = PmuConfig(station="SUB-B", idcode=12, fmt=pmu.fmt, phasors=pmu.phasors[:1])
    return ConfigFrame(FrameType.CFG2, 2, 10, 0, 0, time_base, (pmu, pmu2), 30)


def test_stream_infos_channels_units_and_nominals() -> None:
    infos = stream_infos("pmu1", _cfg(), {"VA": 132_790.0})
    a, b = infos
    assert (a.stream, a.asset, a.idcode, a.rate_hz, a.nominal_hz) == (
        "pmu1/11",
        "SUB-A",
        11,
        30.0,
        50.0,
    )
    names = [c.name for c in a.channels]
    assert names == ["VA.mag", "VA.ang", "IA.mag", "IA.ang", "freq", "rocof", "MW", "digital0"]
    va, _, ia = a.channels[0], a.channels[1], a.channels[2]
    assert (va.kind, va.unit, va.phasor, va.phase, va.nominal) == (
        ChannelKind.MAGNITUDE,
        "V",
        "VA",
        "A",
        132_790.0,
    )
    assert (ia.unit, ia.nominal) == ("A", 0.0)
    assert a.channels[1].unit == "rad" and a.channels[4].nominal == 50.0
    assert b.stream == "pmu1/12" and len(b.channels) == 4


def _data(soc: int, frac: int, stat: int, va: complex) -> DataFrame:
    p1 = PmuData(stat, (va, 10 + 0j), 50.01, 0.1, (5.5,), (0x00F0,))
    p2 = PmuData(0, (complex(math.nan, math.nan),), math.nan, 0.0)
    return DataFrame(2, 10, soc, frac, (p1, p2))


def test_to_batches_times_values_and_quality_in_one_batch_per_pmu() -> None:
    cfg = _cfg(time_base=3_000_000)
    frames = [
        _data(1_700_000_000, 0, 0x0000, 100 + 0j),
        _data(1_700_000_000, 100_000, 0x2000, 100j),  # 1/30 s, sync lost
        _data(1_700_000_000, 200_000, 0x4000 | 0x0200, -100 + 0j),  # error, modified
        _data(1_700_000_000, 300_000, 0x8000 | 0x0800, 1 + 0j),  # test mode, trigger
        _data(1_700_000_001, 0, 0xC000, 1 + 0j),
    ]
    infos = stream_infos("p", cfg, None)
    a, b = to_batches(frames, cfg, infos)
    assert len(a) == 5 and a.stream == "p/11" and a.device_time
    base = 1_700_000_000 * 10**9
    assert a.times_ns.tolist() == [
        base,
        base + 33_333_333,
        base + 66_666_667,
        base + 100_000_000,
        base + 10**9,
    ]
    assert a.values[1].tolist() == pytest.approx([100, math.pi / 2, 10, 0, 50.01, 0.1, 5.5, 240])
    assert a.values[2, 1] == pytest.approx(math.pi)
    q = [Quality(int(x)) for x in a.quality]
    assert q == [
        Quality.GOOD,
        Quality.SYNC_LOST,
        Quality.DEVICE_ERROR | Quality.INVALID | Quality.INTERPOLATED,
        Quality.INVALID | Quality.TRIGGERED,
        Quality.DEVICE_ERROR | Quality.INVALID,
    ]
    assert np.isnan(b.values[:, 0]).all() and np.isnan(b.values[:, 2]).all()
    assert to_batches([], cfg, infos) == []


def test_two_blocks_with_one_idcode_stay_two_streams() -> None:
    # A misconfigured PDC: blocks 1 and 3 both say IDCODE 5. Merged, two devices' rows
    # would interleave in one stream with equal time stamps.
    def pmu(station: str, fmt: Format) -> PmuConfig:
        return PmuConfig(
            station, 5 if station != "B" else 6, fmt, (PhasorChannel("V", False, 1.0),)
        )

    cfg = ConfigFrame(
        FrameType.CFG2, 2, 1, 0, 0, 1_000_000,
        (pmu("A", Format.FREQ_FLOAT), pmu("B", Format(0)), pmu("C", Format.PHASOR_FLOAT)), 30,
    )  # fmt: skip
    infos = stream_infos("pdc", cfg)
    assert [i.stream for i in infos] == ["pdc/5", "pdc/6", "pdc/5-block3"]
    assert duplicate_idcodes(cfg) == [5]
    frame = DataFrame(2, 1, 1, 0, tuple(PmuData(0, (complex(v, 0),), 60.0, 0.0) for v in (7, 8, 9)))
    batches = to_batches([frame], cfg, infos)
    assert {b.stream: float(b.values[0, 0]) for b in batches} == {
        "pdc/5": 7.0, "pdc/6": 8.0, "pdc/5-block3": 9.0,
    }  # fmt: skip


TIME_CASES = [  # (STAT, FRACSEC upper byte, quality of the first PMU)
    (0x0000, 0x00, Quality.GOOD),
    (0x0010, 0x00, Quality.SYNC_LOST),  # unlocked 10-100 s (bits 05-04 = 01)
    (0x0030, 0x00, Quality.SYNC_LOST),  # unlocked over 1000 s
    (0x0100, 0x00, Quality.GOOD),  # PMU time quality 100: within 100 µs
    (0x0140, 0x00, Quality.SYNC_LOST),  # 101: within 1 ms only
    (0x01C0, 0x00, Quality.SYNC_LOST),  # 111: over 10 ms or unknown
    (0x1000, 0x00, Quality.RECEIPT_TIME),  # bit 12: sorted by arrival
    (0x0000, 0x06, Quality.GOOD),  # message time quality: within 100 µs
    (0x0000, 0x07, Quality.SYNC_LOST),  # within 1 ms
    (0x0000, 0x0F, Quality.SYNC_LOST),  # clock failure
    (0x0000, 0x70, Quality.GOOD),  # leap second flags only
]


def test_time_quality_in_stat_and_fracsec_becomes_sync_lost_on_both_paths() -> None:
    # C37.118.2-2011 Table 3 (FRACSEC time quality) and Table 7 (STAT bits 12, 08-04):
    # a time that may be off by more than 100 µs is no base for phase angles.
    cfg = _cfg()
    frames = [_data(1_700_000_000, (tq << 24) | k * 10_000, st, 1 + 0j)
              for k, (st, tq, _) in enumerate(TIME_CASES)]  # fmt: skip
    infos = stream_infos("p", cfg, None)
    a, b = to_batches(frames, cfg, infos)
    want = [q for _, _, q in TIME_CASES]
    assert [Quality(int(x)) for x in a.quality] == want
    # the second PMU's STAT is 0: only the frame's time quality reaches it
    assert [Quality(int(x)) for x in b.quality] == [
        Quality.SYNC_LOST if tq in (0x07, 0x0F) else Quality.GOOD for _, tq, _ in TIME_CASES
    ]
    block = decode_data_block([encode(f, cfg) for f in frames], cfg)
    a2, b2 = block_to_batches(block, cfg, infos)
    assert a2.quality.tolist() == a.quality.tolist() and b2.quality.tolist() == b.quality.tolist()
