"""Inference latency of the committed PMU models: µs per window at batch 1 and 50.

Per batch size: ``model.run`` alone (onnxruntime, 1 intra-op thread); the service's
path, ``OnnxDetector.evaluate_batch`` (column pick, NaN screen, run, explanation, the
alert decision per row; a ``Score`` with its evidence is built later for the rows that
raise only); and ``evaluate``, which builds the ``Score`` and evidence of every row.
The budget is checked on the service's path. Windows are real simulator windows with
their pipeline features. Each figure is the lowest of ``--rounds`` medians, the three
paths taking turns (noise on a shared machine only adds time).

Usage: ``python tools/bench_inference.py [--reps 2000] [--rounds 5] [--model NAME ...]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from starter_data import random_scenario, scenario_windows  # noqa: E402

from edgepipe.inference import OnnxDetector, load_model  # noqa: E402
from edgepipe.pipeline.site import SiteFeatures  # noqa: E402

BUDGET_US = 50.0  # per window at batch 1 (inference task brief)


def median_us(fn: Callable[[], object], reps: int) -> float:
    for _ in range(min(100, reps)):
        fn()
    times = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        times[i] = time.perf_counter_ns() - t0
    return float(np.median(times)) / 1e3


def best_of_rounds(fns: list[Callable[[], object]], reps: int, rounds: int) -> list[float]:
    """Per function, the lowest of ``rounds`` medians, the functions taking turns.

    A shared VM's speed drifts by 2-3x over minutes; noise only ever adds time, so the
    best round is the closest estimate of the cost itself (the ``timeit`` advice), and
    taking turns keeps one function from getting all the slow rounds.
    """
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], median_us(fn, max(1, reps // rounds)))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--reps", type=int, default=2000, help="calls per figure, over all rounds")
    ap.add_argument("--rounds", type=int, default=5, help="figure = best round's median")
    ap.add_argument(
        "--model", nargs="+", default=["pmu_fault", "pmu_event", "pmu_event_site", "pmu_anomaly"]
    )
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.reps < args.rounds:
        ap.error(f"--rounds must be at least 1 and at most --reps ({args.rounds}, {args.reps})")

    windows = scenario_windows(random_scenario(0)).windows
    while len(windows) < 50:
        windows = windows + windows
    feats = SiteFeatures(keep_ns=0)(windows)  # the window's own features and site context
    worst = 0.0
    for name in args.model:
        model = load_model(args.models_dir, name)
        det = OnnxDetector(model)
        x = np.ascontiguousarray(feats[:, model.columns], dtype=np.float32)
        print(f"model {model.ref}, {len(model.spec.features)} features")
        for batch in (1, 50):
            w, f, xb = windows[:batch], feats[:batch], x[:batch]
            run, served, full = best_of_rounds(
                [
                    lambda xb=xb, m=model: m.run(xb),
                    lambda w=w, f=f, d=det: d.evaluate_batch(w, f),
                    lambda w=w, f=f, d=det: d.evaluate(w, f),
                ],
                args.reps,
                args.rounds,
            )
            print(
                f"  batch {batch:>2}: model.run {run / batch:7.2f} µs/window, "
                f"evaluate_batch {served / batch:7.2f}, evaluate {full / batch:7.2f} µs/window"
            )
            if batch == 1:
                worst = max(worst, served)
    ok = worst <= BUDGET_US
    print(
        f"budget at batch 1: {BUDGET_US:.0f} µs/window, worst {worst:.1f} -> "
        f"{'ok' if ok else 'OVER'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
