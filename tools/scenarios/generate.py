"""Generate the labelled scenario set with ANDES and write it as Parquet shards.

Usage: ``python tools/scenarios/generate.py --out data/scenarios [--jobs 2] [--scale 1.0]
[--cases ...]`` (default: the training grids and the two grids no model is trained on).

One shard per scenario run (``<case>/<scenario>.parquet``), written atomically, and
skipped when it already exists, so an interrupted run resumes. Normal-operation runs are
measured several times with independent PMU noise and frame drops (``-r<k>`` suffix):
the false-alarm evaluation needs many PMU-hours of normal data, and the noise, not the
slow load drift, is what a detector's false alarms come from.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios.spec import KINDS, ScenarioSpec, draw

if TYPE_CHECKING:
    import polars as pl

    from scenarios.andes_sim import Trajectory

TRAIN_CASES = ("ieee14", "ieee39", "npcc", "wecc")
HELDOUT_CASE = "kundur"  # the held-out grid the targets are judged on
# Grids no model is trained on, each scored in the model cards: kundur, and the small wscc9
# (probed as a fifth training grid and not adopted: docs/scenarios.md, "A fifth, small
# training grid"), a second check that what was chosen carries over.
UNSEEN_CASES = (HELDOUT_CASE, "wscc9")
# (event scenarios per kind, normal runs, noise realizations per normal run) per case.
# Normal runs at the training grids' held-out buses give the false-alarm figure of the
# "held-out buses" split its 24+ PMU-hours (npcc's 35 held-out buses carry most of it).
PLAN = {
    "ieee14": (30, 6, 14),
    "ieee39": (24, 4, 14),
    "npcc": (12, 4, 16),
    "wecc": (12, 2, 4),
    "kundur": (30, 20, 15),
    "wscc9": (30, 6, 14),
}
# About half of the ieee14 faults stop ANDES (singular Jacobian while the fault is on,
# with the ESST3A exciters): draw more so the class keeps its size.
EXTRA = {("ieee14", "fault"): 2.0}


def specs(scale: float, cases: tuple[str, ...]) -> list[tuple[ScenarioSpec, int]]:
    from scenarios.andes_sim import devices

    out: list[tuple[ScenarioSpec, int]] = []
    for case in cases:
        n_event, n_normal, reps = PLAN[case]
        dev = devices(case)
        for kind in KINDS:
            n = n_normal if kind == "normal" else n_event * EXTRA.get((case, kind), 1.0)
            for seed in range(max(1, round(n * scale))):
                out.append((draw(case, kind, seed, dev), reps if kind == "normal" else 1))
    return out


MAX_REPS = 100  # a run's measurements are seeded spec.seed * 100 + r: no two runs share one


def measurements(spec: ScenarioSpec, traj: Trajectory, reps: int) -> list[pl.DataFrame]:
    """``reps`` PMU measurements of one simulated run, each with its own noise and frame
    drops (``-r<k>`` scenario ids when more than one)."""
    from scenarios.pmu import measure

    if not 1 <= reps <= MAX_REPS:
        raise ValueError(f"reps must be 1..{MAX_REPS}, got {reps}")
    out = []
    for r in range(reps):
        s = spec if reps == 1 else replace(spec, sid=f"{spec.sid}-r{r}", seed=spec.seed * 100 + r)
        out.append(
            measure(
                s, t=traj.t_s, v=traj.v_pu, ang=traj.ang_rad, buses=traj.buses, vn_kv=traj.vn_kv
            )
        )
    return out


def run_one(job: tuple[ScenarioSpec, int, Path]) -> str:
    from scenarios.andes_sim import SimulationFailedError, simulate

    spec, reps, out = job
    target = out / spec.case / f"{spec.sid}.parquet"
    if target.exists():
        return f"have {spec.sid}"
    t0 = time.monotonic()
    try:
        traj = simulate(spec)
    except SimulationFailedError as exc:
        return f"skip {exc}"
    except Exception as exc:  # ANDES raises plain errors on singular systems
        return f"skip {spec.sid}: {type(exc).__name__}: {exc}"
    import polars as pl

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    pl.concat(measurements(spec, traj, reps)).write_parquet(tmp, compression="zstd")
    tmp.replace(target)
    return f"done {spec.sid} in {time.monotonic() - t0:.1f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/scenarios"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full plan")
    ap.add_argument("--cases", nargs="+", choices=list(PLAN), default=[*TRAIN_CASES, *UNSEEN_CASES])
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    jobs = [(s, reps, args.out) for s, reps in specs(args.scale, tuple(args.cases))]
    # Interleave cases so progress is spread over all of them if the run is cut short.
    jobs.sort(key=lambda j: (j[0].seed, j[0].kind, j[0].case))
    skipped = 0
    with ProcessPoolExecutor(args.jobs) as pool:
        for msg in pool.map(run_one, jobs, chunksize=1):
            skipped += msg.startswith("skip")
            print(msg, flush=True)
    print(f"{len(jobs)} scenarios ({skipped} skipped) in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
