"""Columnar scores: the detectors' ``evaluate_batch`` rows are their ``evaluate`` scores,
and a flush of one ``ScoreBatch`` skips no row that changes a key. (That
``process_flush`` equals ``process`` over every score in window order, for any batching,
is property-tested in test_replay_order_flush.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.core import Score, ScoreBatch, Severity
from edgepipe.inference import OnnxDetector
from edgepipe.inference.testing import starter_model
from edgepipe.pipeline import AlertConfig, AlertEngine, build_rules, pmu_features
from edgepipe.pipeline.testing import conformance_windows

MS = 1_000_000
ASSETS = ("bus1", "bus2", "bus3")


def _batch(kind: str, spec: list[tuple[int, int, int]], t0: int) -> tuple[ScoreBatch, int]:
    made: list[Score] = []
    t = t0
    for a, verdict, step in spec:
        t += step * MS
        active, clear = verdict == 1, verdict == 2
        s = Score(f"pmu{a}", ASSETS[a], kind, Severity.WARNING, float(verdict), active, clear,
                  f"rules/{kind}", t, t - 500 * MS, t, {"t": t})  # fmt: skip
        made.append(s)
    active = np.array([s.active for s in made], dtype=np.bool_)
    return ScoreBatch(kind, f"rules/{kind}", [s.asset for s in made], active, made.__getitem__), t


def _every_detector() -> list[object]:
    return [*build_rules(), OnnxDetector(starter_model())]


@pytest.mark.parametrize("nan_rows", [False, True], ids=["finite", "some-nan"])
def test_evaluate_batch_rows_are_the_evaluate_scores(nan_rows: bool) -> None:
    windows = conformance_windows()
    feats = pmu_features(windows)
    if nan_rows:
        feats = feats.copy()
        feats[::3] = np.nan
    for det in _every_detector():
        batch = det.evaluate_batch(windows, feats)  # type: ignore[attr-defined]
        scores = det.evaluate(windows, feats)  # type: ignore[attr-defined]
        assert batch.scores() == scores
        assert list(batch.active) == [s.active for s in scores]
        assert list(batch.assets) == [s.asset for s in scores]
        assert all(s.kind == batch.kind and s.model == batch.model for s in scores)


def test_a_clear_ends_a_suppressed_episode_even_in_a_batch_without_active_rows() -> None:
    config = AlertConfig(min_hold_ns=0, flap_window_ns=1000 * MS, max_raises=1)
    every, columns = AlertEngine("s", config), AlertEngine("s", config)
    # raise, clear, a suppressed raise, neutral | clear | (flap window over) active
    spec = [[(0, 1, 0), (0, 2, 10), (0, 1, 10), (0, 0, 10)], [(0, 2, 10)], [(0, 1, 2000)]]
    t, got = 0, []
    for rows_ in spec:
        batch, t = _batch("uv", rows_, t)
        expected = every.process(batch.scores())
        got.append(columns.process_flush([batch]))
        assert got[-1] == expected
    assert [a.state.value for a in got[-1]] == ["raised"]
    assert every.statistics() == columns.statistics()
