"""Alerts of a key fed by two streams do not depend on how the data was batched (issue 6).

Two PMUs of one PDC report for one asset (the same station name), so the rules on both
streams score the same alert keys. Scripted sags hit both at overlapping times. The
live run (the PMU simulator over real TCP, the Service, recording on) hands the pipeline
a few frames of both streams per flush; a replay hands it whole ticks of event time.
Every replay, whatever its tick or speed, must give the live run's alert list: the same
alerts, ids and fields, in the same order.
"""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path

import pytest
from live_pmu import NOMINAL_LL, RATE, pmu_config, run_live

from adapters.c37118.scenario import Event, fault_sag, frequency_excursion, synthesize
from edgepipe.app.config import parse_config
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import read_capture
from edgepipe.delivery import alert_to_json

pytestmark = pytest.mark.integration

MS = 1_000_000
ASSET = "BAY1"
config = partial(pmu_config, site="order-site", source="pdc", hop=1, min_hold_ns=100 * MS)


async def _live(tmp: Path) -> list[str]:
    events: list[Event] = [
        fault_sag(1.5, cycles=8, depth_pu=0.4, pmus=(0,)),
        fault_sag(1.55, cycles=12, depth_pu=0.3, pmus=(1,)),
        fault_sag(3.2, cycles=20, depth_pu=0.35, pmus=(1,)),
        fault_sag(3.25, cycles=6, depth_pu=0.5, pmus=(0,)),
        frequency_excursion(4.0, delta_hz=-0.8, ramp_s=0.5, hold_s=1.0),
    ]
    scenario = synthesize(2, RATE, 20.0, events, seed=5, nominal_v=NOMINAL_LL)
    return await run_live(lambda port: config(port, tmp), scenario, stations=(ASSET,) * 2)


async def test_replays_of_two_streams_on_one_asset_give_the_live_alerts(tmp_path: Path) -> None:
    live = await _live(tmp_path)
    alerts = [json.loads(x) for x in live]
    shared = [a for a in alerts if a["asset"] == ASSET and a["kind"] == "undervoltage"]
    assert {a["stream"] for a in shared} == {"pdc/2", "pdc/3"}  # both streams feed the key
    assert {a["state"] for a in shared} == {"raised", "cleared"}

    capture = read_capture(tmp_path / "capture")
    assert len(capture.parts) == 2
    runs: dict[str, list[str]] = {}
    for i, (tick_ms, speed) in enumerate(
        [(1000, None), (17, None), (50, None), (333, None), (3000, None), (250, 8.0)]
    ):
        replay_config = parse_config(config(0, tmp_path / f"replay{i}"))
        options = ReplayOptions(speed=speed, tick_ns=tick_ms * MS)
        result = await run_replay(capture, replay_config, options, io.StringIO())
        runs[f"tick {tick_ms} ms, speed {speed}"] = [
            alert_to_json(a).decode() for a in result.alerts
        ]
    for name, replayed in runs.items():
        assert replayed == live, name
