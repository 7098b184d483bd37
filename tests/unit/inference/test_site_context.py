"""Site context of PMU windows (tools/site_context.py): the other PMUs of the same run at
the same window end, and nothing from another run or another moment."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "tools")]

from site_context import CONTEXT_NAMES, site_context  # noqa: E402


def _rows(*rows: tuple[str, str, int, float, float]) -> tuple[np.ndarray, ...]:
    """(run, stream, end frame, v_rel_min, freq_rel_min_hz) per window."""
    x = np.zeros((len(rows), len(FEATURE_NAMES)), dtype=np.float32)
    for i, (_, _, _, vmin, fmin) in enumerate(rows):
        x[i, FEATURE_INDEX["v_rel_min"]] = vmin
        x[i, FEATURE_INDEX["freq_rel_min_hz"]] = fmin
        x[i, FEATURE_INDEX["v_pu_range"]] = 1 - vmin
    run = np.array([r[0] for r in rows])
    stream = np.array([r[1] for r in rows])
    end = np.array([r[2] for r in rows])
    return x, run, stream, end


def test_a_fault_sags_one_pmu_deeply_and_a_trip_all_alike() -> None:
    x, run, stream, end = _rows(
        ("fault", "a", 30, 0.40, -0.02),  # next to the fault
        ("fault", "b", 30, 0.90, -0.01),
        ("fault", "c", 30, 0.95, 0.00),
        ("fault", "a", 33, 1.00, 0.00),  # another moment: not in the context above
        ("trip", "a", 30, 0.92, -0.30),  # another run
        ("trip", "b", 30, 0.93, -0.28),
    )
    ctx = site_context(x, run, stream, end)
    col = {n: i for i, n in enumerate(CONTEXT_NAMES)}
    assert ctx.shape == (6, len(CONTEXT_NAMES))
    np.testing.assert_allclose(ctx[:3, col["site_v_rel_min_min"]], 0.40, rtol=1e-6)
    np.testing.assert_allclose(ctx[:3, col["site_v_rel_min_median"]], 0.90, rtol=1e-6)
    np.testing.assert_allclose(ctx[:3, col["v_sag_share"]], [1.0, 1 / 6, 1 / 12], rtol=1e-5)
    np.testing.assert_allclose(ctx[3, col["site_v_rel_min_min"]], 1.0)  # alone at 33
    np.testing.assert_allclose(ctx[4:, col["site_freq_rel_min_median"]], -0.29, rtol=1e-5)
    np.testing.assert_allclose(ctx[4:, col["v_sag_share"]], [0.08 / 0.08, 0.07 / 0.08], rtol=1e-5)


def test_a_site_of_some_pmus_gives_its_context_to_every_window() -> None:
    rows = [("r", s, 30, v, 0.0) for s, v in (("a", 0.5), ("b", 0.8), ("c", 0.9), ("d", 0.95))]
    x, run, stream, end = _rows(*rows, ("r", "a", 36, 0.99, 0.0))
    seen = set()
    for seed in (0, 3):  # the draws pick "d" and "a"
        ctx = site_context(x, run, stream, end, pmus=1, seed=seed)
        deepest = ctx[:4, CONTEXT_NAMES.index("site_v_rel_min_min")]
        assert len(set(deepest.tolist())) == 1  # one PMU's view, the same for all four
        seen.add(float(deepest[0]))
        # at frame 36 only "a" reported: its value if the site is "a", else NaN (never
        # another moment's)
        late = ctx[4, CONTEXT_NAMES.index("site_v_rel_min_min")]
        if deepest[0] == np.float32(0.5):
            assert late == np.float32(0.99)
        else:
            assert np.isnan(late)
    assert seen == {float(np.float32(0.95)), 0.5}
    whole = site_context(x, run, stream, end, pmus=4)
    np.testing.assert_allclose(whole[:4, CONTEXT_NAMES.index("site_v_rel_min_min")], 0.5)
