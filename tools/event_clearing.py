"""The clearing gate of the site model, in scikit-learn terms and in its ONNX graph.

Protection clears a fault: the voltage near it comes back in one frame, and with the
whole site in view some PMU sees that rise (``site_v_rebound_max``, ``site_v_step_up_max``).
A window whose main voltage step is older than the longest fault of the scenarios
(``CLEARING_MAX_AGE`` frames: 10 cycles) while no PMU of the site has risen by more than
the training grids' normal noise (``CLEARING_MIN_RISE``) is, by the labels' own
definition, not a fault window: a fault's window runs from its onset to 29 frames after
its clearing, so every one of them older than that shows the clearing. What is left is a
trip or a load step whose sag stays, unless some PMU of the site is still at or below half of
its pre-event voltage (``CLEARING_DEEP_SAG``): that is a fault still on, or a collapse,
and keeps whatever the forest says (ieee39's fault run 9 leaves two buses at 0 V after
its clearing time). A forest trained on stiff grids calls such a sag a
fault when it is deeper than any trip it has seen (kundur's generator trips), so the model
answers it with P(fault) = 0 and the other classes' probabilities renormalised.

Only the site model gets it: one PMU far from a fault often sees no clearing of its own
(on the held-out buses a local version of the gate took 176 of 2,906 fault windows from
``pmu_event``), and the site's PMU nearest the fault does. The gate is part of the
exported graph, after the ensemble: the service, the parity check and the model cards all
see the same answers. Its limit: a fault that protection leaves on for longer than
``CLEARING_MAX_AGE`` frames (a zone-2 or breaker-failure clearing) loses its class after
that age until it clears; docs/scenarios.md, "Clearing gate".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

# The longest fault of the scenarios (tools/scenarios/spec.py: 3-10 cycles), in frames.
CLEARING_MAX_AGE = 10
# Above the site's largest rise on 99 % of the training grids' normal windows (0.018: PMU
# noise), below a cleared fault's (median 0.25-0.32 on the training grids and kundur).
CLEARING_MIN_RISE = 0.02
# A site voltage below half of its pre-event level is a fault still on: no trip or load
# step of the training grids sags any PMU of its site below 0.75 (kundur's line trips: 0.53).
CLEARING_DEEP_SAG = 0.5
CLEARING_FEATURES = (
    "v_step_age_frames",
    "site_v_rebound_max",
    "site_v_step_up_max",
    "site_v_rel_min_min",
)
_EPS = 1e-6  # a window the forest gave wholly to the fault: the other classes tie


def has_clearing_inputs(features: tuple[str, ...]) -> bool:
    return set(CLEARING_FEATURES) <= set(features)


def uncleared(x: npt.NDArray[Any], features: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    """Rows of ``x`` (columns ``features``) whose step is too old to be an uncleared fault."""
    age, rebound, step_up, deepest = (x[:, features.index(f)] for f in CLEARING_FEATURES)
    rise = np.maximum(rebound, step_up)
    old = age > np.float32(CLEARING_MAX_AGE)
    not_on = deepest > np.float32(CLEARING_DEEP_SAG)  # NaN: not gated, as in the graph
    return np.asarray(old & (rise < np.float32(CLEARING_MIN_RISE)) & not_on, dtype=bool)


def renormalise(proba: npt.NDArray[np.float64], gated: npt.NDArray[np.bool_], fault: int) -> None:
    """In place: the ``gated`` rows' fault probability to 0, the rest scaled to sum 1."""
    if not gated.any():
        return
    keep = np.ones(proba.shape[1])
    keep[fault] = 0.0
    rows = proba[gated] * keep + _EPS * keep
    proba[gated] = rows / rows.sum(axis=1, keepdims=True)


class ClearingGated:
    """``clf`` with the clearing gate: ``predict_proba``/``predict`` as the graph answers."""

    def __init__(self, clf: Any, features: tuple[str, ...], fault: int = 1) -> None:
        self.clf = clf
        self.classes_ = clf.classes_
        self.features = features
        self.fault = list(self.classes_).index(fault)

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        proba: npt.NDArray[np.float64] = np.array(self.clf.predict_proba(x), dtype=np.float64)
        renormalise(proba, uncleared(x, self.features), self.fault)
        return proba

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)], dtype=np.int64)


def clearing_graph(
    model: onnx.ModelProto, features: tuple[str, ...], classes: tuple[int, ...], fault: int = 1
) -> onnx.ModelProto:
    """``model`` (a TreeEnsembleClassifier with ``label`` and ``probabilities`` outputs)
    with the gate after the ensemble: nodes that compute the gated rows from the input,
    move their fault probability to the other classes and take the label again."""
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    x = model.graph.input[0].name
    label_out, proba_out = node.output[0], node.output[1]
    if (label_out, proba_out) != ("label", "probabilities"):
        raise ValueError(f"the clearing gate expects outputs label, probabilities: {node.output}")
    node.output[0], node.output[1] = "forest_label", "forest_probabilities"
    n = len(classes)
    keep = np.ones((1, n), dtype=np.float32)
    keep[0, classes.index(fault)] = 0.0
    cols = [features.index(f) for f in CLEARING_FEATURES]
    # Every condition as "column * sign + offset > 0" (a float32 difference has the sign
    # of the comparison, so this is exact): age > max age, each rise < min rise, deepest
    # sag > deep sag; the smallest of the four is positive exactly on a gated row.
    sign = np.array([[1, -1, -1, 1]], dtype=np.float32)
    offset = np.array(
        [[-CLEARING_MAX_AGE, CLEARING_MIN_RISE, CLEARING_MIN_RISE, -CLEARING_DEEP_SAG]],
        dtype=np.float32,
    )
    init = {
        "clear_cols": np.array(cols, dtype=np.int64),
        "clear_sign": sign,
        "clear_offset": offset,
        "clear_zero": np.zeros((1, 1), dtype=np.float32),
        "clear_keep": keep,
        "clear_eps": keep * np.float32(_EPS),
        "clear_axis": np.array([1], dtype=np.int64),
    }
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in init.items())
    mk = helper.make_node
    nodes = [
        mk("Gather", [x, "clear_cols"], ["clear_in"], axis=1),
        mk("Mul", ["clear_in", "clear_sign"], ["clear_signed"]),
        mk("Add", ["clear_signed", "clear_offset"], ["clear_margins"]),
        mk("ReduceMin", ["clear_margins"], ["clear_margin"], axes=[1], keepdims=1),
        mk("Greater", ["clear_margin", "clear_zero"], ["clear_gated"]),
        mk("Mul", ["forest_probabilities", "clear_keep"], ["clear_kept"]),
        mk("Add", ["clear_kept", "clear_eps"], ["clear_sum_in"]),
        mk("ReduceSum", ["clear_sum_in", "clear_axis"], ["clear_total"], keepdims=1),
        mk("Div", ["clear_sum_in", "clear_total"], ["clear_moved"]),
        mk("Where", ["clear_gated", "clear_moved", "forest_probabilities"], [proba_out]),
    ]
    if tuple(classes) == tuple(range(n)):  # the class index is the label
        nodes.append(mk("ArgMax", [proba_out], [label_out], axis=1, keepdims=0))
    else:
        model.graph.initializer.append(
            numpy_helper.from_array(np.array(classes, dtype=np.int64), "clear_classes")
        )
        nodes.append(mk("ArgMax", [proba_out], ["clear_argmax"], axis=1, keepdims=0))
        nodes.append(mk("Gather", ["clear_classes", "clear_argmax"], [label_out], axis=0))
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model
