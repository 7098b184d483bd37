"""Alerts and status through a real mosquitto: what a subscriber actually receives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import paho.mqtt.publish as paho_publish
import pytest

from edgepipe.core import Alert, AlertState, Severity, SystemClock
from edgepipe.delivery import (
    AlertSubscriber,
    BrokerConfig,
    MessageSubscriber,
    MosquittoBroker,
    MqttPublisher,
    alert_topic,
    status_topic,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
T0 = 1_795_694_400_000_000_000


def config(broker: MosquittoBroker, **over: float) -> BrokerConfig:
    kw: dict[str, float] = {"ack_timeout_s": 2.0, "connect_timeout_s": 2.0}
    kw.update(over)
    return BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5, **kw)  # type: ignore[arg-type]


def episode(site: str) -> tuple[Alert, Alert]:
    raised = Alert(
        id=f"{site}-T1/HV-sag-{T0}",
        site=site,
        asset="T1/HV",
        stream="pmu-7",
        kind="voltage_sag",
        severity=Severity.CRITICAL,
        state=AlertState.RAISED,
        event_time_ns=T0 + 16_666_667,
        score=0.93,
        model="sag-detector@1.2.0",
        window_start_ns=T0 - 10**9,
        window_end_ns=T0 + 16_666_667,
        evidence={"v_pu": 0.71, "phases": ["A", "B"], "n": 60},
        raised_time_ns=T0 + 16_666_667,
    )
    cleared = Alert(
        **{
            **{f: getattr(raised, f) for f in Alert.__dataclass_fields__},
            "state": AlertState.CLEARED,
            "event_time_ns": T0 + 4 * 10**9,
            "score": 0.12,
            "window_start_ns": T0 + 3 * 10**9,
            "window_end_ns": T0 + 4 * 10**9,
            "evidence": {"v_pu": 0.98},
        }
    )
    return raised, cleared


async def test_raise_and_clear_arrive_intact_and_the_clear_stays_retained(
    mosquitto_session: MosquittoBroker,
) -> None:
    cfg = config(mosquitto_session)
    raised, cleared = episode("site-rc")
    async with (
        AlertSubscriber(cfg, site="site-rc") as live,
        MqttPublisher(cfg, "site-rc", SystemClock()) as pub,
    ):
        await pub.publish_alert(raised)
        await pub.publish_alert(cleared)
        first = await live.receive(2.0)
        second = await live.receive(2.0)
    assert (first.alert, second.alert) == (raised, cleared)
    assert first.message.topic == "edgepipe/site-rc/alerts/T1%2FHV/voltage_sag"
    assert first.message.qos == 1
    assert first.message.content_type == "application/json"
    assert ("schema_version", "1.0") in first.message.user_properties

    # A subscriber arriving later learns the current state of the key: cleared.
    async with MessageSubscriber(cfg, [alert_topic("site-rc", "T1/HV", "voltage_sag")]) as late:
        retained = await late.receive(2.0)
        assert retained.retain
        assert json.loads(retained.payload)["state"] == "cleared"
        assert json.loads(retained.payload)["id"] == raised.id


async def test_birth_is_online_retained_and_close_leaves_offline(
    mosquitto_session: MosquittoBroker,
) -> None:
    cfg = config(mosquitto_session)
    pub = MqttPublisher(cfg, "site-birth", SystemClock())
    await pub.start()
    try:
        async with MessageSubscriber(cfg, [status_topic("site-birth")]) as sub:
            msg = await sub.receive(2.0)
            assert msg.retain
            body = json.loads(msg.payload)
            assert (body["state"], body["site"], body["client_id"]) == (
                "online",
                "site-birth",
                "edgepipe-site-birth",
            )
    finally:
        await pub.close()
    async with MessageSubscriber(cfg, [status_topic("site-birth")]) as sub:
        assert json.loads((await sub.receive(2.0)).payload)["state"] == "offline"


PUBLISHER_SCRIPT = """
import asyncio, sys
import structlog
from edgepipe.core import SystemClock
from edgepipe.delivery import BrokerConfig, MqttPublisher

async def main() -> None:
    # Logs to stderr: stdout carries only "ready".
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    pub = MqttPublisher(BrokerConfig(port=int(sys.argv[1])), "site-lwt", SystemClock())
    await pub.start()
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_last_will_offline_after_publisher_is_killed(
    mosquitto_session: MosquittoBroker,
) -> None:
    cfg = config(mosquitto_session)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PUBLISHER_SCRIPT,
        str(mosquitto_session.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
        async with MessageSubscriber(cfg, [status_topic("site-lwt")]) as sub:
            assert json.loads((await sub.receive(2.0)).payload)["state"] == "online"
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            will = await sub.receive(3.0)
            body = json.loads(will.payload)
            assert body["state"] == "offline"
            assert body["detail"] == {"reason": "lost"}
        # ... and it stays the retained status for anyone who looks later.
        async with MessageSubscriber(cfg, [status_topic("site-lwt")]) as sub:
            assert json.loads((await sub.receive(2.0)).payload)["state"] == "offline"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_alert_subscriber_skips_and_counts_a_malformed_message(
    mosquitto_session: MosquittoBroker,
) -> None:
    cfg = config(mosquitto_session)
    raised, _ = episode("site-bad")
    async with (
        AlertSubscriber(cfg, site="site-bad") as sub,
        MqttPublisher(cfg, "site-bad", SystemClock()) as pub,
    ):
        await asyncio.to_thread(
            paho_publish.single,
            "edgepipe/site-bad/alerts/T9/junk",
            b"{not json",
            qos=1,
            hostname="127.0.0.1",
            port=mosquitto_session.port,
        )
        await pub.publish_alert(raised)
        assert await anext(sub) == raised
        assert sub.invalid == 1
