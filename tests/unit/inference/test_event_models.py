"""The committed event models: parity with scikit-learn, service checks, a real fault.

``models/<name>.parity.npz`` (pmu_event, pmu_event_site, pmu_anomaly) hold feature rows and
scikit-learn's answers, written by ``tools/train_events.py``; ``tests/data`` holds three
PMUs of one ANDES kundur fault scenario (the grid case no model was trained on).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from edgepipe.inference import OnnxDetector, load_model
from edgepipe.inference.loader import ModelStore
from edgepipe.inference.manifest import parse_manifest
from edgepipe.pipeline.features import pmu_features

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models"
SAMPLE = ROOT / "tests" / "data" / "scenarios_sample.parquet"
sys.path[:0] = [str(ROOT / "tools")]

from scenarios.dataset import IGNORE, T0_NS, pmu_windows, shard_windows  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402


@pytest.mark.parametrize("name", ["pmu_event", "pmu_event_site", "pmu_anomaly"])
def test_event_model_loads_with_every_check(name: str) -> None:
    model = load_model(MODELS, name)  # sha256, features, graph, self-check
    assert model.spec.features[0] == "v_rel_min"


@pytest.mark.parametrize("name", ["pmu_event", "pmu_event_site"])
def test_event_classifier_matches_sklearn(name: str) -> None:
    model = load_model(MODELS, name)
    with np.load(MODELS / f"{name}.parity.npz") as z:
        x, proba, label = z["x"], z["proba"], z["label"]
    got_label, got_proba = model.session.run(["label", "probabilities"], {"X": x})
    assert np.array_equal(got_label, label)
    assert np.max(np.abs(got_proba - proba)) <= 1e-5
    assert len(np.unique(label)) >= 3  # the fixed rows exercise several classes


def test_anomaly_graph_matches_sklearn_and_is_one_tree_ensemble() -> None:
    model = load_model(MODELS, "pmu_anomaly")
    with np.load(MODELS / "pmu_anomaly.parity.npz") as z:
        x, score = z["x"], z["score"]
    got = model.run(x)[:, 0]
    assert np.max(np.abs(got - score)) <= 1e-5
    import onnx

    ops = [n.op_type for n in onnx.load(MODELS / "pmu_anomaly.onnx").graph.node]
    assert ops == ["TreeEnsembleRegressor", "Mul", "Pow"]


def test_sample_is_labelled_from_its_event_times() -> None:
    ws = shard_windows(SAMPLE, nominal_known=False)
    fault = KINDS.index("fault")
    assert set(np.unique(ws.y)) == {IGNORE, 0, fault}
    # Fault windows are exactly those holding a frame of the fault at their PMU.
    hit = ws.y == fault
    assert (ws.end_frame[hit] >= ws.start_frame[hit]).all()
    assert (ws.end_frame[ws.y == 0] < ws.start_frame[ws.y == 0]).all()


def test_sample_cut_at_hop_1_and_for_some_buses() -> None:
    every3 = shard_windows(SAMPLE, nominal_known=False)
    every1 = shard_windows(SAMPLE, nominal_known=False, hop=1, rows=pl.col("bus") != 5)
    assert set(np.unique(every1.bus)) == {1, 8}
    kept = every3.bus != 5
    # hop 1 emits a window on every frame: the hop-3 windows and the two between each pair
    for key in np.unique(every1.pmu_key):
        ends1 = every1.end_frame[every1.pmu_key == key]
        ends3 = every3.end_frame[kept & (every3.pmu_key == key)]
        assert np.all(np.diff(ends1) == 1)
        assert set(ends3) <= set(ends1)
        assert len(ends1) >= 3 * len(ends3) - 2
    # a fault window gives the same features and label whatever the hop
    a = every3.take(kept & (every3.y == KINDS.index("fault")))
    assert len(a.y) >= 2 * 5
    key1 = [f"{k}@{e}" for k, e in zip(every1.pmu_key, every1.end_frame, strict=True)]
    key3 = [f"{k}@{e}" for k, e in zip(a.pmu_key, a.end_frame, strict=True)]
    b = every1.take(np.isin(key1, key3))
    order1, order3 = np.argsort(np.array(key1)[np.isin(key1, key3)]), np.argsort(key3)
    np.testing.assert_array_equal(b.x[order1], a.x[order3])
    assert b.y.tolist() == a.y.tolist()


def test_a_filter_that_keeps_no_row_is_named() -> None:
    with pytest.raises(ValueError, match="no rows pass the filter"):
        shard_windows(SAMPLE, rows=pl.col("bus") == -1)


def test_detector_raises_on_the_unseen_grid_fault_and_not_before() -> None:
    det = OnnxDetector(ModelStore(MODELS, "pmu_event"))
    df = pl.read_parquet(SAMPLE)
    start = math.ceil(float(df["event_start_s"][0]) * 60)  # first frame of the fault
    for pmu in (0, 4, 7):
        windows = pmu_windows(df.filter(pl.col("pmu") == pmu).sort("frame"), nominal_known=True)
        scores = det.evaluate(windows, pmu_features(windows))
        ends = [round((s.window_end_ns - T0_NS) * 60 / 1e9) for s in scores]
        raised = [e for s, e in zip(scores, ends, strict=True) if s.active]
        assert raised, f"PMU {pmu}: the fault raised nothing"
        assert raised[0] >= start, f"PMU {pmu}: raised before the fault"
        assert raised[0] - start <= 4, f"PMU {pmu}: raised {raised[0] - start} frames late"


def test_anomaly_spec_round_trips_through_the_manifest() -> None:
    spec = load_model(MODELS, "pmu_anomaly").spec
    entry = spec.to_json()
    assert "classes" not in entry and "positive_class" not in entry
    assert parse_manifest({"schema": 1, "models": [entry]})["pmu_anomaly"] == spec


def test_event_classifier_calls_a_window_inside_the_ambient_band_normal() -> None:
    model = load_model(MODELS, "pmu_event")
    with np.load(MODELS / "pmu_event.parity.npz") as z:
        x = z["x"][z["label"] != 0].copy()  # windows the classifier calls events
    assert len(x) >= 10
    feats = model.spec.features
    x[:, feats.index("freq_range_hz")] = 0.01  # ...squeezed into a quiet grid's ambient
    x[:, feats.index("v_pu_range")] = 0.012
    label, proba = model.session.run(["label", "probabilities"], {"X": x})
    assert (label == 0).all()
    assert np.allclose(proba[:, 0], 1.0, atol=1e-6)


def test_site_classifier_takes_the_fault_from_an_old_sag_that_never_cleared() -> None:
    model = load_model(MODELS, "pmu_event_site")
    feats = model.spec.features
    with np.load(MODELS / "pmu_event_site.parity.npz") as z:
        x = z["x"][z["label"] != 0].copy()  # windows it calls events
    assert len(x) >= 10
    # ...made into a sag 20 frames old that no PMU of the site has come back from
    x[:, feats.index("v_step_age_frames")] = 20
    x[:, feats.index("site_v_rebound_max")] = 0.005
    x[:, feats.index("site_v_step_up_max")] = 0.0
    x[:, feats.index("site_v_rel_min_min")] = 0.8
    label, proba = model.session.run(["label", "probabilities"], {"X": x})
    fault = KINDS.index("fault")
    assert (proba[:, fault] == 0).all() and (label != fault).all()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # a PMU of the site still at 0.3 of its voltage: the fault is on, the forest decides
    x[:, feats.index("site_v_rel_min_min")] = 0.3
    _, proba = model.session.run(["label", "probabilities"], {"X": x})
    assert (proba[:, fault] > 0).any()
