"""Export, check, evaluate and publish the event models (called by ``train_events.py``)."""

from __future__ import annotations

import hashlib
import platform
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from event_cards import write_card
from event_clearing import ClearingGated, clearing_graph, has_clearing_inputs
from event_gate import AmbientGated, gate_graph
from event_metrics import AlarmStats, alert_point, class_report
from iforest_onnx import convert
from scenarios.dataset import IGNORE, WindowSet
from scenarios.spec import KINDS
from skl2onnx import to_onnx
from train_starter import export as export_classifier
from train_starter import session

from edgepipe.core import Severity
from edgepipe.inference.loader import load_model
from edgepipe.inference.manifest import (
    Explain,
    ModelKind,
    ModelSpec,
    SelfCheck,
    merge_manifest,
)
from edgepipe.pipeline.site import SITE_FEATURE_NAMES

CLF, SITE, ANOM = "pmu_event", "pmu_event_site", "pmu_anomaly"
VERSION = "1.0.0"
# Raise threshold of both event models: the level with the best mean fault alert F1 over
# the leave-one-grid-out folds (tools/event_logo.py --thresholds [--site]), the higher of
# equals. On the regenerated shards of 2026-11-27: pmu_event 0.952 / 0.953 / 0.953 /
# 0.951 / 0.948 at 0.4 / 0.45 / 0.5 / 0.55 / 0.6; pmu_event_site 0.988 / 0.990 / 0.982 /
# 0.972 at 0.4 / 0.5 / 0.6 / 0.7; no false alarm at any in 112.7 PMU-h. The lower raise
# also shortens the delay tails (pmu_event's held-out-bus p95 5 frames at 0.6, 3 at
# 0.5). It was 0.6 before, kept by a judgement that looked at kundur; a site that would
# rather page less on trips sets its own ([models.thresholds.<name>], docs/operations.md).
CLF_RAISE, CLF_CLEAR = 0.5, 0.3
ANOM_MARGIN, ANOM_HYST = 0.02, 0.06  # raise above the worst training-normal score


def latency_us(sess: ort.InferenceSession, out: str, x: np.ndarray, reps: int = 2000) -> float:
    """Median µs of one ``run`` at batch 1."""
    row = np.ascontiguousarray(x[:1])
    name = sess.get_inputs()[0].name
    for _ in range(100):
        sess.run([out], {name: row})
    t = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter_ns()
        sess.run([out], {name: row})
        t[i] = time.perf_counter_ns() - t0
    return float(np.median(t)) / 1e3


def clf_parity(clf: Any, sess: ort.InferenceSession, x: np.ndarray) -> float:
    label, proba = sess.run(["label", "probabilities"], {"X": x})
    if not np.array_equal(label, clf.predict(x)):
        raise SystemExit("parity: onnxruntime labels differ from sklearn")
    gap = float(np.max(np.abs(proba - clf.predict_proba(x))))
    if gap > 1e-5:
        raise SystemExit(f"parity: probabilities differ by {gap:.3g} > 1e-5")
    return gap


def anom_parity(iforest: Any, sess: ort.InferenceSession, x: np.ndarray) -> float:
    gap = float(np.max(np.abs(sess.run(["score"], {"X": x})[0][:, 0] + iforest.score_samples(x))))
    if gap > 1e-5:
        raise SystemExit(f"parity: anomaly scores differ by {gap:.3g} > 1e-5")
    return gap


def _hash(ws: WindowSet, features: tuple[str, ...]) -> str:
    h = hashlib.sha256(repr(features).encode())
    h.update(np.ascontiguousarray(ws.x).tobytes())
    h.update(ws.y.tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _explain(x: np.ndarray, y: np.ndarray) -> Explain:
    normal = x[y == 0]
    mean, scale = normal.mean(axis=0), np.maximum(normal.std(axis=0), 1e-6)
    # How far event windows sit from normal ones, per feature: a cheap global importance.
    sep = np.abs((x[y != 0].mean(axis=0) - mean) / scale) if (y != 0).any() else np.ones_like(mean)
    imp = sep / sep.sum()
    return Explain(*(tuple(float(v) for v in a) for a in (imp, mean, scale)))


def _spec(
    name: str, data: bytes, kind: ModelKind, features: tuple[str, ...], **kw: Any
) -> ModelSpec:
    return ModelSpec(
        name=name,
        version=VERSION,
        file=f"{name}.onnx",
        sha256=hashlib.sha256(data).hexdigest(),
        kind=kind,
        features=features,
        input_name="X",
        input_shape=(None, len(features)),
        created_with=_versions(),
        **kw,
    )


def _evaluate(
    ws: WindowSet,
    cols: dict[str, list[int]],
    sessions: dict[str, Any],
    th: dict[str, tuple[float, float]],
) -> dict[str, dict[str, Any]]:
    """Per model: its alarm statistics (``alarm``) and, for a classifier, the per-class
    table (argmax) and the fault alert's window-level operating point."""
    out: dict[str, dict[str, Any]] = {}
    normal = ws.kind == 0
    labelled = ws.y != IGNORE
    for name, sess in sessions.items():
        x = ws.x[:, cols[name]]
        res: dict[str, Any] = {}
        if name == ANOM:
            score = sess.run(["score"], {"X": x})[0][:, 0]
            kinds = set(range(1, len(KINDS)))
        else:
            proba = sess.run(["probabilities"], {"X": x})[0]
            score = proba[:, KINDS.index("fault")]
            kinds = {KINDS.index("fault")}
            table, summary = class_report(ws.y, proba.argmax(axis=1))
            res = {"table": table, **summary}
            hit = score[labelled] >= th[name][0]
            truth = ws.y[labelled] == KINDS.index("fault")
            precision, recall, f1 = alert_point(hit, truth)
            res["operating_point"] = f"precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f}"
        stats = AlarmStats()
        stats.add_normal(ws.take(normal), score[normal], *th[name])
        stats.add_events(ws.take(~normal), score[~normal], *th[name], kinds)
        res["alarm"] = stats
        out[name] = res
    return out


def _classifier_spec(
    name: str, data: bytes, features: tuple[str, ...], sess: Any, check_x: np.ndarray, **kw: Any
) -> ModelSpec:
    fault = sess.run(["probabilities"], {"X": check_x})[0][:, KINDS.index("fault")]
    return _spec(
        name,
        data,
        ModelKind.CLASSIFIER,
        features,
        outputs=("label", "probabilities"),
        score_output="probabilities",
        classes=KINDS,
        positive_class="fault",
        raise_at=CLF_RAISE,
        clear_at=CLF_CLEAR,
        alert_kind="pmu_fault",
        severity=Severity.CRITICAL,
        self_check=SelfCheck(
            tuple(tuple(float(v) for v in r) for r in check_x), tuple(float(v) for v in fault)
        ),
        **kw,
    )


def export_models(
    classifiers: dict[str, tuple[Any, tuple[str, ...]]],
    iforest: Any,
    *,
    train: WindowSet,
    test_bus: WindowSet,
    grids: dict[str, WindowSet],
    args: Namespace,
    anomaly_features: tuple[str, ...],
) -> dict[str, list[str]]:
    """Export, check and publish the classifiers (name -> fitted forest and its features)
    and the anomaly detector; the WindowSets' ``x`` has the ``SITE_FEATURE_NAMES``
    columns. ``grids``: the unseen grids' windows by case, the held-out grid first (its
    rows also serve the parity check and the self-check). Returns the card lines per
    model."""
    grid = next(iter(grids.values()))
    feats = {name: f for name, (_, f) in classifiers.items()} | {ANOM: anomaly_features}
    cols = {k: [SITE_FEATURE_NAMES.index(f) for f in v] for k, v in feats.items()}
    data: dict[str, bytes] = {}
    gated: dict[str, Any] = {}
    for name, (clf, features) in classifiers.items():
        graph = onnx.load_from_string(export_classifier(clf, len(features)))
        classes = tuple(int(c) for c in clf.classes_)
        graph = gate_graph(graph, features, classes)
        gated[name] = AmbientGated(clf, features)  # sklearn's answers as the gated graph's
        if has_clearing_inputs(features):  # the site model (tools/event_clearing.py)
            graph = clearing_graph(graph, features, classes, KINDS.index("fault"))
            gated[name] = ClearingGated(gated[name], features, KINDS.index("fault"))
        data[name] = graph.SerializeToString()
    data[ANOM] = convert(iforest).SerializeToString()
    sessions = {k: session(v) for k, v in data.items()}
    step = max(1, len(grid.y) // 20_000)
    x_check = {k: grid.x[::step][:, c] for k, c in cols.items()}
    gaps = {k: clf_parity(gated[k], sessions[k], x_check[k]) for k in classifiers}
    gaps[ANOM] = anom_parity(iforest, sessions[ANOM], x_check[ANOM])
    x_normal = train.x[train.y == 0][:, cols[ANOM]]
    normal_scores = sessions[ANOM].run(["score"], {"X": x_normal})[0][:, 0]
    # Above the worst training-normal score: a budgeted threshold (0.5 rising edges per
    # PMU-day on the training grids) gave 16 false alarms per PMU-day on kundur, whose
    # normal operation rings more than the training grids'.
    a_raise = float(normal_scores.max()) + ANOM_MARGIN
    th = {k: (CLF_RAISE, CLF_CLEAR) for k in classifiers} | {ANOM: (a_raise, a_raise - ANOM_HYST)}
    stock = session(
        to_onnx(
            iforest, x_check[ANOM][:1], target_opset={"": 17, "ai.onnx.ml": 3}
        ).SerializeToString()
    )
    lat = {k: latency_us(sessions[k], "probabilities", x_check[k]) for k in classifiers}
    lat[ANOM] = latency_us(sessions[ANOM], "score", x_check[ANOM])
    lat["stock"] = latency_us(stock, stock.get_outputs()[-1].name, x_check[ANOM], reps=300)
    pick = np.concatenate([np.flatnonzero(grid.y == k)[:2] for k in range(len(KINDS))])
    check_x = {k: grid.x[pick][:, c] for k, c in cols.items()}
    specs = [
        _classifier_spec(
            name,
            data[name],
            feats[name],
            sessions[name],
            check_x[name],
            training_data_sha256=_hash(train, feats[name]),
            explain=_explain(train.x[:, cols[name]], train.y),
        )
        for name in classifiers
    ]
    specs.append(
        _spec(
            ANOM,
            data[ANOM],
            ModelKind.ANOMALY,
            anomaly_features,
            outputs=("score",),
            score_output="score",
            classes=(),
            positive_class="",
            raise_at=a_raise,
            clear_at=a_raise - ANOM_HYST,
            alert_kind="pmu_anomaly",
            severity=Severity.WARNING,
            training_data_sha256=_hash(train, anomaly_features),
            explain=_explain(train.x[:, cols[ANOM]], train.y),
            self_check=SelfCheck(
                tuple(tuple(float(v) for v in r) for r in check_x[ANOM]),
                tuple(
                    float(v) for v in sessions[ANOM].run(["score"], {"X": check_x[ANOM]})[0][:, 0]
                ),
            ),
        )
    )
    md: Path = args.models_dir
    md.mkdir(parents=True, exist_ok=True)
    for name, blob in data.items():
        (md / f"{name}.onnx").write_bytes(blob)
    merge_manifest(md, specs)
    fixed = {k: x[:: max(1, len(x) // 400)] for k, x in x_check.items()}
    for name in classifiers:
        x = fixed[name]
        np.savez_compressed(
            md / f"{name}.parity.npz",
            x=x,
            proba=gated[name].predict_proba(x),
            label=gated[name].predict(x),
        )
    x_anom = fixed[ANOM]
    np.savez_compressed(md / f"{ANOM}.parity.npz", x=x_anom, score=-iforest.score_samples(x_anom))
    for spec in specs:
        load_model(md, spec.name)  # the service's own checks, end to end
    results = {"held-out buses": _evaluate(test_bus, cols, sessions, th)}
    for case, ws in grids.items():
        results[f"held-out grid ({case})"] = _evaluate(ws, cols, sessions, th)
    return {
        spec.name: write_card(
            md / "cards" / f"{spec.name}.md",
            spec,
            {title: res[spec.name] for title, res in results.items()},
            train=train,
            gap=gaps[spec.name],
            latency=lat,
            th=th[spec.name],
        )
        for spec in specs
    }
