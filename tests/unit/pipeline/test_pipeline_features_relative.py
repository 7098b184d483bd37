"""Features relative to the pre-event state: the same with or without a nominal voltage."""

from __future__ import annotations

import numpy as np

from edgepipe.core import ChannelInfo, ChannelKind, StreamInfo, Window
from edgepipe.pipeline.features import FEATURE_INDEX, pmu_features

REL = (
    "v_rel_min",
    "v_rel_max",
    "v_rel_last",
    "freq_rel_min_hz",
    "freq_rel_max_hz",
    "freq_rel_last_hz",
)


def _window(nominal: float, v: np.ndarray, f: np.ndarray) -> Window:
    info = StreamInfo(
        stream="s",
        source="t",
        asset="a",
        channels=(
            ChannelInfo("V1.mag", ChannelKind.MAGNITUDE, "V", "V1", "1", nominal),
            ChannelInfo("V1.ang", ChannelKind.ANGLE, "rad", "V1", "1"),
            ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=60.0),
        ),
        rate_hz=60.0,
        nominal_hz=60.0,
    )
    n = len(v)
    times = 1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * 16_666_667
    values = np.column_stack((v, np.zeros(n), f))
    return Window(info, times, values, np.zeros(n, dtype=np.uint16))


def test_sag_relative_to_pre_event_whatever_the_base() -> None:
    v = np.full(30, 120_000.0)
    v[20:25] = 60_000.0  # a sag to half of the pre-event level
    f = np.full(30, 60.02)
    f[20:] = 59.97
    rows = [pmu_features([_window(nom, v, f)])[0] for nom in (0.0, 132_790.0, 100_000.0)]
    for row in rows:
        assert row[FEATURE_INDEX["v_rel_min"]] == 0.5
        assert row[FEATURE_INDEX["v_rel_max"]] == 1.0
        assert row[FEATURE_INDEX["v_rel_last"]] == 1.0
        assert abs(row[FEATURE_INDEX["freq_rel_min_hz"]] - -0.05) < 1e-9
        assert abs(row[FEATURE_INDEX["freq_rel_last_hz"]] - -0.05) < 1e-9
        assert abs(row[FEATURE_INDEX["freq_rel_max_hz"]]) < 1e-9
    # The absolute per-unit features do depend on the base; the relative ones do not.
    assert rows[1][FEATURE_INDEX["v_pu_min"]] != rows[2][FEATURE_INDEX["v_pu_min"]]


def test_relative_features_ignore_missing_rows() -> None:
    v = np.full(30, 100.0)
    v[:3] = np.nan  # lost frames before the event
    v[29] = 90.0
    row = pmu_features([_window(0.0, v, np.full(30, 60.0))])[0]
    assert row[FEATURE_INDEX["v_rel_min"]] == 0.9
    assert all(np.isfinite(row[FEATURE_INDEX[k]]) for k in REL)
