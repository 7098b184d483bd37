"""Alarm statistics of the model cards (tools/event_metrics.py) on hand-made streams."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from event_metrics import AlarmStats  # noqa: E402
from scenarios.dataset import IGNORE, WindowSet  # noqa: E402
from scenarios.spec import KINDS  # noqa: E402

FAULT, TRIP = KINDS.index("fault"), KINDS.index("line_trip")


def _windows(
    streams: list[tuple[str, int, int, list[int], list[float]]],
) -> tuple[WindowSet, np.ndarray]:
    """(run, kind, event start frame, labels, scores) per stream; windows every 3 frames."""
    cols: dict[str, list[object]] = {f: [] for f in WindowSet.__slots__}
    scores: list[float] = []
    for n, (run, kind, start, labels, score) in enumerate(streams):
        for i, (y, s) in enumerate(zip(labels, score, strict=True)):
            cols["x"].append(np.zeros(1, dtype=np.float32))
            cols["y"].append(y)
            cols["scenario"].append(run)
            cols["case"].append("test")
            cols["bus"].append(n)
            cols["pmu_key"].append(f"{run}/{n}")
            cols["end_frame"].append(30 + 3 * i)
            cols["start_frame"].append(start)
            cols["kind"].append(kind)
            scores.append(s)
    arrays = {f: np.array(v) for f, v in cols.items()}
    return WindowSet(**arrays), np.array(scores)


def test_raises_on_other_kinds_are_counted_per_run_and_stream() -> None:
    ws, score = _windows([
        ("trip-1", TRIP, 36, [0, 0, TRIP, TRIP], [0.1, 0.1, 0.9, 0.2]),  # raises after start
        ("trip-1", TRIP, 36, [0, 0, TRIP, TRIP], [0.1, 0.1, 0.2, 0.1]),  # quiet
        ("trip-2", TRIP, 36, [0, 0, TRIP, TRIP], [0.9, 0.1, 0.1, 0.1]),  # only before start
        ("trip-3", TRIP, 36, [IGNORE] * 4, [0.9] * 4),  # collapsed run: left out
        ("fault-1", FAULT, 36, [0, 0, FAULT, FAULT], [0.1, 0.1, 0.1, 0.8]),
    ])  # fmt: skip
    stats = AlarmStats()
    stats.add_events(ws, score, 0.6, 0.3, {FAULT})
    assert stats.other_text() == "line_trip 1/2 runs (1/3 PMU streams)"
    assert stats.delays == [39 - 36] and stats.events == 1 and stats.missed == 0


def test_no_other_kinds_no_text() -> None:
    ws, score = _windows([("fault-1", FAULT, 33, [0, FAULT, FAULT], [0.1, 0.7, 0.7])])
    stats = AlarmStats()
    stats.add_events(ws, score, 0.6, 0.3, {FAULT})
    assert stats.other_text() == "" and stats.delays == [0]
