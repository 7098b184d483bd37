"""A live run for the record/replay tests: the PMU simulator over real TCP, `edgepipe
run`'s Service reading it with recording on, for a few seconds of wall time."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.c37118.scenario import Scenario
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.app.config import parse_config
from edgepipe.app.service import Service
from edgepipe.core import SystemClock

RATE = 60
NOMINAL_LL = 230e3
RUN_S = 7.0


def pmu_config(
    port: int, tmp: Path, *, site: str, source: str, hop: int, min_hold_ns: int
) -> dict[str, Any]:
    """One PMU source at ``port``, 12-frame windows, outbox and capture under ``tmp``."""
    return {
        "site": site,
        "sources": {
            source: {
                "type": "pmu",
                "url": f"tcp://127.0.0.1:{port}",
                "idcode": 1,
                "nominal_voltage": NOMINAL_LL / math.sqrt(3),
            }
        },
        "windows": {"length": 12, "hop": hop},
        "alerts": {"min_hold_ns": min_hold_ns},
        "outbox": {"path": str(tmp / "outbox.sqlite")},
        "capture": {"dir": str(tmp / "capture"), "flush_s": 0.5},
    }


async def run_live(
    config_for: Callable[[int], dict[str, Any]],
    scenario: Scenario,
    *,
    n_pmus: int = 2,
    stations: tuple[str, ...] | None = None,
) -> list[str]:
    """The Service's stdout alert lines of a ``RUN_S`` live run against the simulator;
    ``config_for(port)`` gives the service config for the simulator's port."""
    sim = PmuSimulator(
        SimulatorConfig(port=0, n_pmus=n_pmus, rate_hz=RATE, scenario=scenario, stations=stations)
    )
    await sim.start()
    out = io.StringIO()
    service = Service(parse_config(config_for(sim.port)), SystemClock(), out)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(RUN_S)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
    return out.getvalue().splitlines()
