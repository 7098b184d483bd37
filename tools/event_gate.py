"""The ambient gate of the event classifier, in scikit-learn terms and in its ONNX graph.

A window whose frequency spans less than ``AMBIENT_FREQ_RANGE_HZ`` and whose voltage spans
less than ``AMBIENT_V_RANGE`` is normal by the labels' own definition
(``scenarios.labels``): no event window inside that band is ever labelled. A forest
still sends some such windows to leaves of events when another feature is unusual (on
kundur, whose ambient rings more than the training grids', 7 % of its normal windows),
so the model answers "normal" with probability 1 there. The gate is part of the exported
graph: the service, the parity check and the model cards all see the same answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper
from scenarios.labels import AMBIENT_FREQ_RANGE_HZ, AMBIENT_V_RANGE, in_ambient_band

GATED_FEATURES = ("freq_range_hz", "v_pu_range")
LIMITS = (AMBIENT_FREQ_RANGE_HZ, AMBIENT_V_RANGE)


class AmbientGated:
    """``clf`` with the gate: ``predict_proba``/``predict`` as the exported graph answers."""

    def __init__(self, clf: Any, features: tuple[str, ...], normal: int = 0) -> None:
        self.clf = clf
        self.classes_ = clf.classes_
        self.cols = [features.index(f) for f in GATED_FEATURES]
        self.normal = normal

    def in_band(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        f_col, v_col = self.cols
        return np.asarray(in_ambient_band(x[:, f_col], x[:, v_col]), dtype=bool)

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        proba: npt.NDArray[np.float64] = self.clf.predict_proba(x)
        band = self.in_band(x)
        proba[band] = 0.0
        proba[band, list(self.classes_).index(self.normal)] = 1.0
        return proba

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        label: npt.NDArray[np.int64] = self.clf.predict(x)
        label[self.in_band(x)] = self.normal
        return label


def gate_graph(
    model: onnx.ModelProto, features: tuple[str, ...], classes: tuple[Any, ...], normal: int = 0
) -> onnx.ModelProto:
    """``model`` (one TreeEnsembleClassifier, skl2onnx's export of a random forest) with the
    gate. Four nodes before the ensemble append one column to its input, ``max(freq span -
    band, voltage span - band)``, negative exactly when the window is inside the band (a
    float32 difference has the sign of the comparison). Every tree gets a new root on that
    column: below 0 -> a leaf voting ``normal`` with the tree's full weight, else -> the old
    tree. The trees are not copied: an earlier gate of two comparisons inside each tree
    needed a copy of it below them (onnxruntime rejects shared subtrees), and the session
    held 92 MB for those 108,000 nodes; this one holds 43 MB.

    The leaves' zero class weights are dropped as well (a random forest's leaves are mostly
    pure, and skl2onnx writes an entry for every class of every leaf; 65 % of them were
    zeros): the sums, and so the answers, are the same."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        raise ValueError(
            f"the gate is written for ONNX opset < 18 (the export uses 17), not {opset}"
        )
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    get = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if get.get("post_transform", b"NONE") != b"NONE":
        raise ValueError("the gate needs summed leaf weights (post_transform NONE)")
    n_trees = len(set(get["nodes_treeids"]))
    gate_col = len(features)  # the appended column
    node_keys = [k for k in get if k.startswith("nodes_")]
    class_keys = ["class_treeids", "class_nodeids", "class_ids", "class_weights"]
    nodes = _by_tree(get, node_keys, "nodes_treeids")
    leaves = _by_tree(get, class_keys, "class_treeids")
    out: dict[str, list[Any]] = {k: [] for k in node_keys + class_keys}
    for tree, block in nodes.items():
        ids = block["nodes_nodeids"]
        root = ids[0]
        gate_id, leaf = max(ids) + 1, max(ids) + 2
        gate = {
            "nodes_treeids": [tree] * 2,
            "nodes_nodeids": [gate_id, leaf],
            "nodes_featureids": [gate_col, 0],
            "nodes_modes": [b"BRANCH_LT", b"LEAF"],
            "nodes_values": [0.0, 0.0],
            "nodes_truenodeids": [leaf, 0],
            "nodes_falsenodeids": [root, 0],
            "nodes_hitrates": [1.0] * 2,
            "nodes_missing_value_tracks_true": [0] * 2,
        }
        for k in node_keys:  # the root first: onnxruntime takes a tree's first node as root
            out[k] += gate[k] + block[k]
        old = leaves[tree]
        keep = [i for i, w in enumerate(old["class_weights"]) if w != 0.0]
        for k in class_keys:
            out[k] += [old[k][i] for i in keep]
        out["class_treeids"].append(tree)
        out["class_nodeids"].append(leaf)
        out["class_ids"].append(list(classes).index(normal))
        out["class_weights"].append(1.0 / n_trees)
    get.update(out)
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in get.items())
    _prepend_gate_column(model, node, features)
    onnx.checker.check_model(model)
    return model


def _prepend_gate_column(
    model: onnx.ModelProto, ensemble: onnx.NodeProto, features: tuple[str, ...]
) -> None:
    """Nodes before ``ensemble`` that feed it its input with the gate column appended."""
    x = ensemble.input[0]
    cols = [features.index(f) for f in GATED_FEATURES]
    limits = np.array([[np.float32(v) for v in LIMITS]], dtype=np.float32)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(cols, dtype=np.int64), "gate_cols"),
            numpy_helper.from_array(limits, "gate_limits"),
        ]
    )
    pre = [
        helper.make_node("Gather", [x, "gate_cols"], ["gate_spans"], axis=1),
        helper.make_node("Sub", ["gate_spans", "gate_limits"], ["gate_diff"]),
        helper.make_node("ReduceMax", ["gate_diff"], ["gate"], axes=[1], keepdims=1),
        helper.make_node("Concat", [x, "gate"], ["gate_input"], axis=1),
    ]
    ensemble.input[0] = "gate_input"
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(pre + nodes)


def _by_tree(
    get: dict[str, Any], keys: list[str], tree_key: str
) -> dict[int, dict[str, list[Any]]]:
    """The entries of ``keys`` grouped by tree id, in their order."""
    out: dict[int, dict[str, list[Any]]] = {}
    for i, tree in enumerate(get[tree_key]):
        block = out.setdefault(tree, {k: [] for k in keys})
        for k in keys:
            block[k].append(get[k][i])
    return out
