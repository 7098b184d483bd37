"""Property tests: decode(encode(f)) == f over every format, and garbage never crashes."""

from __future__ import annotations

import cmath
import contextlib
import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.c37118.codec import (
    NEED_DATA,
    BadFrame,
    Decoder,
    Event,
    RecordingDecoder,
    UnknownConfig,
    decode_frame,
    encode,
    encode_cfg3_fragments,
)
from adapters.c37118.constants import Format, FrameType
from adapters.c37118.frames import (
    AnalogChannel,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    HeaderFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
)
from edgepipe.core import ProtocolError

Feed = Callable[[Decoder, bytes], list[Event]]
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16)
u16 = st.integers(0, 0xFFFF)


def f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


@st.composite
def pmu_configs(draw: st.DrawFn, cfg3: bool) -> PmuConfig:
    nph, nan, ndg = draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(0, 2))
    if cfg3:
        phasors = tuple(
            PhasorChannel(
                draw(names),
                draw(st.booleans()),
                f32(draw(st.floats(0.001, 10.0))),
                phscale=draw(u16) & ~0x0800,
                angle_offset=f32(draw(st.floats(-1, 1))),
            )
            for _ in range(nph)
        )
        analogs = tuple(
            AnalogChannel(
                draw(names), 0, f32(draw(st.floats(0.01, 10))), offset=f32(draw(st.floats(-5, 5)))
            )
            for _ in range(nan)
        )
    else:
        phasors = tuple(
            PhasorChannel(draw(names), draw(st.booleans()), draw(st.integers(1, 0xFFFFFF)) * 1e-5)
            for _ in range(nph)
        )
        analogs = tuple(
            AnalogChannel(draw(names), draw(st.integers(0, 2)), float(draw(st.integers(1, 100))))
            for _ in range(nan)
        )
    digitals = tuple(
        DigitalWord(tuple(draw(names) for _ in range(16)), draw(u16), draw(u16)) for _ in range(ndg)
    )
    extras = {}
    if cfg3:
        extras = {
            "g_pmu_id": draw(st.binary(min_size=16, max_size=16)),
            "lat": f32(draw(st.floats(-90, 90))),
            "lon": f32(draw(st.floats(-180, 180))),
            "elev": f32(draw(st.floats(-100, 5000))),
            "svc_class": draw(st.sampled_from(["M", "P"])),
            "window": draw(st.integers(-(2**31), 2**31 - 1)),
            "group_delay": draw(st.integers(-(2**31), 2**31 - 1)),
        }
    return PmuConfig(
        draw(names),
        draw(u16),
        Format(draw(st.integers(0, 15))),
        phasors,
        analogs,
        digitals,
        draw(st.sampled_from([50.0, 60.0])),
        draw(u16),
        **extras,
    )


@st.composite
def configs(
    draw: st.DrawFn, kinds: tuple[FrameType, ...] = (FrameType.CFG1, FrameType.CFG2, FrameType.CFG3)
) -> ConfigFrame:
    kind = draw(st.sampled_from(kinds))
    pmus = tuple(draw(pmu_configs(kind == FrameType.CFG3)) for _ in range(draw(st.integers(1, 4))))
    return ConfigFrame(
        kind,
        draw(st.integers(1, 2)),
        draw(u16),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(1, 0xFFFFFF)),
        pmus,
        draw(st.integers(-32768, 32767)),
    )


@st.composite
def data_for(draw: st.DrawFn, cfg: ConfigFrame) -> DataFrame:
    pmus = []
    for p in cfg.pmus:
        phasors = []
        for c in p.phasors:
            if draw(st.integers(0, 9)) == 0:
                phasors.append(complex(math.nan, math.nan))  # absent data
            elif p.phasor_float:
                phasors.append(cmath.rect(draw(st.floats(0, 1e6)), draw(st.floats(-3.1, 3.1))))
            elif p.phasor_polar:
                phasors.append(
                    cmath.rect(
                        draw(st.integers(0, 65535)) * c.scale,
                        draw(st.integers(-31000, 31000)) * 1e-4,
                    )
                )
            else:
                phasors.append(
                    complex(draw(st.integers(-32767, 32767)), draw(st.integers(-32767, 32767)))
                    * c.scale
                )
        if p.freq_float:
            freq, rocof = draw(st.floats(40, 70)), draw(st.floats(-10, 10))
        else:
            freq, rocof = (
                p.fnom_hz + draw(st.integers(-32767, 32767)) / 1000,
                draw(st.integers(-32767, 32767)) / 100,
            )
        analogs = tuple(
            draw(st.floats(-1e6, 1e6))
            if p.analog_float
            else draw(st.integers(-32767, 32767)) * a.scale + a.offset
            for a in p.analogs
        )
        digitals = tuple(draw(u16) for _ in p.digitals)
        pmus.append(PmuData(draw(u16), tuple(phasors), freq, rocof, analogs, digitals))
    return DataFrame(
        draw(st.integers(1, 2)),
        cfg.idcode,
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        tuple(pmus),
    )


def close(a: float | complex, b: float | complex, tol: float) -> bool:
    if cmath.isnan(a) or cmath.isnan(b):
        return cmath.isnan(a) and cmath.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def assert_data_equal(got: DataFrame, want: DataFrame, cfg: ConfigFrame) -> None:
    assert (got.version, got.idcode, got.soc, got.fracsec) == (
        want.version,
        want.idcode,
        want.soc,
        want.fracsec,
    )
    for g, w, _p in zip(got.pmus, want.pmus, cfg.pmus, strict=True):
        assert (g.stat, g.digitals) == (w.stat, w.digitals)
        # float32 on the wire keeps ~7 digits; int16 is exact up to rounding of one count
        assert all(close(x, y, 1e-4) for x, y in zip(g.phasors, w.phasors, strict=True))
        assert close(g.freq_hz, w.freq_hz, 1e-6) and close(g.rocof, w.rocof, 1e-6)
        assert all(close(x, y, 1e-5) for x, y in zip(g.analogs, w.analogs, strict=True))


@FAST
@given(st.data())
def test_config_and_data_roundtrip(data: st.DataObject) -> None:
    cfg = data.draw(configs())
    assert decode_frame(encode(cfg), {}) == cfg
    frame = data.draw(data_for(cfg))
    raw = encode(frame, cfg)
    got = decode_frame(raw, {cfg.idcode: cfg})
    assert isinstance(got, DataFrame)
    assert_data_equal(got, frame, cfg)
    if not any(p.phasor_polar for p in cfg.pmus):
        # Polar values pass through cos/sin and back, which may move float32 by an ulp.
        assert encode(got, cfg) == raw  # re-encoding decoded values is byte-identical


@FAST
@given(cfg=configs((FrameType.CFG2,)), data=st.data())
def test_streamed_frames_roundtrip_in_every_chunking(
    cfg: ConfigFrame, data: st.DataObject, feed: Feed
) -> None:
    frames = [data.draw(data_for(cfg)) for _ in range(3)]
    header = HeaderFrame(2, cfg.idcode, 1, 2, data.draw(st.text(max_size=40)))
    command = CommandFrame(
        data.draw(st.integers(1, 2)),
        cfg.idcode,
        3,
        4,
        data.draw(u16),
        data.draw(st.binary(max_size=20)),
    )
    stream = (
        encode(header) + encode(command) + encode(cfg) + b"".join(encode(f, cfg) for f in frames)
    )
    events = feed(Decoder(), stream)
    assert events[:3] == [header, command, cfg]
    for got, want in zip(events[3:], frames, strict=True):
        assert isinstance(got, DataFrame)
        assert_data_equal(got, want, cfg)


@FAST
@given(cfg=configs((FrameType.CFG3,)), max_size=st.integers(40, 400))
def test_cfg3_fragments_reassemble(cfg: ConfigFrame, max_size: int, feed: Feed) -> None:
    parts = encode_cfg3_fragments(cfg, max_size)
    assert all(len(p) <= max_size for p in parts)
    events = feed(Decoder(), b"".join(parts))
    assert events == [cfg]


def test_cfg3_fragment_out_of_order_is_a_bad_frame(feed: Feed) -> None:
    pmu = PmuConfig(
        "S" * 200, 1, Format(0), tuple(PhasorChannel(f"P{i}", False, 1.0) for i in range(20))
    )
    cfg = ConfigFrame(FrameType.CFG3, 2, 1, 0, 0, 1_000_000, (pmu,), 30)
    parts = encode_cfg3_fragments(cfg, 100)
    assert len(parts) >= 4
    events = feed(Decoder(), b"".join([parts[0], parts[2], *parts]))
    assert isinstance(events[0], BadFrame) and "out of order" in events[0].reason
    assert events[1:] == [cfg]


def test_cfg3_with_a_corrupted_middle_fragment_is_not_assembled(feed: Feed) -> None:
    # The last fragment carries 0xFFFF, not its number: only the lost fragment's bad CHK
    # tells that fragments 1 and "last" do not belong together.
    pmu = PmuConfig(
        "S" * 200, 1, Format(0), tuple(PhasorChannel(f"P{i}", False, 1.0) for i in range(20))
    )
    cfg = ConfigFrame(FrameType.CFG3, 2, 1, 0, 0, 1_000_000, (pmu,), 30)
    parts = encode_cfg3_fragments(cfg, 100)
    damaged = bytearray(parts[-2])  # the one before the last: the last would seem to fit
    damaged[20] ^= 0xFF
    events = feed(Decoder(), b"".join([*parts[:-2], bytes(damaged), parts[-1], *parts]))
    bad = [e.reason for e in events if isinstance(e, BadFrame)]
    assert bad == ["bad CHK", "CFG-3 fragment 65535 out of order (expected 1)"]
    assert [e for e in events if isinstance(e, ConfigFrame)] == [cfg]  # the retransmission


def test_cfg3_fragments_that_do_not_assemble_say_so() -> None:
    pmu = PmuConfig(
        "S" * 200, 1, Format(0), tuple(PhasorChannel(f"P{i}", False, 1.0) for i in range(20))
    )
    cfg = ConfigFrame(FrameType.CFG3, 2, 1, 0, 0, 1_000_000, (pmu,), 30)
    parts = encode_cfg3_fragments(cfg, 100)
    events = drain_all(Decoder(), parts[0] + parts[-1])  # the middle never sent (a bug)
    assert len(events) == 1 and isinstance(events[0], BadFrame)
    assert "do not make a configuration (one lost?)" in events[0].reason


def drain_all(decoder: Decoder, data: bytes) -> list[Event]:
    decoder.receive_data(data)
    out: list[Event] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        out.append(event)
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_frame(raw, {})


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=2, max_size=200), st.integers(0, 2**16))
def test_random_frames_with_good_crc_raise_only_protocol_errors(body: bytes, tv: int) -> None:
    from binascii import crc_hqx

    head = struct.pack(">BBH", 0xAA, tv & 0x5F | 0x01, len(body) + 6)
    raw = head + body
    raw += struct.pack(">H", crc_hqx(raw, 0xFFFF))
    with contextlib.suppress(ProtocolError):
        decode_frame(raw, {})
    decoder = Decoder()
    decoder.receive_data(raw)
    while decoder.next_event() is not NEED_DATA:
        pass


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=400))
def test_decoder_never_raises_on_garbage(raw: bytes, feed: Feed) -> None:
    decoder = Decoder()
    feed(decoder, raw)
    assert decoder.stats.bytes_skipped <= len(raw)


@FAST
@given(cfg=configs((FrameType.CFG2,)), data=st.data())
def test_corrupted_frame_between_good_ones_is_one_bad_frame(
    cfg: ConfigFrame, data: st.DataObject, feed: Feed
) -> None:
    drawn = [data.draw(data_for(cfg)) for _ in range(5)]
    frames = [encode(f, cfg) for f in drawn]
    bad = bytearray(frames[2])
    pos = data.draw(st.integers(0, len(bad) - 1))
    bad[pos] ^= data.draw(st.integers(1, 255))
    stream = encode(cfg) + frames[0] + frames[1] + bytes(bad) + frames[3] + frames[4]
    events = feed(Decoder(), stream)
    assert len([e for e in events if isinstance(e, BadFrame)]) == 1
    good = [e for e in events if isinstance(e, DataFrame)]
    assert len(good) == 4
    for got, want in zip(good, [drawn[0], drawn[1], drawn[3], drawn[4]], strict=True):
        assert_data_equal(got, want, cfg)


@FAST
@given(cfg=configs((FrameType.CFG2, FrameType.CFG3)), data=st.data(), max_size=st.integers(60, 400))
def test_recording_decoder_keeps_the_exact_bytes_of_every_good_frame(
    cfg: ConfigFrame, data: st.DataObject, max_size: int, feed: Feed
) -> None:
    data_frames = [encode(data.draw(data_for(cfg)), cfg) for _ in range(3)]
    if cfg.frame_type == FrameType.CFG3:
        cfg_frames = encode_cfg3_fragments(cfg, max_size)  # every fragment is kept
    else:
        cfg_frames = [encode(cfg)]
    header = encode(HeaderFrame(2, cfg.idcode, 1, 2, data.draw(st.text(max_size=40))))
    # A data frame before its config (UnknownConfig), garbage, then the stream proper.
    good = [data_frames[0], header, *cfg_frames, *data_frames]
    stream = data_frames[0] + b"\x00\x01 junk " + b"".join(good[1:])
    recording = RecordingDecoder()
    events = feed(recording, stream)
    assert recording.frames == good
    assert isinstance(events[0], UnknownConfig) and isinstance(events[1], BadFrame)
    plain = feed(Decoder(), stream)  # and it decodes like the plain one (NaN != NaN: types)
    assert [type(e) for e in events] == [type(e) for e in plain]


def test_resynchronising_over_junk_headers_is_linear(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each 4-byte "AA 01 40 00" is a plausible header claiming 16 kB that never come.
    # Looking past each one for a later good frame used to rescan the whole buffer per
    # header: 16 kB of them cost 10 s of CPU, in the event loop of every source.
    from adapters.c37118 import _decoder

    looked = 0
    real = _decoder._head_problem

    def counting(*args: Any) -> Any:
        nonlocal looked
        looked += 1
        return real(*args)

    monkeypatch.setattr(_decoder, "_head_problem", counting)
    cfg = ConfigFrame(
        FrameType.CFG2, 2, 7, 0, 0, 1_000_000,
        (PmuConfig("A", 7, Format.FREQ_FLOAT, (PhasorChannel("V", False, 1.0),)),), 30,
    )  # fmt: skip
    good = DataFrame(2, 7, 1, 0, (PmuData(0, (complex(100, 0),), 60.0, 0.0),))
    junk = b"\xaa\x01\x40\x00" * 4096
    events = feed(Decoder(), encode(cfg) + junk + encode(good, cfg))
    assert [type(e) for e in events] == [ConfigFrame, BadFrame, DataFrame]
    assert looked < 40 * 4096, looked  # quadratic: about 4096**2 / 2


def test_integer_analog_with_anunit_factor_0_is_unscaled_both_ways() -> None:
    cfg = ConfigFrame(
        FrameType.CFG2, 2, 7, 0, 0, 1_000_000,
        (PmuConfig("A", 7, Format.PHASOR_FLOAT | Format.FREQ_FLOAT, (),
                   analogs=(AnalogChannel("MW", 1, 0.0),)),), 30,
    )  # fmt: skip
    got = decode_frame(encode(cfg), {})
    assert isinstance(got, ConfigFrame)
    (ch,) = got.pmus[0].analogs
    assert ch.anunit == 0x01000000 and ch.scale == 1.0  # the word as sent, counts as they are
    frame = DataFrame(2, 7, 1, 0, (PmuData(0, (), 60.0, 0.0, (7.0,)),))
    data = decode_frame(encode(frame, cfg), {7: got})
    assert isinstance(data, DataFrame) and data.pmus[0].analogs == (7.0,)


def test_consecutive_corrupted_data_frames_are_counted_one_by_one(feed: Feed) -> None:
    # A link that corrupts ten frames in a row lost ten frames: a count of one stretch
    # would hide nine of them from the bad-frame metric.
    cfg = ConfigFrame(
        FrameType.CFG2, 2, 7, 0, 0, 1_000_000,
        (PmuConfig("A", 7, Format.FREQ_FLOAT, (PhasorChannel("V", False, 1.0),)),), 30,
    )  # fmt: skip
    frames = [
        encode(DataFrame(2, 7, 1, k, (PmuData(0, (complex(100 + k, 0),), 60.0, 0.0),)), cfg)
        for k in range(14)
    ]
    damaged = []
    for k, f in enumerate(frames):
        b = bytearray(f)
        if 2 <= k < 12:
            b[-5] ^= 0xAA  # the body: the header (SYNC, size, IDCODE) is intact
        damaged.append(bytes(b))
    events = feed(Decoder(), encode(cfg) + b"".join(damaged))
    assert sum(isinstance(e, BadFrame) for e in events) == 10
    good = [e for e in events if isinstance(e, DataFrame)]
    assert [round(e.pmus[0].phasors[0].real) for e in good] == [100, 101, 112, 113]
