"""`edgepipe replay` with ``[mqtt]`` in the config publishes to the broker, not stdout."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from adapters.capture.importers import import_pcap
from edgepipe.app.capture_commands import import_to_capture
from edgepipe.app.config import parse_config
from edgepipe.app.replay import ReplayOptions, run_replay
from edgepipe.capture import read_capture
from edgepipe.delivery import AlertSubscriber, BrokerConfig, alert_to_json
from edgepipe.delivery.broker import MosquittoBroker
from edgepipe.delivery.topics import REPLAY_ROOT

pytestmark = pytest.mark.integration

PCAP = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "c37118"
    / "C37.118_4in1PMU_TCP.pcap"
)  # fmt: skip


async def test_replay_publishes_alerts_to_mqtt(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    cap = tmp_path / "cap"
    import_to_capture(cap, {"name": "ref"}, lambda s: import_pcap(PCAP, "ref", s))
    table = {
        "site": "replay-mqtt",
        "sources": {"unused": {"type": "pmu", "url": "tcp://127.0.0.1:9", "idcode": 1}},
        "mqtt": {"port": mosquitto.port, "client_id": "edgepipe-replay-test"},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
    }
    config = parse_config(table)
    subscriber = AlertSubscriber(
        BrokerConfig(port=mosquitto.port), site="replay-mqtt", root=REPLAY_ROOT
    )
    await subscriber.start()
    out = io.StringIO()
    try:
        result = await run_replay(read_capture(cap), config, ReplayOptions(), out)
        assert result.alerts and out.getvalue() == ""  # MQTT, not stdout
        got = []
        deadline = time.monotonic() + 10
        while len(got) < len(result.alerts) and time.monotonic() < deadline:
            got.append((await subscriber.receive(timeout_s=5)).alert)
    finally:
        await subscriber.close()
    assert sorted(alert_to_json(a) for a in got) == sorted(alert_to_json(a) for a in result.alerts)
