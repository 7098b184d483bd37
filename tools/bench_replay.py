"""Replay and import benchmarks (issue 6).

1. Replay: a capture of N PMUs at R frames/s for S seconds, recorded the way `edgepipe
   run` records it (one batch per PMU per frame, as the live client hands them over),
   replayed with `--fast` through the Pipeline with the rules and the ONNX model on.
   Prints the speed as a multiple of real time (target >= 100x for 10 PMUs at 60/s).
2. Import: the reference pcaps in ../shared/data/c37118 -> a capture, in MB/s of pcap.

Usage: python tools/bench_replay.py [--pmus 10] [--rate 60] [--seconds 120] [--stages 5]
(``--stages N``: also the split of the replay time by pipeline stage, median of N runs)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adapters.c37118.scenario import fault_sag, frequency_excursion, synthesize
from adapters.capture.importers import import_pcap
from edgepipe.app.capture_commands import import_to_capture
from edgepipe.app.config import AppConfig
from edgepipe.app.pipeline import Pipeline, build_detectors
from edgepipe.app.replay import ReplayOptions, replay_capture, run_replay
from edgepipe.capture import CaptureConfig, CaptureWriter, read_capture
from edgepipe.core import ChannelInfo, ChannelKind, SampleBatch, StreamInfo, VirtualClock

NS = 1_000_000_000
T0 = 1_795_000_000 * NS
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "c37118"


def _infos(
    n: int, names: tuple[str, ...], currents: tuple[bool, ...], rate: int
) -> list[StreamInfo]:
    vnom = 230e3 / math.sqrt(3)
    out = []
    for p in range(n):
        chans: list[ChannelInfo] = []
        for name, cur in zip(names, currents, strict=True):
            phase = name[-1] if name[-1] in "ABC" else ""
            nominal = 0.0 if cur else vnom
            unit = "A" if cur else "V"
            chans.append(
                ChannelInfo(f"{name}.mag", ChannelKind.MAGNITUDE, unit, name, phase, nominal)
            )
            chans.append(ChannelInfo(f"{name}.ang", ChannelKind.ANGLE, "rad", name, phase))
        chans += [ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=60.0),
                  ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s")]  # fmt: skip
        out.append(
            StreamInfo(f"bench/{p + 1}", "bench", f"PMU{p + 1}", tuple(chans), rate, 60.0, p + 1)
        )
    return out


def record(directory: Path, pmus: int, rate: int, seconds: float) -> float:
    """Write the capture as the live recorder would; returns the seconds it took."""
    events = [fault_sag(seconds / 3, depth_pu=0.45, pmus=(0,)), frequency_excursion(seconds / 2)]
    sc = synthesize(pmus, rate, seconds, events, seed=5)
    infos = _infos(pmus, sc.phasor_names, sc.is_current, rate)
    n = sc.t_s.shape[0]
    times = T0 + (np.arange(n, dtype=np.int64) * NS) // rate
    k = len(sc.phasor_names)
    values = np.empty((pmus, n, 2 * k + 2))
    values[:, :, 0 : 2 * k : 2] = sc.mag.transpose(1, 0, 2)
    values[:, :, 1 : 2 * k : 2] = sc.ang_rad.transpose(1, 0, 2)
    values[:, :, 2 * k] = sc.freq_hz.T
    values[:, :, 2 * k + 1] = sc.rocof.T
    clock = VirtualClock(T0)
    w = CaptureWriter(CaptureConfig(dir=str(directory), segment_s=300.0), clock, "bench")
    w.open()
    for info in infos:
        w.on_stream(info)
    q = np.zeros(1, dtype=np.uint16)
    started = time.perf_counter()
    for i in range(n):
        for p, info in enumerate(infos):
            w.append(
                SampleBatch(info.stream, times[i : i + 1], values[p, i : i + 1], q), w.next_seq()
            )
        if i % rate == 0:
            clock.advance_to(int(times[i]))
            w.flush()
    w.close()
    return time.perf_counter() - started


def bench_replay(pmus: int, rate: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cap_dir = Path(tmp) / "cap"
        rec_s = record(cap_dir, pmus, rate, seconds)
        size = sum(p.stat().st_size for p in cap_dir.rglob("*.arrows"))
        t = time.perf_counter()
        capture = read_capture(cap_dir)
        read_s = time.perf_counter() - t
        config = AppConfig(site="bench", sources=())  # rules + the starter ONNX model
        t, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(run_replay(capture, config, ReplayOptions(), io.StringIO()))
        replay_s, cpu_s = time.perf_counter() - t, time.process_time() - cpu
    print(f"replay: {pmus} PMUs x {rate}/s x {seconds:g} s = {result.rows} rows, "
          f"{len(result.alerts)} alerts, models {config.models.enabled}")  # fmt: skip
    print(f"  capture {size / 1e6:.1f} MB written in {rec_s:.2f} s, read in {read_s:.2f} s")
    print(f"  replay {replay_s:.2f} s wall = {seconds / replay_s:.0f}x real time; "
          f"{cpu_s:.2f} s CPU = {seconds / cpu_s:.0f}x on one free core")  # fmt: skip


def stage_breakdown(pmus: int, rate: int, seconds: float, runs: int) -> None:
    """Where a replay's time goes, from the pipeline's own stage timings (no profiler):
    the median run of ``runs``. Windows and the replay loop are the time outside flushes."""
    with tempfile.TemporaryDirectory() as tmp:
        cap_dir = Path(tmp) / "cap"
        record(cap_dir, pmus, rate, seconds)
        capture = read_capture(cap_dir)
        config = AppConfig(site="bench", sources=())
        timed = []
        for _ in range(runs):
            pipeline = Pipeline(config, build_detectors(config)[0], lambda _a: None)
            t = time.perf_counter()
            asyncio.run(replay_capture(capture, pipeline, VirtualClock(), ReplayOptions()))
            timed.append((time.perf_counter() - t, dict(pipeline.router.timings.sums)))
    total, sums = sorted(timed, key=lambda r: r[0])[len(timed) // 2]
    detectors = {k: v for k, v in sums.items() if k.startswith("detector:")}
    onnx = sum(v for k, v in detectors.items() if k.startswith("detector:onnx"))
    stages = {
        "features": sums.get("features:pmu", 0.0),
        "rules": sum(detectors.values()) - onnx,
        "onnx models": onnx,
        "alerts (incl. the scores built)": sums.get("alerts", 0.0),
    }
    stages["flush, other"] = sums.get("flush", 0.0) - sum(stages.values())
    stages["windows + replay loop"] = total - sums.get("flush", 0.0)
    print(f"stages, median of {runs} runs ({seconds / total:.0f}x real time):")
    for name, s in stages.items():
        print(f"  {name:32s} {s * 1e3:7.1f} ms {100 * s / total:5.1f} %")


def bench_import() -> None:
    total_bytes, total_s = 0, 0.0
    for pcap in sorted(DATA.glob("*.pcap")):
        best = math.inf
        for i in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / f"c{i}"
                t = time.perf_counter()
                import_to_capture(out, {"name": "b"}, lambda s, f=pcap: import_pcap(f, "b", s))
                best = min(best, time.perf_counter() - t)
        size = pcap.stat().st_size
        total_bytes, total_s = total_bytes + size, total_s + best
        rate = size / 1e6 / best
        print(f"  {pcap.name:34s} {size / 1e6:6.3f} MB {best * 1e3:7.1f} ms {rate:6.1f} MB/s")
    print(
        f"import pcap -> capture: {total_bytes / 1e6 / total_s:.1f} MB/s over all reference pcaps"
    )


def main() -> None:
    import logging

    import structlog

    # Logs would cost time and bury the numbers: warnings only, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pmus", type=int, default=10)
    p.add_argument("--rate", type=int, default=60)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--stages", type=int, default=0, metavar="RUNS",
                   help="also print the per-stage split, median of RUNS replays")  # fmt: skip
    args = p.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    bench_replay(args.pmus, args.rate, args.seconds)
    if args.stages:
        stage_breakdown(args.pmus, args.rate, args.seconds, args.stages)
    bench_import()


if __name__ == "__main__":
    main()
