"""PMU simulator over TCP -> pipeline -> real mosquitto -> a subscriber (issue: acceptance).

The simulator plays a scripted three-phase fault sag; a subscriber on the broker must
receive the raise and the clear of it, with every documented field right, within 1 s of
the fault's event time.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import jsonschema
import pytest

from adapters.c37118.scenario import fault_sag, synthesize
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.app.config import parse_config
from edgepipe.app.service import Service
from edgepipe.core import AlertState, Severity, SystemClock
from edgepipe.delivery import (
    AlertSubscriber,
    BrokerConfig,
    alert_from_json,
    alert_schema,
    alert_to_dict,
    parse_rfc3339_ns,
)
from edgepipe.delivery.broker import MosquittoBroker
from edgepipe.pipeline.alerts import alert_id

pytestmark = pytest.mark.integration

RATE = 60
FAULT_AT_S = 2.0
FAULT_CYCLES = 6
NOMINAL_LL = 230e3
SITE = "e2e-site"


def _config(pmu_port: int, mqtt_port: int, outbox_path: str) -> dict[str, object]:
    return {
        "site": SITE,
        "sources": {
            "feeder": {
                "type": "pmu",
                "url": f"tcp://127.0.0.1:{pmu_port}",
                "idcode": 1,
                "nominal_voltage": NOMINAL_LL / math.sqrt(3),
            }
        },
        "windows": {"length": 12, "hop": 1},
        "alerts": {"min_hold_ns": 200_000_000},
        "mqtt": {"port": mqtt_port, "ack_timeout_s": 2.0},
        "outbox": {"path": outbox_path},
    }


async def test_fault_sag_raises_and_clears_at_the_subscriber(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    scenario = synthesize(
        1, RATE, 10.0, [fault_sag(FAULT_AT_S, cycles=FAULT_CYCLES, depth_pu=0.4)],
        seed=3, nominal_v=NOMINAL_LL,
    )  # fmt: skip
    sim = PmuSimulator(SimulatorConfig(port=0, n_pmus=1, rate_hz=RATE, scenario=scenario))
    await sim.start()
    subscriber = AlertSubscriber(BrokerConfig(port=mosquitto.port), site=SITE)
    await subscriber.start()
    config = _config(sim.port, mosquitto.port, str(tmp_path / "outbox.sqlite"))
    service = Service(parse_config(config), SystemClock())
    task = asyncio.create_task(service.run())
    received: dict[tuple[str, str], tuple[dict[str, object], int]] = {}
    try:
        async with asyncio.timeout(FAULT_AT_S + 8):
            while ("undervoltage", "cleared") not in received:
                got = await subscriber.receive()
                arrival_ns = time.time_ns()
                doc = json.loads(got.message.payload)
                received[(doc["kind"], doc["state"])] = (doc, arrival_ns)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await subscriber.close()
        await sim.stop()

    fault_ns = sim.frame_time_ns(sim.k0) + int(FAULT_AT_S * 1e9)
    fault_end_ns = fault_ns + FAULT_CYCLES * 1_000_000_000 // 60
    frame_ns = 1_000_000_000 // RATE
    raised, raised_at = received[("undervoltage", "raised")]
    cleared, cleared_at = received[("undervoltage", "cleared")]

    schema = alert_schema()
    jsonschema.validate(raised, schema)
    jsonschema.validate(cleared, schema)
    # The raise: first frame of the sag, delivered within 1 s of it.
    assert fault_ns <= raised["event_time_ns"] <= fault_ns + 2 * frame_ns
    assert raised_at - fault_ns < 1_000_000_000
    assert parse_rfc3339_ns(str(raised["event_time"])) == raised["event_time_ns"]
    assert raised["site"] == SITE
    assert raised["asset"] == "PMU1"
    assert raised["stream"] == "feeder/2"
    assert raised["severity"] == Severity.CRITICAL.value
    assert raised["state"] == AlertState.RAISED.value
    assert raised["model"] == "rules/undervoltage"
    assert 0.3 < float(raised["score"]) < 0.5  # min per-unit voltage during a 0.4 pu sag
    assert raised["evidence"]["raise_threshold"] == 0.9  # type: ignore[index]
    window = raised["window"]
    assert isinstance(window, dict)
    # 12 rows at 60 frames/s span 11 frame periods (times rounded to the ns).
    assert abs(window["end_ns"] - window["start_ns"] - 11e9 / RATE) <= 1
    assert window["start_ns"] <= raised["event_time_ns"] <= window["end_ns"]
    expected_id = alert_id(SITE, "PMU1", "undervoltage", int(raised["event_time_ns"]))
    assert raised["id"] == expected_id
    # The clear: same episode id, after the sag ended and the hold passed, within 1 s.
    assert cleared["id"] == raised["id"]
    assert cleared["state"] == AlertState.CLEARED.value
    assert cleared["event_time_ns"] >= fault_end_ns
    assert cleared_at - int(cleared["event_time_ns"]) < 1_000_000_000
    assert float(cleared["score"]) > 0.95
    # The ONNX starter model saw it too.
    assert ("pmu_fault", "raised") in received
    # Fields round-trip through the public decoder unchanged.
    assert alert_to_dict(alert_from_json(json.dumps(raised).encode())) == raised
