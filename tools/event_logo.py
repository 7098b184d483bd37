"""Leave-one-grid-out validation of event-classifier candidates (model selection).

Trains each candidate on all training grids but one and scores the one left out, for
each training grid in turn; kundur, the held-out grid, is never read. Prints per-class
F1, macro-F1 and the fault alert's F1 at its raise threshold, per fold and on average.
This is how the learner and feature set of ``train_events.py`` were chosen.

Usage: ``python tools/event_logo.py --cache DIR [--candidates et-all rf-all ...]``
(``--cache`` as given to ``train_events.py``, which writes ``train.npz`` there).
``--cases ieee14 ieee39 npcc wecc wscc9`` adds the probe grid (``generate.py --cases wscc9``)
as a fifth training grid and fold; its windows are cached in ``train-<cases>.npz``.

``--thresholds 0.4 0.5 0.6`` instead scores the chosen model (``train_events.
fit_classifier``) at each raise threshold on every fold: the fault alert's F1, the
detection delay and the false alarms on the fold's normal runs, with the service's
hysteresis. This is how ``event_export.CLF_RAISE`` was chosen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from event_export import CLF_CLEAR, CLF_RAISE  # noqa: E402
from event_gate import GATED_FEATURES, AmbientGated  # noqa: E402
from event_metrics import AlarmStats, alert_point  # noqa: E402
from scenarios.dataset import IGNORE, WindowSet  # noqa: E402
from scenarios.generate import TRAIN_CASES  # noqa: E402
from scenarios.labels import apply_label_rules, collapsed_scenarios  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402
from site_context import CONTEXT_NAMES, site_context  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.metrics import f1_score  # noqa: E402
from train_events import (  # noqa: E402
    ALL_FEATURES,
    ANOMALY_FEATURES,
    MODEL_FEATURES,
    fit_classifier,
    grid_weights,
    load,
)
from weak_grid import weaken  # noqa: E402

from edgepipe.pipeline.event_shape import SHAPE_NAMES  # noqa: E402
from edgepipe.pipeline.features import FEATURE_INDEX  # noqa: E402

MAX_NORMAL = 100_000


def _et(**kw: Any) -> Callable[[], Any]:
    return lambda: ExtraTreesClassifier(
        n_estimators=60, max_depth=14, min_samples_leaf=3, n_jobs=2, random_state=0, **kw
    )


def _rf(leaf: int = 3, **kw: Any) -> Callable[[], Any]:
    return lambda: RandomForestClassifier(
        n_estimators=40, max_depth=12, min_samples_leaf=leaf, n_jobs=2, random_state=0, **kw
    )


SHAPE_ONLY = ("v_rel_min", "v_rel_max", "v_rel_last", "angle_jump_deg", *SHAPE_NAMES)
CANDIDATES: dict[str, tuple[tuple[str, ...], Callable[[], Any]]] = {
    "rf-relative": (ANOMALY_FEATURES, _rf(class_weight="balanced")),
    "rf-all": (ALL_FEATURES, _rf(class_weight="balanced")),
    "et-all": (ALL_FEATURES, _et(class_weight="balanced")),
    "et-shape": (SHAPE_ONLY, _et(class_weight="balanced")),
    "rf-all-leaf20": (ALL_FEATURES, _rf(leaf=20, class_weight="balanced")),
    "rf-all-gridbal": (ALL_FEATURES, _rf(class_weight="balanced")),  # + grid_weights
    # the chosen 12 (train_events.MODEL_FEATURES), grid-weighted
    "rf-12-gridbal": (MODEL_FEATURES, _rf(class_weight="balanced")),
    "rf-12-gridbal-weak1.5": (MODEL_FEATURES, _rf(class_weight="balanced")),
    "rf-12-gridbal-weak2": (MODEL_FEATURES, _rf(class_weight="balanced")),
    "rf-12-gridbal-weak3": (MODEL_FEATURES, _rf(class_weight="balanced")),
    "rf-12-gridbal-weak2+3": (MODEL_FEATURES, _rf(class_weight="balanced")),
    # the 12 and the site context of the run's PMUs (tools/site_context.py): all of them,
    # or 3 drawn at random per run
    "rf-12-gridbal-ctx": (MODEL_FEATURES + CONTEXT_NAMES, _rf(class_weight="balanced")),
    # the six context columns before the site's largest rebound and rising step
    "rf-12-gridbal-ctx6": (MODEL_FEATURES + CONTEXT_NAMES[:6], _rf(class_weight="balanced")),
    "rf-12-gridbal-ctx3": (MODEL_FEATURES + CONTEXT_NAMES, _rf(class_weight="balanced")),
    # other learners and leaf sizes on the site model's 20 inputs
    "rf-12-gridbal-ctx-leaf20": (
        MODEL_FEATURES + CONTEXT_NAMES,
        _rf(leaf=20, class_weight="balanced"),
    ),
    "et-12-gridbal-ctx": (MODEL_FEATURES + CONTEXT_NAMES, _et(class_weight="balanced")),
    "hgb-12-gridbal-ctx": (
        MODEL_FEATURES + CONTEXT_NAMES,
        lambda: HistGradientBoostingClassifier(
            max_iter=150,
            max_leaf_nodes=31,
            l2_regularization=1.0,
            class_weight="balanced",
            early_stopping=False,
            random_state=0,
        ),
    ),
    "rf-all-unweighted": (ALL_FEATURES, _rf()),
    "et-all-unweighted": (ALL_FEATURES, _et()),
}
# Weak-grid copies of the event windows (tools/weak_grid.py): the factors per candidate.
WEAKEN: dict[str, tuple[float, ...]] = {
    "rf-12-gridbal-weak1.5": (1.5,),
    "rf-12-gridbal-weak2": (2.0,),
    "rf-12-gridbal-weak3": (3.0,),
    "rf-12-gridbal-weak2+3": (2.0, 3.0),
}

# The site's PMUs per candidate with site context: None = all PMUs of the run.
SITE: dict[str, int | None] = {
    "rf-12-gridbal-ctx": None,
    "rf-12-gridbal-ctx6": None,
    "rf-12-gridbal-ctx3": 3,
    "et-12-gridbal-ctx": None,
    "rf-12-gridbal-ctx-leaf20": None,
    "hgb-12-gridbal-ctx": None,
}


def _with_site(
    ws: WindowSet, name: str, cache: dict[int | None, np.ndarray]
) -> tuple[np.ndarray, dict[str, int]]:
    """The feature rows of candidate ``name``, with the site context appended if it has
    one, and the column of each feature name."""
    if name not in SITE:
        return ws.x, FEATURE_INDEX
    pmus = SITE[name]
    if pmus not in cache:
        ctx = site_context(ws.x, ws.scenario, ws.pmu_key, ws.end_frame, pmus=pmus)
        cache[pmus] = np.column_stack([ws.x, ctx])
    index = FEATURE_INDEX | {n: len(FEATURE_INDEX) + i for i, n in enumerate(CONTEXT_NAMES)}
    return cache[pmus], index


def _fit_rows(ws: WindowSet, held: str, rng: np.random.Generator) -> np.ndarray:
    """A fold's training rows: every labelled event window of the other grids and
    ``MAX_NORMAL`` of their normal windows, as ``train_events`` fits the final model."""
    fit = np.flatnonzero((ws.case != held) & (ws.y != IGNORE))
    normal = fit[ws.y[fit] == 0]
    return np.concatenate([fit[ws.y[fit] != 0], rng.permutation(normal)[:MAX_NORMAL]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "scenarios")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--thresholds", nargs="+", type=float, help="score raise thresholds")
    ap.add_argument("--cases", nargs="+", default=list(TRAIN_CASES), help="the folds")
    args = ap.parse_args(argv)
    cases = tuple(args.cases)
    paths = sorted(p for c in cases for p in (args.data / c).glob("*.parquet"))
    name = "train.npz" if cases == TRAIN_CASES else f"train-{'-'.join(cases)}.npz"
    ws = apply_label_rules(load(paths, args.cache / name), collapsed_scenarios(paths))
    if args.thresholds:
        return thresholds(ws, args.thresholds, cases)
    rng = np.random.default_rng(0)
    scores: dict[str, list[tuple[float, float]]] = {c: [] for c in args.candidates}
    matrices: dict[int | None, np.ndarray] = {}
    for held in cases:
        fit = _fit_rows(ws, held, rng)
        val = np.flatnonzero((ws.case == held) & (ws.y != IGNORE))
        vnormal = val[ws.y[val] == 0]
        val = np.concatenate([val[ws.y[val] != 0], rng.permutation(vnormal)[: 3 * MAX_NORMAL]])
        for name in args.candidates:
            feats, make = CANDIDATES[name]
            x_all, index = _with_site(ws, name, matrices)
            cols = [index[f] for f in feats]
            x, y, case = x_all[fit], ws.y[fit], ws.case[fit]
            x, y, case = weaken(x, y, case, WEAKEN.get(name, ()))
            weights = grid_weights(case, y) if "gridbal" in name else None
            model = make().fit(x[:, cols], y, sample_weight=weights)
            if set(GATED_FEATURES) <= set(feats):  # as exported (tools/event_gate.py)
                model = AmbientGated(model, feats)
            proba = model.predict_proba(x_all[val][:, cols])
            y, classes = ws.y[val], list(model.classes_)  # a fold may lack a class
            pred = model.classes_[proba.argmax(axis=1)]
            f1 = f1_score(y, pred, average=None, labels=range(len(KINDS)), zero_division=0)
            fault = KINDS.index("fault")
            _, _, alert_f1 = alert_point(proba[:, classes.index(fault)] >= CLF_RAISE, y == fault)
            scores[name].append((float(f1.mean()), alert_f1))
            print(
                f"{held:7s} {name:12s} F1 {np.round(f1, 3)} macro {f1.mean():.3f} "
                f"fault alert F1 {alert_f1:.3f}",
                flush=True,
            )
    for name, s in scores.items():
        macro, alert = np.mean(s, axis=0)
        print(f"mean over folds  {name:12s} macro-F1 {macro:.3f}  fault alert F1 {alert:.3f}")
    return 0


def thresholds(ws: WindowSet, levels: list[float], cases: tuple[str, ...]) -> int:
    """The chosen model at each raise threshold, fold by fold (see the module text)."""
    rng = np.random.default_rng(0)
    cols = [FEATURE_INDEX[f] for f in MODEL_FEATURES]
    fault = KINDS.index("fault")
    f1s: dict[float, list[float]] = {t: [] for t in levels}
    for held in cases:
        fit = _fit_rows(ws, held, rng)
        forest = fit_classifier(ws.x[fit][:, cols], ws.y[fit], ws.case[fit])
        model = AmbientGated(forest, MODEL_FEATURES)
        val = ws.take(ws.case == held)
        x = val.x[:, cols]
        ok = ~np.isnan(x).any(axis=1)  # the service does not score such windows
        score = np.zeros(len(x))
        score[ok] = model.predict_proba(x[ok])[:, list(model.classes_).index(fault)]
        labelled = val.y != IGNORE
        for t in levels:
            stats = AlarmStats()
            stats.add_normal(val.take(val.kind == 0), score[val.kind == 0], t, CLF_CLEAR)
            stats.add_events(val.take(val.kind != 0), score[val.kind != 0], t, CLF_CLEAR,
                             {fault})  # fmt: skip
            _, _, f1 = alert_point(score[labelled] >= t, val.y[labelled] == fault)
            f1s[t].append(f1)
            print(f"{held:7s} raise {t:.2f}: fault alert F1 {f1:.3f}, delay "
                  f"{stats.delay_text()}, {stats.raises} false alarms in "
                  f"{stats.hours:.1f} PMU-hours", flush=True)  # fmt: skip
    for t, f in f1s.items():
        print(f"mean over folds, raise {t:.2f}: fault alert F1 {np.mean(f):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
