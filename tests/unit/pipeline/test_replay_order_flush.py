"""``AlertEngine.process_flush``: the scores of a flush in event-time order.

Two streams of one asset score the same keys. Cut the same time slices into flushes any
way (one slice per flush as a live PDC read, many as a replay tick): the alerts, the
statistics and the key order must not change, and each flush must equal ``process``
over every score in ``(window end, stream, item, row)`` order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepipe.core import Alert, Score, ScoreBatch, Severity
from edgepipe.pipeline import AlertConfig, AlertEngine

MS = 1_000_000
STREAMS = (("pmu_a", "bay1"), ("pmu_b", "bay1"), ("pmu_c", "bay2"))
KINDS = ("uv", "of")

# One time slice: per stream, per kind, a verdict (0 neutral, 1 active, 2 clear) and the
# offset of the score's own event time inside the window (a rule dates the crossing).
verdicts = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 300)), min_size=6, max_size=6)
slices = st.lists(verdicts, min_size=1, max_size=40)
configs = st.builds(
    AlertConfig,
    min_hold_ns=st.sampled_from([0, 100 * MS, 400 * MS]),
    raise_after=st.integers(1, 3),
    flap_window_ns=st.sampled_from([0, 3000 * MS]),
    max_raises=st.integers(0, 2),
)


def _score(stream: int, kind: str, end: int, verdict: int, back_ms: int) -> Score:
    name, asset = STREAMS[stream]
    t = end - back_ms * MS
    return Score(name, asset, kind, Severity.WARNING, float(verdict), verdict == 1,
                 verdict == 2, f"rules/{kind}", t, end - 500 * MS, end, {"end": end})  # fmt: skip


def _items(spec: list[list[tuple[int, int]]], t0: int) -> list[ScoreBatch | list[Score]]:
    """Items as the router makes them: per detector (kind), stream by stream."""
    items: list[ScoreBatch | list[Score]] = []
    for j, kind in enumerate(KINDS):
        made = [
            _score(s, kind, t0 + i * 50 * MS, *spec[i][2 * s + j])
            for s in range(len(STREAMS))
            for i in range(len(spec))
        ]
        if j == 0:
            active = np.array([x.active for x in made], dtype=np.bool_)
            items.append(ScoreBatch(kind, f"rules/{kind}", [x.asset for x in made], active,
                                    made.__getitem__))  # fmt: skip
        else:
            items.append(made)
    return items


def _run(
    config: AlertConfig, spec: list[list[tuple[int, int]]], cuts: list[int]
) -> tuple[list[Alert], AlertEngine]:
    engine, alerts, lo = AlertEngine("s", config), [], 0
    for hi in [*sorted(set(cuts)), len(spec)]:
        if hi > lo:
            alerts += engine.process_flush(_items(spec[lo:hi], lo * 50 * MS))
            lo = hi
    return alerts, engine


@settings(max_examples=200, deadline=None)
@given(configs, slices, st.lists(st.integers(1, 39), max_size=6))
def test_alerts_do_not_depend_on_how_slices_are_cut_into_flushes(
    config: AlertConfig, spec: list[list[tuple[int, int]]], cuts: list[int]
) -> None:
    one, engine = _run(config, spec, [])  # a replay tick holding it all
    each = _run(config, spec, list(range(1, len(spec))))  # live: one slice per flush
    some = _run(config, spec, cuts)  # ticks of any size
    for alerts, other in (each, some):
        assert alerts == one
        assert other.statistics() == engine.statistics()
        assert other.active_alerts() == engine.active_alerts()


@settings(max_examples=200, deadline=None)
@given(configs, slices)
def test_process_flush_is_process_of_every_score_in_window_order(
    config: AlertConfig, spec: list[list[tuple[int, int]]]
) -> None:
    items = _items(spec, 0)
    rows = [
        (s.window_end_ns, s.stream, i, k, s)
        for i, item in enumerate(items)
        for k, s in enumerate(item.scores() if isinstance(item, ScoreBatch) else item)
    ]
    rows.sort(key=lambda r: r[:4])
    every, flush = AlertEngine("s", config), AlertEngine("s", config)
    assert flush.process_flush(items) == every.process(r[4] for r in rows)
    assert flush.statistics() == every.statistics()
    assert flush.active_alerts() == every.active_alerts()
