"""Windows: event-time alignment independent of the start, gaps as gap rows."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.core import ConfigError, Quality, SampleBatch
from edgepipe.core.tables import from_mapping
from edgepipe.pipeline.testing import T0_NS, pmu_batch, pmu_info
from edgepipe.pipeline.windows import WindowConfig, Windower, frame_index

INFO = pmu_info(rate_hz=30.0)
CFG = WindowConfig(length=10, hop=5)


def run(batches: list[SampleBatch]) -> list[tuple[int, int, bytes]]:
    w = Windower(INFO, CFG)
    out = []
    for b in batches:
        for win in w.push(b):
            assert len(win) == CFG.length
            out.append((win.start_ns, win.end_ns, win.values.tobytes()))
    return out


def chunks(batch: SampleBatch, sizes: list[int]) -> list[SampleBatch]:
    out, i = [], 0
    for n in sizes:
        s = slice(i, i + n)
        out.append(SampleBatch(batch.stream, batch.times_ns[s], batch.values[s], batch.quality[s]))
        i += n
    return out


def test_windows_end_on_hop_multiples_of_the_frame_index() -> None:
    wins = Windower(INFO, CFG).push(pmu_batch(INFO, 40, start_frame=3))
    ends = frame_index(np.array([w.end_ns for w in wins]), INFO.rate_hz) - frame_index(
        np.array([T0_NS]), INFO.rate_hz
    )
    assert ends.tolist() == [15, 20, 25, 30, 35, 40 - 1 + 3 - 2]  # 42 is the last frame
    assert all(int(e) % 5 == 0 for e in ends)


def test_live_and_replay_from_different_starts_emit_identical_windows() -> None:
    full = pmu_batch(INFO, 120, v_pu=1 + 0.01 * np.sin(np.arange(120)))
    live = run(chunks(full, [1] * 120))  # one frame per call, from frame 0
    late = SampleBatch(full.stream, full.times_ns[17:], full.values[17:], full.quality[17:])
    replay = run(chunks(late, [7, 50, 3, 43]))  # starts at frame 17, odd batch sizes
    assert replay and set(replay) <= set(live)
    assert replay == live[-len(replay) :]


def test_missing_frames_become_gap_rows_with_invalid_quality() -> None:
    b = pmu_batch(INFO, 30)
    keep = np.ones(30, dtype=bool)
    keep[[21, 22, 23]] = False
    holed = SampleBatch(b.stream, b.times_ns[keep], b.values[keep], b.quality[keep])
    w = Windower(INFO, CFG)
    wins = w.push(holed)
    last = wins[-1]  # frames 16..25 (boundary 30 has not passed yet)
    assert len(last) == 10
    gap = np.isnan(last.values).all(axis=1)
    assert gap.tolist() == [False] * 5 + [True] * 3 + [False] * 2
    assert (last.quality[gap] == Quality.INVALID).all()
    assert (np.diff(last.times_ns) > 0).all()
    assert last.times_ns[5:8].tolist() == b.times_ns[21:24].tolist()  # nominal frame times
    assert w.statistics().gap_windows == 1


def test_a_late_frame_is_a_gap_not_a_rewrite() -> None:
    b = pmu_batch(INFO, 30)
    order = [*range(0, 20), *range(21, 30), 20]
    w = Windower(INFO, CFG)
    for i in order:
        w.push(
            SampleBatch(b.stream, b.times_ns[i : i + 1], b.values[i : i + 1], b.quality[i : i + 1])
        )
    s = w.statistics()
    assert s.ring.out_of_order == 1 and s.gap_windows == 2


def test_a_long_outage_emits_no_empty_windows() -> None:
    b = pmu_batch(INFO, 2000)
    w = Windower(INFO, CFG)
    first = w.push(SampleBatch(b.stream, b.times_ns[:20], b.values[:20], b.quality[:20]))
    later = w.push(SampleBatch(b.stream, b.times_ns[1990:], b.values[1990:], b.quality[1990:]))
    assert [len(x) for x in first + later] == [10] * len(first + later)
    # Boundaries 20 and 25 hold the first chunk's tail (gap rows up to the boundary),
    # 1990 and 1995 the new rows; the ~390 boundaries between hold nothing: only counted.
    assert [
        frame_index(np.array([x.end_ns]), 30.0)[0] - frame_index(np.array([T0_NS]), 30.0)[0]
        for x in later
    ] == [20, 25, 1990, 1995]
    assert w.statistics().empty > 300


def test_window_config_is_validated_by_key() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.window\.hop"):
        from_mapping(WindowConfig, {"length": 10, "hop": 0}, "pipeline.window")
    with pytest.raises(ConfigError, match=r"pipeline\.window\.site_hold_ms"):
        from_mapping(WindowConfig, {"site_hold_ms": -5}, "pipeline.window")
    with pytest.raises(ConfigError, match=r"pipeline\.window\.lenght: unknown key"):
        from_mapping(WindowConfig, {"lenght": 10}, "pipeline.window")
    with pytest.raises(ConfigError, match="integer"):
        from_mapping(WindowConfig, {"length": "10"}, "w")
    assert from_mapping(WindowConfig, {"length": 60}, "w") == WindowConfig(length=60)
