"""tools/iforest_onnx.py: one TreeEnsembleRegressor reproduces IsolationForest's scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import IsolationForest

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "tools")]

from iforest_onnx import convert  # noqa: E402


@pytest.mark.parametrize("max_features", [1.0, 0.6])
def test_iforest_graph_reproduces_sklearn_scores(max_features: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 7)).astype(np.float32)
    model = IsolationForest(
        n_estimators=50, max_samples=128, max_features=max_features, random_state=0
    ).fit(x)
    sess = ort.InferenceSession(convert(model).SerializeToString())
    # Normal rows, far outliers, and rows sitting exactly on split thresholds (the float32
    # rounding of thresholds must not flip a single comparison).
    thr = model.estimators_[0].tree_.threshold
    edge = np.tile(x[:50], (1, 1))
    edge[:, model.estimators_[0].tree_.feature[0]] = np.float32(thr[0])
    probe = np.vstack([x[:500], rng.normal(scale=4, size=(500, 7)).astype(np.float32), edge])
    got = sess.run(["score"], {"X": probe})[0][:, 0]
    assert np.max(np.abs(got + model.score_samples(probe))) <= 1e-5


def test_iforest_graph_has_one_tree_node() -> None:
    x = np.random.default_rng(2).normal(size=(500, 3)).astype(np.float32)
    onx = convert(IsolationForest(n_estimators=10, random_state=0).fit(x))
    assert [n.op_type for n in onx.graph.node] == ["TreeEnsembleRegressor", "Mul", "Pow"]
