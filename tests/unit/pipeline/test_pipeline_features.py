"""Features on known signals: Fortescue, unbalance, ROCOF, angle jumps, quality masking."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo, Window
from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES, pmu_features, row_signals
from edgepipe.pipeline.testing import pmu_batch, pmu_info

INFO = pmu_info(rate_hz=60.0)


def window(batch: SampleBatch, info: StreamInfo = INFO) -> Window:
    return Window(info, batch.times_ns, batch.values, batch.quality)


def feat(w: Window) -> dict[str, float]:
    row = pmu_features([w])[0]
    return dict(zip(FEATURE_NAMES, row.tolist(), strict=True))


def test_balanced_set_has_no_unbalance_and_unit_positive_sequence() -> None:
    f = feat(window(pmu_batch(INFO, 60)))
    assert f["v_unbalance_pct"] == pytest.approx(0, abs=1e-9)
    assert f["v1_pu"] == pytest.approx(1.0) and f["v0_pu"] == pytest.approx(0, abs=1e-9)
    assert f["v_pu_min"] == pytest.approx(1.0) and f["v_pu_std"] == pytest.approx(0, abs=1e-12)
    assert f["i1_pu"] == pytest.approx(1.0) and f["i_unbalance_pct"] == pytest.approx(0, abs=1e-9)
    assert f["freq_dev_last_hz"] == 0 and f["angle_jump_deg"] == pytest.approx(0, abs=1e-9)
    assert f["bad_quality_frac"] == 0 and f["missing_frac"] == 0 and f["nan_frac"] == 0


def test_negative_sequence_injection_gives_its_percentage() -> None:
    f = feat(window(pmu_batch(INFO, 60, v2_pu=0.03)))
    assert f["v_unbalance_pct"] == pytest.approx(3.0, rel=1e-9)
    assert f["v2_pu"] == pytest.approx(0.03, rel=1e-9)
    assert f["v1_pu"] == pytest.approx(1.0)


def test_frequency_ramp_gives_its_rocof_reported_and_computed() -> None:
    t = np.arange(60) / 60.0
    f = feat(window(pmu_batch(INFO, 60, f_hz=60.0 - 0.5 * t)))
    assert f["rocof_fit_hz_s"] == pytest.approx(-0.5, rel=1e-6)
    assert f["rocof_computed_abs_max_hz_s"] == pytest.approx(0.5, rel=1e-6)
    assert f["rocof_reported_abs_max_hz_s"] == pytest.approx(0.5, rel=1e-6)
    assert f["freq_dev_min_hz"] == pytest.approx(-0.5 * 59 / 60)
    assert f["freq_dev_last_hz"] == f["freq_dev_min_hz"]


@pytest.mark.parametrize("f_hz", [60.0, 60.3, 59.6])
def test_angle_step_gives_jump_degrees_net_of_frequency_rotation(f_hz: float) -> None:
    step = np.where(np.arange(60) >= 25, np.radians(15.0), 0.0)
    b = pmu_batch(INFO, 60, f_hz=f_hz, angle_step_rad=step)
    f = feat(window(b))
    assert f["angle_jump_deg"] == pytest.approx(15.0, abs=1e-6)
    assert int(np.nanargmax(row_signals(window(b))["angle_jump_deg"])) == 25
    # Without the step the off-nominal rotation alone is not a jump.
    assert feat(window(pmu_batch(INFO, 60, f_hz=f_hz)))["angle_jump_deg"] < 1e-6


def test_per_unit_base_is_the_pre_event_median_without_a_nominal() -> None:
    v = np.where(np.arange(60) >= 30, 0.8, 1.0) * 1.07  # a bus running at 1.07 of V_BASE
    f = feat(window(pmu_batch(INFO, 60, v_pu=v)))
    assert f["v_pu_min"] == pytest.approx(0.8) and f["v_pu_max"] == pytest.approx(1.0)
    assert f["v_pu_last"] == pytest.approx(0.8) and f["v_pu_range"] == pytest.approx(0.2)


def test_bad_quality_rows_never_move_a_feature() -> None:
    b = pmu_batch(INFO, 60)
    b.values[10:16, :6] = 0.0  # garbage the PMU itself flagged
    b.quality[10:16] = Quality.SYNC_LOST
    f = feat(window(b))
    assert f["v_pu_min"] == pytest.approx(1.0)
    assert f["bad_quality_frac"] == pytest.approx(0.1) and f["nan_frac"] == pytest.approx(0.1)


def test_all_nan_window_gives_nan_features_and_no_warnings() -> None:
    b = pmu_batch(INFO, 30)
    w = Window(INFO, b.times_ns, np.full_like(b.values, np.nan), b.quality)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = pmu_features([w])[0]
    assert row.dtype == np.float64
    fracs = [FEATURE_INDEX[k] for k in ("bad_quality_frac", "missing_frac", "nan_frac")]
    assert row[fracs].tolist() == [0.0, 1.0, 1.0]
    others = np.delete(row, fracs)
    assert np.isnan(others).all()


def _positive_sequence_info() -> StreamInfo:
    return StreamInfo(
        "pmu9",
        "sim",
        "bus9",
        (
            ChannelInfo("V1.mag", ChannelKind.MAGNITUDE, "V", "V1", "1", nominal=1000.0),
            ChannelInfo("V1.ang", ChannelKind.ANGLE, "rad", "V1", "1"),
            ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=50.0),
        ),
        rate_hz=50.0,
        nominal_hz=50.0,
    )


def test_mixed_layouts_in_one_call_match_one_by_one() -> None:
    pos = _positive_sequence_info()
    n = 40
    times = pmu_batch(INFO, n).times_ns
    vals = np.column_stack((np.full(n, 950.0), np.zeros(n), np.full(n, 50.1)))
    w_pos = Window(pos, times, vals, np.zeros(n, dtype=np.uint16))
    ws = [window(pmu_batch(INFO, n, v2_pu=0.01)), w_pos, window(pmu_batch(INFO, n, v_pu=0.9))]
    together = pmu_features(ws)
    alone = np.vstack([pmu_features([w]) for w in ws])
    np.testing.assert_array_equal(together, alone)
    f = dict(zip(FEATURE_NAMES, together[1].tolist(), strict=True))
    assert f["v_pu_min"] == pytest.approx(0.95)  # against the channel nominal
    assert f["freq_dev_last_hz"] == pytest.approx(0.1)
    assert np.isnan(f["v_unbalance_pct"]) and np.isnan(f["i_pu_max"])  # no such data
