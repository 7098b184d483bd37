"""Columnar scores: ``AlertEngine.process_batch`` gives the alerts, statistics and key
order of ``process`` over every score, and the detectors' ``evaluate_batch`` rows are
their ``evaluate`` scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepipe.core import Score, ScoreBatch, Severity
from edgepipe.inference import OnnxDetector
from edgepipe.inference.testing import starter_model
from edgepipe.pipeline import AlertConfig, AlertEngine, build_rules, pmu_features
from edgepipe.pipeline.testing import conformance_windows

MS = 1_000_000
ASSETS = ("bus1", "bus2", "bus3")

# A row: (asset index, verdict 0 = neutral, 1 = active, 2 = clear, event-time step in ms).
rows = st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 700))
batches = st.lists(st.lists(rows, max_size=12), max_size=30)
configs = st.builds(
    AlertConfig,
    min_hold_ns=st.sampled_from([0, 500 * MS, 2000 * MS]),
    raise_after=st.integers(1, 3),
    flap_window_ns=st.sampled_from([0, 3000 * MS]),
    max_raises=st.integers(0, 2),
)


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


@settings(max_examples=300, deadline=None)
@given(configs, batches)
def test_process_batch_matches_process_of_every_score(
    config: AlertConfig, spec: list[list[tuple[int, int, int]]]
) -> None:
    every, columns = AlertEngine("s", config), AlertEngine("s", config)
    t = 0
    for i, rows_ in enumerate(spec):
        batch, t = _batch("uv" if i % 3 else "of", rows_, t)
        assert every.process(batch.scores()) == columns.process_batch(batch)
    assert every.statistics() == columns.statistics()
    assert every.active_alerts() == columns.active_alerts()
    assert list(every._keys) == list(columns._keys)  # key order: active_alerts() order


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
        got.append(columns.process_batch(batch))
        assert got[-1] == expected
    assert [a.state.value for a in got[-1]] == ["raised"]
    assert every.statistics() == columns.statistics()
