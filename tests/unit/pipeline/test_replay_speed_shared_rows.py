"""Features computed once per shared row equal the features of each window on its own,
bit for bit (NaN, bad quality, gap rows and -0.0 included)."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.core import Quality, SampleBatch, Window
from edgepipe.pipeline import WindowConfig, Windower, pmu_features, row_signals
from edgepipe.pipeline._rows import shared_rows
from edgepipe.pipeline.testing import V_BASE, pmu_batch, pmu_info


def _windows(seed: int, hop: int) -> list[Window]:
    rng = np.random.default_rng(seed)
    out: list[Window] = []
    for p in range(3):
        info = pmu_info(f"pmu{p}", f"bus{p}", v_nominal=V_BASE if p == 0 else 0.0)
        n = 150
        v = 1.0 + 0.01 * rng.standard_normal(n)
        v[40:50] = 0.6
        b = pmu_batch(info, n, v_pu=v, f_hz=60.0 + 0.2 * rng.standard_normal(n))
        b.values[rng.random(n) < 0.05, 3] = np.nan
        b.values[70, 0] = -0.0
        b.quality[rng.random(n) < 0.05] = int(Quality.SYNC_LOST)
        keep = np.ones(n, dtype=np.bool_)
        keep[[100, 101 + p]] = False  # frames that never arrive: gap windows
        w = Windower(info, WindowConfig(length=30, hop=hop))
        for lo in range(0, n, 50):  # chunks, as replay hands them over
            sel = keep[lo : lo + 50]
            rows = slice(lo, lo + 50)
            out += w.push(SampleBatch(info.stream, b.times_ns[rows][sel], b.values[rows][sel],
                                      b.quality[rows][sel]))  # fmt: skip
    return out


def _alone(w: Window) -> Window:
    return Window(w.info, w.times_ns.copy(), w.values.copy(), w.quality.copy())


@pytest.mark.parametrize("hop", [1, 3, 5])
@pytest.mark.parametrize("seed", [1, 2])
def test_shared_rows_give_the_features_of_each_window_alone(seed: int, hop: int) -> None:
    windows = _windows(seed, hop)
    assert shared_rows(windows).index is not None  # the shared path is the one under test
    together = pmu_features(windows)
    alone = np.vstack([pmu_features([_alone(w)]) for w in windows])
    assert np.array_equal(together.view(np.int64), alone.view(np.int64))
    pmu_features(windows)  # row signals served from this call's shared rows
    for w in windows[::5]:
        shared, own = row_signals(w), row_signals(_alone(w))
        assert shared.keys() == own.keys()
        for k, v in shared.items():
            assert np.array_equal(v.view(np.int64), own[k].view(np.int64)), k


def test_windows_that_share_nothing_are_stacked() -> None:
    windows = [_alone(w) for w in _windows(3, 3)]
    assert shared_rows(windows).index is None


def test_views_that_are_not_row_slices_fall_back_to_the_stack() -> None:
    info = pmu_info("pmu0", "bus0", v_nominal=V_BASE)
    rng = np.random.default_rng(5)
    b = pmu_batch(info, 120, v_pu=1.0 + 0.01 * rng.standard_normal(120), f_hz=60.0)
    t, v, q = b.times_ns.copy(), b.values.copy(), b.quality.copy()
    windows = [Window(info, t[r : r + 30], v[r : r + 30], q[r : r + 30]) for r in range(0, 60, 3)]
    assert shared_rows(windows).index is not None
    # every other row of the same memory: a view of the same sources, not a row slice
    strided = Window(info, t[0:60:2], v[0:60:2], q[0:60:2])
    for mixed in ([*windows, strided], [strided, *windows]):
        assert shared_rows(mixed).index is None
        together = pmu_features(mixed)
        alone = np.vstack([pmu_features([_alone(w)]) for w in mixed])
        assert np.array_equal(together.view(np.int64), alone.view(np.int64))
