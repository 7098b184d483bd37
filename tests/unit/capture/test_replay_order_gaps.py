"""Two PMUs of one asset, one of them missing frames: the replay's alerts do not depend on
the tick.

A window whose last frame never arrived is due only when a later row arrives. A live
PDC read (one frame of both PMUs) hands the engine the other PMU's window of that time
first; a replay tick of a second holds both, so the flush must order such a window by
the row that completed it, not by its end, or the shared keys see another sequence.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest

from edgepipe.app.config import AppConfig
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import Capture, CaptureConfig, CaptureWriter, read_capture
from edgepipe.core import Alert, SampleBatch, VirtualClock
from edgepipe.pipeline import AlertConfig, WindowConfig
from edgepipe.pipeline.testing import T0_NS, V_BASE, pmu_batch, pmu_info

NS = 1_000_000_000
FRAMES = 900  # 15 s at 60 frames/s


def _capture(seed: int, out: Path) -> Capture:
    """Frame by frame as a PDC delivers them; sags on both PMUs; 60 frames of ``a`` lost."""
    rng = np.random.default_rng(seed)
    infos = [pmu_info(f"pdc/{s}", "bay", v_nominal=V_BASE) for s in "ab"]
    batches = []
    for info in infos:
        v = 1.0 + 0.002 * rng.standard_normal(FRAMES)
        for _ in range(4):
            at = int(rng.integers(100, 800))
            v[at : at + int(rng.integers(3, 30))] = rng.uniform(0.3, 0.85)
        batches.append(pmu_batch(info, FRAMES, v_pu=v))
    lost = set(rng.choice(FRAMES, 60, replace=False).tolist())
    w = CaptureWriter(CaptureConfig(dir=str(out)), VirtualClock(T0_NS), "s")
    w.open()
    for info in infos:
        w.on_stream(info)
    seq = 0
    for k in range(FRAMES):
        for j, b in enumerate(batches):
            if j == 0 and k in lost:
                continue
            seq += 1
            rows = slice(k, k + 1)
            w.append(SampleBatch(b.stream, b.times_ns[rows], b.values[rows], b.quality[rows]), seq)
    w.close()
    return read_capture(out)


def _alerts(capture: Capture, tick_ns: int) -> list[Alert]:
    config = AppConfig(
        site="s",
        sources=(),
        windows=WindowConfig(length=12, hop=1),
        alerts=AlertConfig(min_hold_ns=100_000_000),
    )
    options = ReplayOptions(tick_ns=tick_ns)
    return asyncio.run(run_replay(capture, config, options, io.StringIO())).alerts


@pytest.mark.parametrize("seed", [0, 3])
def test_lost_frames_do_not_make_alerts_depend_on_the_tick(seed: int, tmp_path: Path) -> None:
    capture = _capture(seed, tmp_path / "c")
    frame_by_frame = _alerts(capture, NS // 60)  # one PDC frame per tick, as live
    assert {a.stream for a in frame_by_frame} == {"pdc/a", "pdc/b"}
    assert any(a.kind == "undervoltage" for a in frame_by_frame)
    for tick_ns in (NS // 20, NS // 3, NS, 20 * NS):
        assert _alerts(capture, tick_ns) == frame_by_frame, tick_ns
