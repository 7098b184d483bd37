"""The label rules of tools/scenarios/labels.py on hand-made feature rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "tools")]

from scenarios.dataset import IGNORE, WindowSet  # noqa: E402
from scenarios.labels import apply_label_rules  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402


def _windows(rows: list[tuple[str, str, float, float, float]]) -> WindowSet:
    """One window per row: (kind label, stream, freq range Hz, voltage range pu, v_rel_min)."""
    n = len(rows)
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    for i, (_, _, fr, vr, vmin) in enumerate(rows):
        x[i, FEATURE_INDEX["freq_range_hz"]] = fr
        x[i, FEATURE_INDEX["v_pu_range"]] = vr
        x[i, FEATURE_INDEX["v_rel_min"]] = vmin
    kinds = [KINDS.index(r[0]) for r in rows]
    return WindowSet(
        x=x,
        y=np.array(kinds, dtype=np.int64),
        scenario=np.array([f"g-{r[0]}-1" for r in rows]),
        case=np.array(["g"] * n),
        bus=np.zeros(n, dtype=np.int64),
        pmu_key=np.array([r[1] for r in rows]),
        end_frame=np.arange(n, dtype=np.int64),
        start_frame=np.zeros(n, dtype=np.int64),
        kind=np.array(kinds, dtype=np.int64),
    )


def test_event_windows_inside_the_ambient_band_are_left_out() -> None:
    ws = _windows(
        [
            ("oscillation", "a", 0.012, 0.010, 1.0),  # decayed: ambient-sized swing
            ("oscillation", "a", 0.045, 0.010, 1.0),  # frequency swings beyond ambient
            ("load_step", "b", 0.010, 0.025, 0.98),  # voltage steps beyond ambient
            ("load_step", "b", 0.010, 0.012, 0.99),  # a small step on a big grid
            ("gen_trip", "c", 0.029, 0.019, 0.99),  # just inside both bounds
            ("normal", "d", 0.001, 0.001, 1.0),  # quiet normal windows stay normal
        ]
    )
    got = apply_label_rules(ws, set()).y
    osc, step, trip = (KINDS.index(k) for k in ("oscillation", "load_step", "gen_trip"))
    assert got.tolist() == [IGNORE, osc, step, IGNORE, IGNORE, 0]
    assert trip not in got


def test_fault_windows_need_a_pmu_that_sags_and_a_window_beyond_ambient() -> None:
    ws = _windows(
        [
            ("fault", "near", 0.005, 0.005, 0.99),  # faint first frames at a PMU that sags
            ("fault", "near", 0.04, 0.015, 0.985),  # the frequency already moves
            ("fault", "near", 0.2, 0.3, 0.90),
            ("fault", "far", 0.2, 0.015, 0.985),  # this PMU never sags by 3 %
        ]
    )
    got = apply_label_rules(ws, set()).y
    assert got.tolist() == [IGNORE, 1, 1, IGNORE]


def test_collapsed_runs_are_left_out_whole() -> None:
    ws = _windows([("normal", "a", 0.001, 0.001, 1.0), ("gen_trip", "b", 0.5, 0.2, 0.7)])
    got = apply_label_rules(ws, {"g-gen_trip-1"}).y
    assert got.tolist() == [0, IGNORE]
