"""The event classifier's ambient gate: scikit-learn wrapper and ONNX graph agree, and a
window inside the band is normal whatever the forest says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from event_gate import AmbientGated, gate_graph  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from train_starter import export, session  # noqa: E402

FEATURES = ("rocof_abs_max_hz_s", "freq_range_hz", "v_pu_range")


def _forest() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(3)
    x = np.column_stack(
        [rng.uniform(0, 5, 600), rng.uniform(0, 0.1, 600), rng.uniform(0, 0.05, 600)]
    ).astype(np.float32)
    # ROCOF alone decides here, so the forest calls in-band windows events as well.
    y = np.digitize(x[:, 0], [1.0, 2.5]).astype(np.int64)
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), x


def _ensemble(model: onnx.ModelProto) -> dict[str, list[float]]:
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    return {a.name: list(onnx.helper.get_attribute_value(a)) for a in node.attribute
            if a.name in ("nodes_nodeids", "class_weights")}  # fmt: skip


def test_graph_and_wrapper_agree_and_the_band_is_normal() -> None:
    clf, x = _forest()
    gated = AmbientGated(clf, FEATURES)
    stock = onnx.load_from_string(export(clf, 3))
    graph = gate_graph(onnx.load_from_string(export(clf, 3)), FEATURES, (0, 1, 2))
    ops = [n.op_type for n in graph.graph.node]
    assert ops == ["Gather", "Sub", "ReduceMax", "Concat", "TreeEnsembleClassifier"]
    # two nodes more per tree (the gate and its leaf), no copy of any tree, no zero weight
    before, after = (_ensemble(m) for m in (stock, graph))
    assert len(after["nodes_nodeids"]) == len(before["nodes_nodeids"]) + 2 * 5
    assert 0.0 not in after["class_weights"]
    assert len(after["class_weights"]) < len(before["class_weights"])
    label, proba = session(graph.SerializeToString()).run(["label", "probabilities"], {"X": x})
    assert np.array_equal(label, gated.predict(x))
    assert np.max(np.abs(proba - gated.predict_proba(x))) <= 1e-6

    band = (x[:, 1] < 0.03) & (x[:, 2] < 0.02)
    assert 20 < band.sum() < 300
    assert (label[band] == 0).all() and np.allclose(proba[band, 0], 1.0, atol=1e-6)
    assert (clf.predict(x[band]) != 0).sum() > 10  # the forest alone would not say so
    outside = ~band
    assert np.array_equal(label[outside], clf.predict(x[outside]))
    assert np.max(np.abs(proba[outside] - clf.predict_proba(x[outside]))) <= 1e-6


def test_a_window_on_either_edge_of_the_band() -> None:
    clf, _ = _forest()
    graph = gate_graph(onnx.load_from_string(export(clf, 3)), FEATURES, (0, 1, 2))
    rows = np.array([[4.0, 0.029, 0.019], [4.0, 0.03, 0.019], [4.0, 0.029, 0.02]], np.float32)
    label, _ = session(graph.SerializeToString()).run(["label", "probabilities"], {"X": rows})
    assert label.tolist() == [0, 2, 2]


def test_a_graph_of_another_opset_is_refused_by_name() -> None:
    clf, _ = _forest()
    model = onnx.load_from_string(export(clf, 3))
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 18
    with pytest.raises(ValueError, match="opset < 18"):
        gate_graph(model, FEATURES, (0, 1, 2))
