"""Asset health end to end: simulators -> edgepipe run -> real mosquitto -> a subscriber.

The Modbus transformer simulator plays "cooling failure" and the OPC-UA DGA simulator
"arcing"; the subscriber must get a ``cooling_failure`` alert, a Duval D1/D2 alert, and
the retained health index of the asset. Both simulators run their plants fast
(``time_scale``) so that hours of oil physics pass in seconds.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from adapters.modbus.profile import parse_profile
from adapters.modbus.simulator import ModbusSimulator
from adapters.opcua.simulator import OpcuaSimulator
from edgepipe.app.config import parse_config
from edgepipe.app.modbus_commands import DEFAULT_PROFILE, transformer_values
from edgepipe.app.opcua_commands import DGA_NAMES
from edgepipe.app.service import Service
from edgepipe.core import SystemClock
from edgepipe.delivery import BrokerConfig, MessageSubscriber
from edgepipe.delivery.broker import MosquittoBroker, free_port
from edgepipe.pipeline.health import DgaPlant

pytestmark = pytest.mark.integration

SITE = "health-e2e"
TIME_SCALE = 1200.0  # 20 model minutes per second


def _profile(tmp_path: Path) -> Path:
    """The shipped transformer profile, polled at 10 Hz with the simulator's time scale."""
    text = DEFAULT_PROFILE.read_text(encoding="utf-8")
    text = text.replace("poll_interval_s = 1.0", "poll_interval_s = 0.1")
    text = text.replace("time_scale = 1.0 ", f"time_scale = {TIME_SCALE} ")
    path = tmp_path / "transformer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _config(modbus_port: int, opcua_port: int, mqtt_port: int, tmp: Path) -> dict[str, object]:
    nodes = {n.lower(): f"/Objects/2:DGA/2:{n}" for n in DGA_NAMES}
    return {
        "site": SITE,
        "sources": {
            "tx": {"type": "modbus", "url": f"tcp://127.0.0.1:{modbus_port}",
                   "profile": str(_profile(tmp)), "asset": "T1", "reconnect_max_s": 0.5},
            "dga": {"type": "opcua", "url": f"opc.tcp://127.0.0.1:{opcua_port}/",
                    "kind": "dga", "asset": "T1", "publishing_interval_ms": 100,
                    "sampling_interval_ms": 50, "nodes": nodes,
                    "params": {"time_scale": 3600.0}},
        },
        "windows": {"length": 12, "hop": 2},
        "mqtt": {"port": mqtt_port, "ack_timeout_s": 2.0},
        "outbox": {"path": str(tmp / "outbox.sqlite")},
    }  # fmt: skip


async def test_cooling_failure_and_arcing_reach_the_subscriber(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    profile_path = _profile(tmp_path)
    profile = parse_profile(tomllib.loads(profile_path.read_text(encoding="utf-8")))
    values = transformer_values(profile, "cooling_failure", None, event_at_s=1200.0)
    modbus = ModbusSimulator(profile, values, port=free_port())
    plant = DgaPlant("arcing", time_scale=3600.0)
    opcua_port = free_port()
    opcua = OpcuaSimulator(
        DGA_NAMES, lambda t: {k.upper(): v for k, v in plant.values(t).items()},
        port=opcua_port, period_s=0.1,
    )  # fmt: skip
    topics = [f"edgepipe/{SITE}/alerts/#", f"edgepipe/{SITE}/health/T1"]
    sub = MessageSubscriber(BrokerConfig(port=mosquitto.port), topics)
    await modbus.start()
    await opcua.start()
    await sub.start()
    config = parse_config(_config(modbus.port, opcua_port, mosquitto.port, tmp_path))
    service = Service(config, SystemClock())
    task = asyncio.create_task(service.run())
    alerts: dict[tuple[str, str], dict[str, object]] = {}
    health: dict[str, object] = {}
    try:
        async with asyncio.timeout(40):
            arcing = (("dga_d1", "raised"), ("dga_d2", "raised"))
            while not (
                ("cooling_failure", "raised") in alerts
                and health
                and any(k in alerts for k in arcing)
            ):
                got = await sub.receive()
                doc = json.loads(got.payload)
                if "/health/" in got.topic:
                    health = doc
                else:
                    alerts[(doc["kind"], doc["state"])] = doc
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sub.close()
        await modbus.stop()
        await opcua.stop()

    cooling = alerts[("cooling_failure", "raised")]
    assert cooling["asset"] == "T1" and cooling["stream"] == "tx/1"
    assert float(cooling["evidence"]["top_oil_residual_k"]) > 5.0  # type: ignore[index]
    dga = alerts.get(("dga_d2", "raised")) or alerts[("dga_d1", "raised")]
    assert dga["evidence"]["diagnosis"] in ("D1", "D2")  # type: ignore[index]
    assert dga["stream"] == "dga"
    assert health["asset"] == "T1" and 0.0 <= float(health["index"]) <= 100.0  # type: ignore[arg-type]
    assert "hot_spot" in health["factors"] or "dga" in health["factors"]  # type: ignore[operator]
    # Nothing in the healthy part of the run (before the fans failed) raised an alarm.
    assert ("hot_spot", "raised") not in alerts
