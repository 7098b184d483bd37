"""Cost of the pipeline stages per window: windows, features, rules, alerts.

Simulates ``--pmus`` PMUs at ``--rate`` frames/s with hop 1 (one window per frame per PMU,
i.e. 60 windows/s per PMU at 60 fps), feeding one row per PMU per tick as a live stream
does, and batching every tick's windows across PMUs through features, the default rules
and the alert engine. Prints microseconds per window and the share of one core needed
for the simulated load.

    .venv/bin/python tools/bench_pipeline_stages.py --pmus 50 --rate 60 --seconds 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgepipe.core import SampleBatch, Window
from edgepipe.pipeline import AlertEngine, WindowConfig, Windower, build_rules, pmu_features
from edgepipe.pipeline.testing import V_BASE, pmu_batch, pmu_info


def _streams(args: argparse.Namespace, n: int) -> tuple[list[Windower], list[SampleBatch]]:
    rng = np.random.default_rng(7)
    cfg = WindowConfig(length=args.length, hop=args.hop)
    windowers, batches = [], []
    for p in range(args.pmus):
        info = pmu_info(f"pmu{p}", f"bus{p}", rate_hz=args.rate, v_nominal=V_BASE)
        v = 1.0 + 0.002 * rng.standard_normal(n)
        v[n // 2 : n // 2 + int(args.rate // 4)] = 0.7  # one sag per PMU: alerts happen
        f = 60.0 + 0.005 * rng.standard_normal(n)
        batches.append(pmu_batch(info, n, v_pu=v, f_hz=f))
        windowers.append(Windower(info, cfg))
    return windowers, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pmus", type=int, default=50)
    ap.add_argument("--rate", type=float, default=60.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--hop", type=int, default=1)
    args = ap.parse_args()

    n = int(args.seconds * args.rate)
    windowers, batches = _streams(args, n)
    detectors = build_rules()
    engine = AlertEngine("bench")

    t_win = t_feat = t_rules = t_alerts = 0.0
    n_windows = n_alerts = 0
    cpu0 = time.process_time()
    for k in range(n):
        t0 = time.perf_counter()
        tick: list[Window] = []
        for w, b in zip(windowers, batches, strict=True):
            row = type(b)(
                b.stream, b.times_ns[k : k + 1], b.values[k : k + 1], b.quality[k : k + 1]
            )
            tick.extend(w.push(row))
        t1 = time.perf_counter()
        if not tick:
            t_win += t1 - t0
            continue
        feats = pmu_features(tick)
        t2 = time.perf_counter()
        scores = [s for d in detectors for s in d.evaluate(tick, feats)]
        t3 = time.perf_counter()
        n_alerts += len(engine.process(scores))
        t4 = time.perf_counter()
        t_win += t1 - t0
        t_feat += t2 - t1
        t_rules += t3 - t2
        t_alerts += t4 - t3
        n_windows += len(tick)
    cpu = time.process_time() - cpu0

    stages = (("windows", t_win), ("features", t_feat), ("rules", t_rules), ("alerts", t_alerts))
    per = {name: 1e6 * t / max(n_windows, 1) for name, t in stages}
    total = per["features"] + per["rules"] + per["alerts"]
    load = args.pmus * args.rate / args.hop
    print(f"pmus={args.pmus} rate={args.rate} length={args.length} hop={args.hop}")
    print(f"windows={n_windows} alerts={n_alerts} scores/window={len(detectors)}")
    for name, us in per.items():
        print(f"  {name:9s} {us:7.2f} us/window")
    share, win_share = total * load / 1e4, per["windows"] * load / 1e4
    print(f"  features+rules+alerts {total:.2f} us/window -> {share:.1f} % of one core")
    print(f"  at {load:.0f} windows/s (the windows stage adds {win_share:.1f} %)")
    print(f"  process CPU {cpu:.2f} s for {n / args.rate:.1f} s of stream")


if __name__ == "__main__":
    main()
