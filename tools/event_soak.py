"""False alarms of the shipped PMU models over long normal operation of one grid (a soak).

The model cards count false alarms over the normal runs of their evaluation sets (24.6
PMU-hours of kundur); no raise there bounds the rate at 2.9 per PMU-day (one-sided 95 %)
only. This simulates ``--runs`` more normal-operation runs of ``--case`` with ANDES (seeds
after the scenario plan's, so none of them is in ``data/scenarios``), measures each
``--reps`` times with independent PMU noise and frame drops (the noise, not the slow load
drift, is what false alarms come from), cuts every PMU's windows at the service's hop with
the pipeline's own windowing and features, and scores them as the service does: each
model's ``LoadedModel.run`` and manifest thresholds, the site model with every PMU of the
run as its site, the service's hysteresis. Prints, per model, the raises, the PMU-days,
the rate per PMU per day and its one-sided 95 % upper bound (Poisson).

Usage: ``python tools/event_soak.py [--case kundur] [--runs 40] [--reps 75] [--jobs 2]``
(40 x 75 kundur runs: 24.6 simulated hours, 246 PMU-hours; about 30 minutes on 2 cores
and 14 GB of memory). ``make models`` writes its report to ``models/cards/soak-kundur.txt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from event_export import ANOM, CLF, SITE  # noqa: E402
from event_metrics import AlarmStats  # noqa: E402
from scenarios.dataset import shard_windows  # noqa: E402
from scenarios.generate import MAX_REPS, PLAN, measurements  # noqa: E402
from scipy.stats import chi2  # noqa: E402
from train_events import EVAL_HOP, with_context  # noqa: E402

from edgepipe.inference import load_model  # noqa: E402

MODELS = (CLF, SITE, ANOM)


def soak_run(job: tuple[str, int, int, Path]) -> dict[str, tuple[int, float]]:
    """One normal run measured ``reps`` times: per model, (raises, PMU-hours)."""
    import polars as pl
    from scenarios.andes_sim import devices, simulate
    from scenarios.spec import draw

    case, seed, reps, models_dir = job
    spec = draw(case, "normal", seed, devices(case))
    frames = measurements(spec, simulate(spec), reps)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{spec.sid}.parquet"
        pl.concat(frames).write_parquet(path)
        ws = with_context(shard_windows(path, hop=EVAL_HOP))
    out: dict[str, tuple[int, float]] = {}
    for name in MODELS:
        model = load_model(models_dir, name)
        x = ws.x[:, model.columns].astype(np.float32)
        ok = np.isfinite(x).all(axis=1)  # the service does not score such windows
        score = np.zeros(len(x))
        score[ok] = model.scores(model.run(x[ok]))
        stats = AlarmStats()
        stats.add_normal(ws.take(ok), score[ok], model.spec.raise_at, model.spec.clear_at)
        out[name] = (stats.raises, stats.hours)
    return out


def upper_95(raises: int, days: float) -> float:
    """One-sided 95 % upper bound on a rate per day after ``raises`` in ``days`` (the exact
    Poisson limit, chi-square with 2 raises + 2 degrees of freedom, halved)."""
    return float(chi2.ppf(0.95, 2 * raises + 2)) / 2 / days


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="kundur", choices=list(PLAN))
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--reps", type=int, default=75)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = ap.parse_args(argv)
    if args.runs < 1 or not 1 <= args.reps <= MAX_REPS or args.jobs < 1:
        ap.error(f"--runs and --jobs must be at least 1, --reps 1..{MAX_REPS}")
    t0 = time.monotonic()
    first = PLAN[args.case][1]  # the plan's normal runs are seeds 0 .. first - 1
    jobs = [(args.case, first + i, args.reps, args.models_dir) for i in range(args.runs)]
    total = {name: [0, 0.0] for name in MODELS}
    done = 0
    with ProcessPoolExecutor(args.jobs) as pool:
        for res in pool.map(soak_run, jobs):
            done += 1
            for name, (raises, hours) in res.items():
                total[name][0] += raises
                total[name][1] += hours
            print(f"{done}/{args.runs} runs, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    hours = total[CLF][1]
    print(f"{args.case}: {args.runs} normal runs x {args.reps} noise realisations, hop "
          f"{EVAL_HOP}: {hours:.1f} PMU-hours")  # fmt: skip
    for name, (raises, pmu_hours) in total.items():
        days = pmu_hours / 24
        print(
            f"{name}: {raises} raises in {days:.2f} PMU-days = {raises / days:.2f} per PMU per "
            f"day (95 % upper bound {upper_95(int(raises), days):.2f})"
        )
    print(f"done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
