"""IsolationForest -> one ONNX ``TreeEnsembleRegressor`` whose leaves hold path lengths.

skl2onnx's stock graph for an IsolationForest walks each tree with ~27 generic nodes per
tree and costs about a millisecond per row at batch 1. Here every leaf stores what
scikit-learn adds up for it (``depth(leaf) + c(n_samples(leaf)) - 1``, Liu et al. 2008,
eq. 2, as ``sklearn.ensemble.IsolationForest._compute_score_samples`` does), one
``TreeEnsembleRegressor`` (ai.onnx.ml) sums them over the trees, and two arithmetic nodes
give ``2 ** (-sum / (n_trees * c(max_samples)))``: the paper's anomaly score in (0, 1],
i.e. ``-IsolationForest.score_samples``, larger = more anomalous.

Thresholds: scikit-learn compares float32 inputs against float64 thresholds; ONNX holds
float32 thresholds, so each one is rounded *down* to the largest float32 not above it,
which keeps ``x <= t`` exactly equal for every float32 ``x``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length


def _f32_floor(t: np.ndarray) -> np.ndarray:
    f = t.astype(np.float32)
    over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f


def _tree_nodes(model: IsolationForest, k: int, attrs: dict[str, list]) -> None:
    est = model.estimators_[k]
    tree = est.tree_
    feats = model.estimators_features_[k]
    subsample = model._max_features != model.n_features_in_
    leaf_value = model._decision_path_lengths[k] + model._average_path_length_per_tree[k] - 1.0
    left, right = tree.children_left, tree.children_right
    thr = _f32_floor(tree.threshold)
    for node in range(tree.node_count):
        leaf = left[node] == -1
        attrs["nodes_treeids"].append(k)
        attrs["nodes_nodeids"].append(node)
        f = int(tree.feature[node]) if not leaf else 0
        attrs["nodes_featureids"].append(int(feats[f]) if subsample and not leaf else f)
        attrs["nodes_values"].append(float(thr[node]) if not leaf else 0.0)
        attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
        attrs["nodes_truenodeids"].append(int(left[node]) if not leaf else 0)
        attrs["nodes_falsenodeids"].append(int(right[node]) if not leaf else 0)
        if leaf:
            attrs["target_treeids"].append(k)
            attrs["target_nodeids"].append(node)
            attrs["target_ids"].append(0)
            attrs["target_weights"].append(float(leaf_value[node]))


def convert(model: IsolationForest, *, input_name: str = "X", opset: int = 17) -> onnx.ModelProto:
    """The ONNX model: input ``X`` (batch, n_features) float32, output ``score`` (batch, 1)."""
    keys = [
        "nodes_treeids",
        "nodes_nodeids",
        "nodes_featureids",
        "nodes_values",
        "nodes_modes",
        "nodes_truenodeids",
        "nodes_falsenodeids",
        "target_treeids",
        "target_nodeids",
        "target_ids",
        "target_weights",
    ]
    attrs: dict[str, list] = {k: [] for k in keys}
    for k in range(len(model.estimators_)):
        _tree_nodes(model, k, attrs)
    n = model.n_features_in_
    denom = len(model.estimators_) * float(_average_path_length([model._max_samples])[0])
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor",
            [input_name],
            ["path_sum"],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function="SUM",
            post_transform="NONE",
            **attrs,
        ),
        helper.make_node("Mul", ["path_sum", "neg_inv_denom"], ["exponent"]),
        helper.make_node("Pow", ["two", "exponent"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "isolation_forest_path_lengths",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            helper.make_tensor("neg_inv_denom", TensorProto.FLOAT, [], [-1.0 / denom]),
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
        ],
    )
    onx = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="edgepipe-tools-iforest_onnx",
    )
    onx.ir_version = 8
    onnx.checker.check_model(onx)
    return onx
