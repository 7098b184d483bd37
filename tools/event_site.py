"""How many PMUs the site model needs: ``pmu_event_site`` scored with sites of k PMUs.

The model card scores ``pmu_event_site`` with every PMU of a simulated run as the site. A
box sees fewer: this cuts each run's PMUs into random sites of ``k`` (each PMU in one
site, the context of its windows computed over that site only, with the service's own
``site_context``) and scores the card's evaluation sets (``train_events.py``: the
held-out buses' test and normal runs, and all of kundur) at the service's hop, beside
``pmu_event`` for reference: the fault alert's window F1 and precision at the raise, the
argmax macro-F1, false alarms, the detection delay and the trip runs that raised it.

Usage: ``python tools/event_site.py [--sizes 1 2 4 8 0] [--cache DIR] [--data data/scenarios]
[--grid wscc9]`` (0 = every PMU of the run; ``--cache`` as for ``train_events.py``;
``--grid`` scores another grid no model was trained on in place of kundur).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from event_export import CLF, CLF_CLEAR, CLF_RAISE, SITE, _evaluate  # noqa: E402
from scenarios.generate import HELDOUT_CASE, TRAIN_CASES  # noqa: E402
from scenarios.labels import apply_label_rules, collapsed_scenarios  # noqa: E402
from train_events import (  # noqa: E402
    EVAL_HOP,
    MODEL_FEATURES,
    SITE_FEATURES,
    at_buses,
    case_paths,
    grid_cache_name,
    heldout_bus_sets,
    load,
    test_run_rows,
    with_context,
)

from edgepipe.pipeline.site import SITE_FEATURE_NAMES  # noqa: E402


def _line(name: str, res: dict[str, object]) -> str:
    stats = res["alarm"]
    return (
        f"  {name}: fault alert {res['operating_point']}; macro-F1 {res['macro_f1']:.3f}; "
        f"false alarms {stats.raises} in {stats.hours:.1f} PMU-h; delay {stats.delay_text()}; "  # type: ignore[attr-defined]
        f"other kinds raising: {stats.other_text()}"  # type: ignore[attr-defined]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "scenarios")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, help="directory of train_events.py's window caches")
    ap.add_argument("--grid", default=HELDOUT_CASE, help="the unseen grid to score")
    args = ap.parse_args(argv)
    if args.grid in TRAIN_CASES:
        ap.error(f"--grid {args.grid} is a training grid")
    t0 = time.monotonic()
    train_paths = case_paths(args.data, TRAIN_CASES)
    grid_paths = case_paths(args.data, (args.grid,))
    collapsed = collapsed_scenarios(train_paths + grid_paths)
    names = {"test_runs": "test_runs", "grid": grid_cache_name(args.grid)}
    cache = {k: args.cache / f"{n}.npz" if args.cache else None for k, n in names.items()}
    runs = load(train_paths, cache["test_runs"], hop=EVAL_HOP, rows=test_run_rows(train_paths))
    runs = apply_label_rules(runs, collapsed)
    held = at_buses(runs, heldout_bus_sets(train_paths))
    grid = apply_label_rules(load(grid_paths, cache["grid"], hop=EVAL_HOP), collapsed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = {
        n: ort.InferenceSession(str(args.models_dir / f"{n}.onnx"), opts) for n in (CLF, SITE)
    }
    cols = {n: [SITE_FEATURE_NAMES.index(f) for f in fs]
            for n, fs in ((CLF, MODEL_FEATURES), (SITE, SITE_FEATURES))}  # fmt: skip
    th = dict.fromkeys(sessions, (CLF_RAISE, CLF_CLEAR))
    print(f"windows cut at hop {EVAL_HOP} in {time.monotonic() - t0:.0f} s", flush=True)
    for size in args.sizes:
        label = "every PMU of the run" if size == 0 else f"sites of {size} PMUs"
        print(f"== {label}", flush=True)
        for title, ws, keep in (("held-out buses", runs, held), (args.grid, grid, None)):
            scored = with_context(ws, size)
            if keep is not None:
                scored = scored.take(keep)
            res = _evaluate(scored, cols, sessions if size == args.sizes[0] else
                            {SITE: sessions[SITE]}, th)  # fmt: skip
            print(f" {title}:")
            for name in res:
                print(_line(name, res[name]), flush=True)
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
