"""A shipped event model at another window hop or raise: its fault alert's scores.

The service cuts a window every ``[windows] hop`` frames (2 by default), so a fault is
first scored 0-1 frames after its first frame and, if that window does not raise, 2-3
frames after it. This cuts the evaluation sets of ``train_events.py`` (the held-out
buses' test runs and normal runs, and all of kundur) at ``--hop`` with the pipeline's
own windowing and features, scores them with ``models/<--model>.onnx`` (the site model
with the site context of every PMU of the run, as its card) and prints, per raise
threshold, the model card's fault alert lines: the window-level operating point,
detection delay, false alarms per PMU-day on normal runs, and runs of other kinds that
raised it. ``--hop 2`` (``EVAL_HOP``, the service's default) at the manifest's raise
reproduces the card; ``--cache`` (as given to ``train_events.py``) reuses its windows at
that hop.

Usage: ``python tools/event_hop.py --hop 1 [--model pmu_event_site] [--raise-at 0.5 0.6]
[--cache DIR] [--data data/scenarios]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from event_export import CLF, CLF_CLEAR, CLF_RAISE, SITE  # noqa: E402
from event_metrics import AlarmStats, alert_point  # noqa: E402
from scenarios.dataset import IGNORE, WindowSet  # noqa: E402
from scenarios.generate import HELDOUT_CASE  # noqa: E402
from scenarios.labels import apply_label_rules, collapsed_scenarios  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402
from train_events import (  # noqa: E402
    EVAL_HOP,
    MODEL_FEATURES,
    SITE_FEATURES,
    at_buses,
    grid_cache_name,
    heldout_bus_sets,
    heldout_rows,
    load,
    shard_paths,
    test_run_rows,
    with_context,
)

from edgepipe.pipeline.site import SITE_FEATURE_NAMES  # noqa: E402


def _report(name: str, ws: WindowSet, proba: np.ndarray, levels: list[float]) -> None:
    fault = KINDS.index("fault")
    score = proba[:, fault].astype(np.float64)
    normal = ws.kind == 0
    labelled = ws.y != IGNORE
    print(f"== {name}: {len(ws.y)} windows")
    for raise_at in levels:
        stats = AlarmStats()
        stats.add_normal(ws.take(normal), score[normal], raise_at, CLF_CLEAR)
        stats.add_events(ws.take(~normal), score[~normal], raise_at, CLF_CLEAR, {fault})
        p, r, f1 = alert_point(score[labelled] >= raise_at, ws.y[labelled] == fault)
        print(f"raise at {raise_at}:")
        print(f"- fault alert (windows): precision {p:.3f}, recall {r:.3f}, F1 {f1:.3f}")
        print(f"- detection delay: {stats.delay_text()}")
        print(
            f"- false alarms: {stats.raises} raises in {stats.hours:.1f} PMU-hours "
            f"= {stats.per_pmu_day:.2f} per PMU per day"
        )
        print(f"- raised on events of other kinds: {stats.other_text()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hop", type=int, default=EVAL_HOP)
    ap.add_argument("--model", choices=(CLF, SITE), default=CLF)
    ap.add_argument("--raise-at", type=float, nargs="+", default=[CLF_RAISE])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "scenarios")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, help="train_events.py's window caches (at hop 2)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    site = args.model == SITE
    train_paths, grid_paths = shard_paths(args.data)
    collapsed = collapsed_scenarios(train_paths + grid_paths)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(args.models_dir / f"{args.model}.onnx"), opts)
    cols = [SITE_FEATURE_NAMES.index(f) for f in (SITE_FEATURES if site else MODEL_FEATURES)]
    print(f"{args.model}, hop {args.hop}, clear at {CLF_CLEAR}", flush=True)

    def cache(name: str) -> Path | None:  # the caches hold windows cut at EVAL_HOP only
        return args.cache / f"{name}.npz" if args.cache and args.hop == EVAL_HOP else None

    def scored(ws: WindowSet) -> WindowSet:
        return with_context(ws) if site else ws

    held = heldout_bus_sets(train_paths)
    if site or cache("test_runs"):  # the site needs every PMU of the run
        runs = load(train_paths, cache("test_runs"), hop=args.hop, rows=test_run_rows(train_paths))
        runs = scored(apply_label_rules(runs, collapsed))
        runs = runs.take(at_buses(runs, held))
    else:
        runs = apply_label_rules(
            load(train_paths, None, hop=args.hop, rows=heldout_rows(train_paths)), collapsed
        )
    proba = session.run(["probabilities"], {"X": runs.x[:, cols]})[0]
    _report("held-out buses", runs, proba, args.raise_at)
    del runs, proba
    grid = load(grid_paths, cache(grid_cache_name(HELDOUT_CASE)), hop=args.hop)
    grid = scored(apply_label_rules(grid, collapsed))
    proba = session.run(["probabilities"], {"X": grid.x[:, cols]})[0]
    _report(f"held-out grid ({HELDOUT_CASE})", grid, proba, args.raise_at)
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
