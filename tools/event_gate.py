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
from onnx import helper
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
    gate inside every tree, not as extra graph nodes (each of those costs ~0.7 µs at batch
    1; two more comparisons per tree cost nothing). A new root asks "frequency span below
    the band?": no -> the old tree; yes -> "voltage span below?": no -> a copy of the old
    tree, yes -> a leaf voting ``normal`` with the tree's full weight. onnxruntime wants
    trees, not shared subtrees, hence the copy (the file doubles, the time does not)."""
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    get = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if get.get("post_transform", b"NONE") != b"NONE":
        raise ValueError("the gate needs summed leaf weights (post_transform NONE)")
    n_trees = len(set(get["nodes_treeids"]))
    f_col, v_col = (features.index(f) for f in GATED_FEATURES)
    node_keys = [k for k in get if k.startswith("nodes_")]
    class_keys = ["class_treeids", "class_nodeids", "class_ids", "class_weights"]
    nodes = _by_tree(get, node_keys, "nodes_treeids")
    leaves = _by_tree(get, class_keys, "class_treeids")
    out: dict[str, list[Any]] = {k: [] for k in node_keys + class_keys}
    for tree, block in nodes.items():
        ids = block["nodes_nodeids"]
        root, shift = ids[0], max(ids) + 1  # the copy's ids are the old ones + shift
        g1, g2, leaf = 2 * shift, 2 * shift + 1, 2 * shift + 2
        gate = {
            "nodes_treeids": [tree] * 3,
            "nodes_nodeids": [g1, g2, leaf],
            "nodes_featureids": [f_col, v_col, 0],
            "nodes_modes": [b"BRANCH_LT", b"BRANCH_LT", b"LEAF"],
            "nodes_values": [float(np.float32(LIMITS[0])), float(np.float32(LIMITS[1])), 0.0],
            "nodes_truenodeids": [g2, leaf, 0],
            "nodes_falsenodeids": [root, root + shift, 0],
            "nodes_hitrates": [1.0] * 3,
            "nodes_missing_value_tracks_true": [0] * 3,
        }
        copy = dict(block)
        for k in ("nodes_nodeids", "nodes_truenodeids", "nodes_falsenodeids"):
            copy[k] = [i + shift for i in block[k]]
        for k in node_keys:  # the root first: onnxruntime takes a tree's first node as root
            out[k] += gate[k] + block[k] + copy[k]
        old = leaves[tree]
        out["class_treeids"] += old["class_treeids"] * 2 + [tree]
        out["class_nodeids"] += (
            old["class_nodeids"] + [i + shift for i in old["class_nodeids"]] + [leaf]
        )
        out["class_ids"] += old["class_ids"] * 2 + [list(classes).index(normal)]
        out["class_weights"] += old["class_weights"] * 2 + [1.0 / n_trees]
    get.update(out)
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in get.items())
    onnx.checker.check_model(model)
    return model


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
