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
    """``model`` (a classifier graph with outputs ``label`` and ``probabilities``) with the
    gate appended: inside the band, label ``normal`` and a one-hot probability row."""
    g = model.graph
    for out in g.output:
        if out.name not in ("label", "probabilities"):
            raise ValueError(f"unexpected classifier output {out.name!r}")
    for node in g.node:
        node.output[:] = [f"{o}_raw" if o in ("label", "probabilities") else o for o in node.output]
    onehot = np.zeros((1, len(classes)), dtype=np.float32)
    onehot[0, list(classes).index(normal)] = 1.0
    f_col, v_col = (features.index(f) for f in GATED_FEATURES)
    consts = {
        "gate_f_col": np.array(f_col, dtype=np.int64),
        "gate_v_col": np.array(v_col, dtype=np.int64),
        "gate_f_limit": np.array(LIMITS[0], dtype=np.float32),
        "gate_v_limit": np.array(LIMITS[1], dtype=np.float32),
        "gate_normal": np.array([normal], dtype=np.int64),
        "gate_onehot": onehot,
        "gate_axis": np.array([1], dtype=np.int64),
    }
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    x = g.input[0].name
    g.node.extend(
        [
            helper.make_node("Gather", [x, "gate_f_col"], ["gate_f"], axis=1),
            helper.make_node("Gather", [x, "gate_v_col"], ["gate_v"], axis=1),
            helper.make_node("Less", ["gate_f", "gate_f_limit"], ["gate_f_below"]),
            helper.make_node("Less", ["gate_v", "gate_v_limit"], ["gate_v_below"]),
            helper.make_node("And", ["gate_f_below", "gate_v_below"], ["gate_band"]),
            helper.make_node("Where", ["gate_band", "gate_normal", "label_raw"], ["label"]),
            helper.make_node("Unsqueeze", ["gate_band", "gate_axis"], ["gate_band_col"]),
            helper.make_node(
                "Where", ["gate_band_col", "gate_onehot", "probabilities_raw"], ["probabilities"]
            ),
        ]
    )
    onnx.checker.check_model(model)
    return model
