"""OnnxDetector on simulator windows: faults raise, normal operation does not."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from adapters.c37118.scenario import fault_sag, synthesize
from edgepipe.core import Severity
from edgepipe.inference import ModelStore, OnnxDetector
from edgepipe.inference.testing import MODELS_DIR, starter_model
from edgepipe.pipeline.features import FEATURE_NAMES, pmu_features

ONSET_S = 2.0
RATE = 60


@pytest.fixture(scope="module")
def fault_windows(starter_data: ModuleType) -> tuple[list, np.ndarray]:
    # Seeds far from the training seeds (0..239): a scenario the model never saw.
    sc = synthesize(2, RATE, 4.0, [fault_sag(ONSET_S, depth_pu=0.5, cycles=6)], seed=5001)
    windows = starter_data.scenario_windows(sc).windows
    return windows, pmu_features(windows)


def _frame(t_ns: int, starter_data: ModuleType) -> int:
    return round((t_ns - starter_data.T0_NS) * RATE / 1e9)


def test_fault_window_is_active_and_pre_fault_windows_are_clear(
    starter_data: ModuleType, fault_windows: tuple[list, np.ndarray]
) -> None:
    windows, feats = fault_windows
    det = OnnxDetector(starter_model())
    scores = det.evaluate(windows, feats)
    assert len(scores) == len(windows)
    onset = round(ONSET_S * RATE)
    before = [
        s for s, w in zip(scores, windows, strict=True) if _frame(w.end_ns, starter_data) < onset
    ]
    holding = [
        s
        for s, w in zip(scores, windows, strict=True)
        if _frame(w.start_ns, starter_data) <= onset and _frame(w.end_ns, starter_data) >= onset + 6
    ]
    assert before and holding
    assert all(not s.active and s.clear for s in before)
    assert all(s.active for s in holding)
    s = holding[0]
    assert s.model == "pmu_fault@1.0.0" and s.kind == "pmu_fault"
    assert s.severity is Severity.CRITICAL
    assert s.evidence["probabilities"]["fault"] >= 0.7
    assert abs(sum(s.evidence["probabilities"].values()) - 1.0) < 1e-5
    names = [f["name"] for f in s.evidence["top_features"]]
    assert len(names) == 3 and set(names) <= set(starter_model().spec.features)
    w = next(w for w in windows if w.end_ns == s.window_end_ns and w.info.stream == s.stream)
    assert s.event_time_ns == w.end_ns and s.window_start_ns == w.start_ns


def test_normal_operation_raises_nothing(starter_data: ModuleType) -> None:
    sc = synthesize(3, RATE, 4.0, [], seed=5002, load_fluctuation=0.08)
    windows = starter_data.scenario_windows(sc, nominal_v=0.0).windows
    scores = OnnxDetector(starter_model()).evaluate(windows, pmu_features(windows))
    assert len(scores) == len(windows) > 100
    assert not any(s.active for s in scores)


def test_batch_of_n_equals_n_batches_of_one(fault_windows: tuple[list, np.ndarray]) -> None:
    windows, feats = fault_windows
    det = OnnxDetector(starter_model())
    batched = [s.score for s in det.evaluate(windows, feats)]
    single = [det.evaluate([w], feats[i : i + 1])[0].score for i, w in enumerate(windows)]
    assert batched == single
    assert det.stats.runs == 1 + len(windows)


def test_windows_with_nan_model_features_are_not_scored(
    fault_windows: tuple[list, np.ndarray],
) -> None:
    windows, feats = fault_windows
    feats = feats[:4].copy()
    used = FEATURE_NAMES.index(starter_model().spec.features[0])
    unused = next(i for i, n in enumerate(FEATURE_NAMES) if n not in starter_model().spec.features)
    feats[1, used] = np.nan
    feats[2, unused] = np.nan  # a feature the model does not use: still scored
    det = OnnxDetector(starter_model())
    scores = det.evaluate(windows[:4], feats)
    assert [s.window_end_ns for s in scores] == [windows[i].end_ns for i in (0, 2, 3)]
    assert det.stats.skipped_nan == 1 and det.stats.scored == 3


def test_huge_finite_features_are_scored_and_infinities_are_not(
    fault_windows: tuple[list, np.ndarray],
) -> None:
    # The screen sums each batch first: two finite values near float32's limit sum to
    # infinity, and that must not cost the window its score.
    windows, feats = fault_windows
    feats = feats[:3].copy()
    cols = [FEATURE_NAMES.index(n) for n in starter_model().spec.features[:2]]
    feats[0, cols] = 3e38
    feats[2, cols[0]] = -np.inf
    det = OnnxDetector(starter_model())
    scores = det.evaluate(windows[:3], feats)
    assert [s.window_end_ns for s in scores] == [windows[i].end_ns for i in (0, 1)]
    assert det.stats.skipped_nan == 1


def test_feature_rows_must_match_windows(fault_windows: tuple[list, np.ndarray]) -> None:
    windows, feats = fault_windows
    with pytest.raises(ValueError, match="feature rows"):
        OnnxDetector(starter_model()).evaluate(windows[:3], feats[:2])


def test_committed_model_matches_sklearn_on_the_fixed_matrix() -> None:
    ref = np.load(MODELS_DIR / "pmu_fault.parity.npz")
    model = starter_model()
    proba = model.run(ref["x"].astype(np.float32))
    assert proba.shape == ref["proba"].shape and len(ref["label"]) > 100
    assert np.array_equal(proba.argmax(axis=1), ref["label"])
    assert float(np.max(np.abs(proba - ref["proba"]))) <= 1e-5
    assert 0 < int(ref["label"].sum()) < len(ref["label"])  # both classes are exercised


def test_detector_on_a_store_follows_a_reload(models_dir: Path) -> None:
    store = ModelStore(models_dir, "pmu_fault")
    det = OnnxDetector(store)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    manifest["models"][0]["version"] = "2.0.0"
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    store.reload()
    assert det.model.ref == "pmu_fault@2.0.0"


def test_batch_one_inference_is_well_inside_the_budget() -> None:
    # Target 50 us per window at batch 1 (tools/bench_inference.py measures it). The
    # bound here is loose so a busy CI box does not flake; it still catches a model or
    # session setup that is an order of magnitude too slow.
    model = starter_model()
    x = np.zeros((1, len(model.spec.features)), dtype=np.float32)
    for _ in range(20):
        model.run(x)
    times = []
    for _ in range(300):
        t0 = time.perf_counter_ns()
        model.run(x)
        times.append(time.perf_counter_ns() - t0)
    assert float(np.median(times)) / 1e3 < 500


def test_starter_detector_passes_the_pipeline_conformance_suite() -> None:
    from edgepipe.inference.testing import CONFORMANCE_DETECTORS
    from edgepipe.pipeline.testing import check_detector, conformance_windows

    for _name, factory in CONFORMANCE_DETECTORS:
        check_detector(factory, conformance_windows())


def test_batch_and_score_agree_on_a_threshold_between_float32_values(
    fault_windows: tuple[list, np.ndarray],
) -> None:
    # The graph scores in float32; the alert compares in float64 on both paths, so a
    # raise level a hair above a score (which rounds to that score in float32) is not met.
    windows, feats = fault_windows
    scores = OnnxDetector(starter_model()).evaluate(windows, feats)
    k = int(np.argmax([s.score for s in scores]))
    value = scores[k].score
    assert value > 0.5
    hair = float(np.spacing(np.float32(value))) / 4
    for raise_at, expected in ((value, True), (value + hair, False)):
        assert np.float32(raise_at) == np.float32(value)
        det = OnnxDetector(starter_model(), thresholds=(raise_at, 0.0))
        batch = det.evaluate_batch(windows[k : k + 1], feats[k : k + 1])
        assert bool(batch.active[0]) is expected
        assert batch.make(0).active is expected
