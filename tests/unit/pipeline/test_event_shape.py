"""Event-aligned shape features: located on the largest voltage step, relative to it."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.pipeline.event_shape import SHAPE_NAMES, shape_features


def _one(v: list[float], f: list[float]) -> dict[str, float]:
    row = shape_features(np.array([v]), np.array([f]))[0]
    return dict(zip(SHAPE_NAMES, row.tolist(), strict=True))


def test_cleared_fault_shows_the_sag_its_clearing_and_accelerating_rotors() -> None:
    # 30 rows: 1.0 until row 19, 0.6 for rows 20-24 (5 cycles), back to 0.98 from row 25.
    v = [1.0] * 20 + [0.6] * 5 + [0.98] * 5
    f = [0.0] * 20 + [0.5] + [0.1] * 9  # spike at the step, then a small rise
    s = _one(v, f)
    assert s["v_step_rel"] == pytest.approx(-0.4)
    assert s["v_step_age_frames"] == 9  # the step into row 20; the window ends at row 29
    assert s["v_post_min_rel"] == pytest.approx(0.6)
    assert s["v_post_last_rel"] == pytest.approx(0.98)
    assert s["v_rebound_rel"] == pytest.approx(0.38)
    assert s["freq_shift_hz"] == pytest.approx(0.1)  # the spike row is left out
    assert s["v_displaced_frames"] == 5


def test_a_trip_is_a_step_that_stays_with_falling_frequency() -> None:
    v = [1.0] * 10 + [0.9] + [0.89] * 19
    f = [0.0] * 10 + [-0.4] + [-0.05] * 19
    s = _one(v, f)
    assert s["v_step_rel"] == pytest.approx(-0.1)
    assert s["v_step_age_frames"] == 19
    assert s["v_rebound_rel"] == pytest.approx(0.0)
    assert s["v_post_last_rel"] == pytest.approx(0.89)
    assert s["freq_shift_hz"] == pytest.approx(-0.05)
    assert s["v_displaced_frames"] == 20


def test_missing_rows_do_not_make_a_step_and_all_nan_gives_nan() -> None:
    v = [1.0] * 10 + [np.nan] + [1.0] * 9 + [0.95] * 10
    s = _one(v, [0.0] * 30)
    assert s["v_step_rel"] == pytest.approx(-0.05)  # not the NaN gap
    assert s["v_step_age_frames"] == 9
    nan = _one([np.nan] * 30, [np.nan] * 30)
    assert all(np.isnan(x) for x in nan.values())


def test_windows_are_independent_rows_of_one_call() -> None:
    a = [1.0] * 15 + [0.8] * 15
    b = [1.0] * 5 + [1.1] * 25
    both = shape_features(np.array([a, b]), np.zeros((2, 30)))
    assert both[0, 0] == pytest.approx(-0.2) and both[1, 0] == pytest.approx(0.1)
    assert both[0, 1] == 14 and both[1, 1] == 24


def test_a_step_into_the_newest_row_is_described_and_scoreable() -> None:
    # The window a detector sees first: the step has just arrived, nothing after it yet.
    s = _one([1.0] * 29 + [0.7], [0.0] * 29 + [-2.0])
    assert s["v_step_rel"] == pytest.approx(-0.3)
    assert s["v_step_age_frames"] == 0
    assert s["v_post_last_rel"] == pytest.approx(0.7)
    assert s["v_rebound_rel"] == 0.0
    assert s["freq_shift_hz"] == 0.0
    assert all(np.isfinite(x) for x in s.values())
