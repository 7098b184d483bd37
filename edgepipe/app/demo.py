"""`edgepipe demo`: the whole path on one machine, nothing to configure.

It starts the project's PMU simulator (3 PMUs at 60 frames/s, with a scripted fault sag
8 s in and a frequency excursion 30 s in, repeated every minute), an MQTT broker (the one
answering on 127.0.0.1:1883, else a mosquitto of its own on a free port), the pipeline
with the rules and the starter ONNX model, and a subscriber that prints every alert the
broker delivers to stdout, one JSON object per line.
"""

from __future__ import annotations

__all__ = ["DemoSetup", "add_parser", "demo_config", "run_demo"]

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from adapters.c37118.scenario import fault_sag, frequency_excursion, synthesize
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.app.config import AppConfig, parse_config
from edgepipe.app.service import Service
from edgepipe.core import SystemClock
from edgepipe.delivery import AlertSubscriber, BrokerConfig, MosquittoBroker, broker_answers
from edgepipe.delivery.message import alert_to_json

log = structlog.get_logger("edgepipe.demo")

SITE = "demo"
RATE_HZ = 60
N_PMUS = 3
NOMINAL_LL_V = 230e3
FAULT_AT_S = 8.0
EXCURSION_AT_S = 30.0
PERIOD_S = 60.0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="simulated PMUs -> pipeline -> MQTT, printed")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from edgepipe.app.cli import run_until_signal  # noqa: PLC0415 - cli imports this module

    return run_until_signal(run_demo(args.duration, sys.stdout))


def demo_config(pmu_port: int, mqtt_port: int, outbox_path: str = "") -> AppConfig:
    """The embedded default config: one PMU stream from the simulator, the local broker;
    ``outbox_path`` (a temporary file for the demo) holds alerts until the broker has them."""
    table: dict[str, Any] = {
        "site": SITE,
        "sources": {
            "sim": {
                "type": "pmu",
                "url": f"tcp://127.0.0.1:{pmu_port}",
                "idcode": 1,
                # Phase phasors are line-to-neutral.
                "nominal_voltage": NOMINAL_LL_V / math.sqrt(3),
                "quiet_periods": 30,
            }
        },
        "windows": {"length": 12, "hop": 2},
        "alerts": {"min_hold_ns": 500_000_000},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": "edgepipe-demo"},
        "outbox": {"path": outbox_path, "status_interval_s": 5.0},
    }
    return parse_config(table)


def demo_simulator() -> PmuSimulator:
    scenario = synthesize(
        N_PMUS,
        RATE_HZ,
        PERIOD_S,
        [
            fault_sag(FAULT_AT_S, depth_pu=0.45, pmus=(0, 1)),
            frequency_excursion(EXCURSION_AT_S, delta_hz=-0.7),
        ],
        seed=7,
        nominal_v=NOMINAL_LL_V,
        loop=True,
    )
    config = SimulatorConfig(port=0, n_pmus=N_PMUS, rate_hz=RATE_HZ, scenario=scenario)
    return PmuSimulator(config)


@dataclass(slots=True)
class DemoSetup:
    simulator: PmuSimulator
    broker_port: int
    config: AppConfig


@contextlib.asynccontextmanager
async def demo_setup() -> AsyncIterator[DemoSetup]:
    """Simulator and broker up; yields the config that connects the pipeline to them."""
    own: MosquittoBroker | None = None
    if await asyncio.to_thread(broker_answers, "127.0.0.1", 1883, 0.5):
        port = 1883
        log.info("demo_broker", port=port, started=False)
    else:
        own = await asyncio.to_thread(MosquittoBroker().start)
        port = own.port
        log.info("demo_broker", port=port, started=True, pid=own.pid)
    simulator = demo_simulator()
    await simulator.start()
    log.info("demo_simulator", port=simulator.port, pmus=N_PMUS, rate_hz=RATE_HZ)
    state = tempfile.TemporaryDirectory(prefix="edgepipe-demo-")
    try:
        outbox = str(Path(state.name) / "outbox.sqlite")
        yield DemoSetup(simulator, port, demo_config(simulator.port, port, outbox))
    finally:
        state.cleanup()
        await simulator.stop()
        if own is not None:
            await asyncio.to_thread(own.stop)


async def run_demo(duration_s: float | None, out: TextIO) -> int:
    async with demo_setup() as setup:
        subscriber = AlertSubscriber(BrokerConfig(port=setup.broker_port), site=SITE)
        await subscriber.start()
        service = Service(setup.config, SystemClock())
        printer = asyncio.create_task(_print_alerts(subscriber, out))
        try:
            async with asyncio.timeout(duration_s):
                await service.run()
        except TimeoutError:
            pass
        finally:
            await asyncio.sleep(0.3)  # let the last deliveries reach the subscriber
            printer.cancel()
            await asyncio.gather(printer, return_exceptions=True)
            await subscriber.close()
    return 0


async def _print_alerts(subscriber: AlertSubscriber, out: TextIO) -> None:
    while True:
        received = await subscriber.receive()
        if received.message.retain:
            continue  # the state an earlier run left on the broker, not news
        out.write(alert_to_json(received.alert).decode() + "\n")
        out.flush()
