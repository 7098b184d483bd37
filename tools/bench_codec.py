"""Benchmark the C37.118 codec: streaming decode, block decode and encode, frames/s.

Usage: python tools/bench_codec.py [--frames N]
Cases: 1 PMU with 10 float32 phasors (synthetic), and the 4-PMU reference capture.
"""

from __future__ import annotations

import argparse
import cmath
import time
from pathlib import Path

from adapters.c37118.codec import NEED_DATA, Decoder, decode_data_block, encode
from adapters.c37118.constants import Format, FrameType
from adapters.c37118.frames import (
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
)
from adapters.capture.pcap import read_flows

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "c37118"


def ten_phasor_config() -> ConfigFrame:
    phasors = tuple(PhasorChannel(f"PH{i}", i >= 5, 1.0) for i in range(10))
    pmu = PmuConfig(
        "BENCH",
        1,
        Format.PHASOR_FLOAT | Format.FREQ_FLOAT | Format.ANALOG_FLOAT,
        phasors,
        (),
        (DigitalWord(tuple(f"D{i}" for i in range(16))),),
        60.0,
        1,
    )
    return ConfigFrame(FrameType.CFG2, 2, 1, 0, 0, 1_000_000, (pmu,), 50)


def ten_phasor_frames(config: ConfigFrame, n: int) -> list[DataFrame]:
    frames = []
    for k in range(n):
        ph = tuple(cmath.rect(230e3 / 3**0.5, 0.01 * k + i) for i in range(10))
        pmu = PmuData(0, ph, 60.0 + 0.001 * (k % 7), 0.01, (), (k & 0xFFFF,))
        frames.append(DataFrame(2, 1, 1_700_000_000 + k // 50, (k % 50) * 20_000, (pmu,)))
    return frames


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<44} {count / seconds:>12,.0f} frames/s  ({count} in {seconds:.3f} s)")


def stream_decode(stream: bytes, configs: list[ConfigFrame], repeat: int = 3) -> tuple[int, float]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        dec = Decoder()
        for c in configs:
            dec.set_config(c)
        t0 = time.perf_counter()
        dec.receive_data(stream)
        count = 0
        next_event = dec.next_event
        while next_event() is not NEED_DATA:
            count += 1
        best = min(best, time.perf_counter() - t0)
    return count, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    args = parser.parse_args()

    config = ten_phasor_config()
    frames = ten_phasor_frames(config, args.frames)
    t0 = time.perf_counter()
    raw = [encode(f, config) for f in frames]
    rate("encode, 1 PMU x 10 float phasors", len(raw), time.perf_counter() - t0)
    stream = b"".join(raw)
    n, dt = stream_decode(stream, [config])
    rate("stream decode, 1 PMU x 10 float phasors", n, dt)
    dec = Decoder()
    dec.set_config(config)
    dec.receive_data(stream)
    t0 = time.perf_counter()
    n = 0
    while (event := dec.next_event()) is not NEED_DATA:
        assert isinstance(event, DataFrame)
        n += len(event.pmus[0].phasors) > 0
    rate("stream decode + read phasors, 1 PMU x 10 float", n, time.perf_counter() - t0)
    t0 = time.perf_counter()
    block = decode_data_block(stream, config)
    rate("block decode, 1 PMU x 10 float phasors", len(block), time.perf_counter() - t0)

    flows = read_flows(DATA / "C37.118_4in1PMU_TCP.pcap")
    payload = max(flows, key=lambda f: len(f.payload())).payload()
    probe = Decoder()
    probe.receive_data(payload)
    while probe.next_event() is not NEED_DATA:
        pass
    cfg4 = next(iter(probe.configs.values()))
    reps = max(1, args.frames // probe.stats.frames[FrameType.DATA])
    n, dt = stream_decode(payload * reps, [cfg4])
    rate(f"stream decode, 4-PMU capture x{reps}", n, dt)


if __name__ == "__main__":
    main()
