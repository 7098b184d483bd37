"""The site-context model live: a PDC (the PMU simulator, 4 PMUs per frame, real TCP) into
`edgepipe run`'s Service with `pmu_event_site`, recording on; the fault is raised at the
PMU next to it, and the replay of the recording gives the same alerts, every field
included (the site hold groups a moment by data time, not by arrival)."""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from live_pmu import NOMINAL_LL, RATE, pmu_config, run_live

from adapters.c37118.scenario import fault_sag, synthesize
from edgepipe.app.config import parse_config
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import read_capture
from edgepipe.delivery import alert_to_json

pytestmark = pytest.mark.integration

STATIONS = ("near", "mid", "far1", "far2")


def _config(port: int, tmp: Path) -> dict[str, Any]:
    cfg = pmu_config(port, tmp, site="grid", source="pdc", hop=2, min_hold_ns=200_000_000)
    cfg["windows"] = {"length": 30, "hop": 2}
    cfg["models"] = {"enabled": ["pmu_event_site"]}
    return cfg


async def test_the_site_model_raises_at_the_pmu_next_to_the_fault_live_and_in_replay(
    tmp_path: Path,
) -> None:
    events = [
        fault_sag(2.0, cycles=8, depth_pu=0.3, pmus=(0,)),
        fault_sag(2.0, cycles=8, depth_pu=0.8, angle_jump_deg=-3.0, pmus=(1,)),
        fault_sag(2.0, cycles=8, depth_pu=0.92, angle_jump_deg=-1.0, pmus=(2, 3)),
    ]
    scenario = synthesize(4, RATE, 20.0, events, seed=5, nominal_v=NOMINAL_LL)
    config = partial(_config, tmp=tmp_path)
    lines = await run_live(config, scenario, n_pmus=4, stations=STATIONS)
    faults = [json.loads(x) for x in lines if json.loads(x)["kind"] == "pmu_fault"]
    raised = {(a["asset"], a["state"]) for a in faults}
    assert any(asset.endswith("near") for asset, state in raised if state == "raised"), raised
    assert all(a["model"].startswith("pmu_event_site@") for a in faults)
    for a in faults:
        if a["state"] == "raised":
            assert a["evidence"]["probabilities"]["fault"] >= a["evidence"]["thresholds"]["raise"]

    capture = read_capture(tmp_path / "capture")
    out = io.StringIO()
    replay_config = parse_config(_config(0, tmp_path / "replay"))
    result = await run_replay(capture, replay_config, ReplayOptions(), out)
    assert [alert_to_json(a).decode() for a in result.alerts] == lines
    assert result.site_released_late == 0  # every moment scored whole, as live
