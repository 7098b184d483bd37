"""The site model's clearing gate: scikit-learn wrapper and ONNX graph agree, and a sag
older than the longest fault with no rise anywhere in the site, and no PMU of it still
below half voltage, is never a fault."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from event_clearing import (  # noqa: E402
    CLEARING_DEEP_SAG,
    CLEARING_MAX_AGE,
    CLEARING_MIN_RISE,
    ClearingGated,
    clearing_graph,
)
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from train_starter import export, session  # noqa: E402

FEATURES = (
    "v_rel_min",
    "v_step_age_frames",
    "site_v_rebound_max",
    "site_v_step_up_max",
    "site_v_rel_min_min",
)
CLASSES = (0, 1, 2, 3)  # normal, fault, line trip, generator trip
FAULT = 1


def _forest() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(5)
    n = 1600
    x = np.column_stack(
        [
            rng.uniform(0.5, 1.0, n),
            rng.integers(0, 30, n),
            rng.uniform(0, 0.06, n),
            rng.uniform(0, 0.06, n),
            rng.uniform(0.0, 1.0, n),
        ]
    ).astype(np.float32)
    # The sag alone decides here (deep is a fault), as a forest from stiff grids learns.
    band = np.digitize(x[:, 0], [0.7, 0.85, 0.95])  # deepest first
    y = np.array([FAULT, 3, 2, 0], dtype=np.int64)[band]
    return RandomForestClassifier(n_estimators=6, random_state=0).fit(x, y), x


def _graph(clf: RandomForestClassifier) -> onnx.ModelProto:
    return clearing_graph(onnx.load_from_string(export(clf, 5)), FEATURES, CLASSES, FAULT)


def test_graph_and_wrapper_agree_and_an_uncleared_old_sag_is_no_fault() -> None:
    clf, x = _forest()
    gated = ClearingGated(clf, FEATURES, FAULT)
    label, proba = session(_graph(clf).SerializeToString()).run(
        ["label", "probabilities"], {"X": x}
    )
    assert np.array_equal(label, gated.predict(x))
    assert np.max(np.abs(proba - gated.predict_proba(x))) <= 1e-5
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)

    rise = np.maximum(x[:, 2], x[:, 3])
    shut = (x[:, 1] > CLEARING_MAX_AGE) & (rise < CLEARING_MIN_RISE) & (x[:, 4] > 0.5)
    assert 30 < shut.sum() < 150
    assert (clf.predict(x[shut]) == FAULT).sum() > 10  # the forest alone says fault there
    assert (proba[shut, FAULT] == 0).all() and (label[shut] != FAULT).all()
    # the other classes keep their proportions
    raw = clf.predict_proba(x[shut])
    some = raw[:, 2] > 0.2
    ratio = proba[shut][some, 2] / np.maximum(proba[shut][some].sum(axis=1), 1e-9)
    expect = raw[some, 2] / np.maximum(1 - raw[some, FAULT], 1e-9)
    assert np.allclose(ratio, expect, atol=1e-3)
    # everywhere else the forest's answers stand
    assert np.array_equal(label[~shut], clf.predict(x[~shut]))
    assert np.max(np.abs(proba[~shut] - clf.predict_proba(x[~shut]))) <= 1e-6


def test_the_edges_young_steps_and_a_rise_anywhere_keep_the_fault() -> None:
    clf, _ = _forest()
    sess = session(_graph(clf).SerializeToString())
    deep, site = 0.55, 0.55  # the forest says fault; the site's deepest sag
    rows = np.array(
        [
            [deep, CLEARING_MAX_AGE, 0.0, 0.0, site],  # young: the fault may still be on
            [deep, CLEARING_MAX_AGE + 1, 0.0, 0.0, site],  # too old, no rise: not a fault
            [deep, 25, CLEARING_MIN_RISE, 0.0, site],  # a rebound at some PMU: cleared
            [deep, 25, 0.0, 0.3, site],  # a PMU's main step is the clearing rise
            [deep, 25, 0.019, 0.019, site],  # noise-sized rises only
            [deep, 25, 0.0, 0.0, CLEARING_DEEP_SAG],  # a PMU down to half its voltage: still on
        ],
        np.float32,
    )
    label, proba = sess.run(["label", "probabilities"], {"X": rows})
    assert clf.predict(rows).tolist() == [FAULT] * 6
    assert (label == FAULT).tolist() == [True, False, True, True, False, True]
    assert proba[1, FAULT] == 0 and proba[4, FAULT] == 0
    # a window the forest gave wholly to the fault still sums to 1
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_graph_without_the_expected_outputs_is_refused_by_name() -> None:
    clf, _ = _forest()
    model = onnx.load_from_string(export(clf, 5))
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    node.output[1] = "scores"
    with pytest.raises(ValueError, match="label, probabilities"):
        clearing_graph(model, FEATURES, CLASSES, FAULT)


def test_labels_that_are_not_class_indices_are_mapped_back() -> None:
    clf, x = _forest()
    named = (0, 1, 4, 7)  # a forest that never saw classes 2, 3, 5 and 6
    relabelled = RandomForestClassifier(n_estimators=6, random_state=0).fit(
        x, np.array(named)[clf.predict(x)]
    )
    graph = clearing_graph(onnx.load_from_string(export(relabelled, 5)), FEATURES, named, FAULT)
    label, proba = session(graph.SerializeToString()).run(["label", "probabilities"], {"X": x})
    gated = ClearingGated(relabelled, FEATURES, FAULT)
    assert set(label.tolist()) <= set(named) and 7 in label.tolist()
    assert np.array_equal(label, gated.predict(x))
    assert np.max(np.abs(proba - gated.predict_proba(x))) <= 1e-5
