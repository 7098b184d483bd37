"""The shipped fault alert at another window hop: detection delay, false alarms, misfires.

The service cuts a window every ``[windows] hop`` frames (2 by default), so a fault is
first scored 0-1 frames after its first frame and, if that window does not raise, 2-3
frames after it. This cuts the evaluation sets of ``train_events.py`` (the held-out
buses' test runs and normal runs, and all of kundur) at ``--hop`` with the pipeline's
own windowing and features, scores them with ``models/pmu_event.onnx`` and prints the
numbers of the model card's alarm lines: detection delay, false alarms per PMU-day on
normal runs, and runs of other kinds that raised it. ``--hop 2`` (``EVAL_HOP``, the
service's default) reproduces the card.

Usage: ``python tools/event_hop.py --hop 1 [--raise-at 0.5 0.6] [--data data/scenarios]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from event_export import CLF_CLEAR, CLF_RAISE  # noqa: E402
from event_metrics import AlarmStats  # noqa: E402
from scenarios.dataset import WindowSet, shard_windows  # noqa: E402
from scenarios.generate import HELDOUT_CASE  # noqa: E402
from scenarios.labels import apply_label_rules, collapsed_scenarios  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402
from train_events import COLS, EVAL_HOP, heldout_rows, shard_paths  # noqa: E402


def _windows(rows: Mapping[Path, pl.Expr | None], hop: int, collapsed: set[str]) -> WindowSet:
    ws = WindowSet.concat([shard_windows(p, hop=hop, rows=r) for p, r in rows.items()])
    ws = ws.take(np.isfinite(ws.x[:, COLS]).all(axis=1))  # NaN windows are never scored
    return apply_label_rules(ws, collapsed)


def _report(name: str, ws: WindowSet, session: ort.InferenceSession, levels: list[float]) -> None:
    proba = session.run(["probabilities"], {"X": ws.x[:, COLS]})[0]
    score = proba[:, KINDS.index("fault")].astype(np.float64)
    normal = ws.kind == 0
    print(f"== {name}: {len(ws.y)} windows")
    for raise_at in levels:
        stats = AlarmStats()
        stats.add_normal(ws.take(normal), score[normal], raise_at, CLF_CLEAR)
        stats.add_events(
            ws.take(~normal), score[~normal], raise_at, CLF_CLEAR, {KINDS.index("fault")}
        )
        print(f"raise at {raise_at}:")
        print(f"- detection delay: {stats.delay_text()}")
        print(
            f"- false alarms: {stats.raises} raises in {stats.hours:.1f} PMU-hours "
            f"= {stats.per_pmu_day:.2f} per PMU per day"
        )
        print(f"- raised on events of other kinds: {stats.other_text()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hop", type=int, default=EVAL_HOP)
    ap.add_argument("--raise-at", type=float, nargs="+", default=[CLF_RAISE])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "scenarios")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    train_paths, grid_paths = shard_paths(args.data)
    collapsed = collapsed_scenarios(train_paths + grid_paths)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(args.models_dir / "pmu_event.onnx"), opts)
    print(f"hop {args.hop}, clear at {CLF_CLEAR}", flush=True)
    held = heldout_rows(train_paths)
    _report("held-out buses", _windows(held, args.hop, collapsed), session, args.raise_at)
    grid: dict[Path, pl.Expr | None] = dict.fromkeys(grid_paths)
    _report(f"held-out grid ({HELDOUT_CASE})", _windows(grid, args.hop, collapsed), session,
            args.raise_at)  # fmt: skip
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
