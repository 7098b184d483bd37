"""Weak-grid augmentation (tools/weak_grid.py): event windows copied with their deviations
scaled, timing kept, normal windows never copied."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from train_events import ALL_FEATURES, MODEL_FEATURES  # noqa: E402
from weak_grid import KEPT, SCALED, weaken  # noqa: E402


def _row(**values: float) -> np.ndarray:
    x = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    for name, value in values.items():
        x[FEATURE_INDEX[name]] = value
    return x


def test_every_feature_a_model_reads_is_scaled_or_kept_on_purpose() -> None:
    for name in (*ALL_FEATURES, *MODEL_FEATURES):
        assert (name in SCALED) != (name in KEPT), name


def test_event_windows_get_deeper_copies_and_normal_windows_none() -> None:
    trip = _row(
        v_rel_min=0.95,
        v_rel_last=0.97,
        v_step_rel=-0.04,
        freq_rel_min_hz=-0.05,
        rocof_abs_max_hz_s=0.6,
        v_step_age_frames=12,
    )
    normal = _row(v_rel_min=0.995, freq_rel_min_hz=-0.004)
    x = np.stack([normal, trip])
    y = np.array([0, 3])
    case = np.array(["a", "b"])
    x2, y2, case2 = weaken(x, y, case, (2.0, 3.0))
    assert y2.tolist() == [0, 3, 3, 3]
    assert case2.tolist() == ["a", "b", "b", "b"]
    np.testing.assert_array_equal(x2[:2], x)  # the originals are untouched
    col = FEATURE_INDEX
    np.testing.assert_allclose(x2[2:, col["v_rel_min"]], [0.90, 0.85], rtol=1e-6)
    np.testing.assert_allclose(x2[2:, col["v_rel_last"]], [0.94, 0.91], rtol=1e-6)
    np.testing.assert_allclose(x2[2:, col["v_step_rel"]], [-0.08, -0.12], rtol=1e-6)
    np.testing.assert_allclose(x2[2:, col["freq_rel_min_hz"]], [-0.10, -0.15], rtol=1e-6)
    np.testing.assert_allclose(x2[2:, col["rocof_abs_max_hz_s"]], [1.2, 1.8], rtol=1e-6)
    assert x2[2:, col["v_step_age_frames"]].tolist() == [12, 12]


def test_no_factor_adds_nothing() -> None:
    x = np.stack([_row(v_rel_min=0.9)])
    x2, y2, _ = weaken(x, np.array([1]), np.array(["a"]), ())
    assert x2.shape == x.shape and y2.tolist() == [1]
