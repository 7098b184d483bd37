"""The publisher when the broker dies, hangs or restarts: errors in bounded time, then recovery."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from edgepipe.core import Alert, AlertState, DeliveryError, Severity, SystemClock
from edgepipe.delivery import (
    BrokerConfig,
    MessageSubscriber,
    MosquittoBroker,
    MqttPublisher,
    alert_topic,
    status_topic,
)
from edgepipe.delivery.broker import free_port

pytestmark = pytest.mark.integration

ACK_TIMEOUT_S = 1.0


def config(port: int) -> BrokerConfig:
    return BrokerConfig(
        port=port,
        ack_timeout_s=ACK_TIMEOUT_S,
        connect_timeout_s=1.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )


def alert(n: int = 0) -> Alert:
    return Alert(
        id=f"chaos-{n}",
        site="chaos",
        asset="B2",
        stream="modbus-1",
        kind="breaker_wear",
        severity=Severity.WARNING,
        state=AlertState.RAISED,
        event_time_ns=1_795_694_400_000_000_000 + n,
        score=1.0,
        model="wear-rule",
        window_start_ns=1_795_694_400_000_000_000,
        window_end_ns=1_795_694_400_000_000_000 + n,
        raised_time_ns=1_795_694_400_000_000_000 + n,
    )


async def test_publish_while_broker_is_down_fails_fast(mosquitto: MosquittoBroker) -> None:
    async with MqttPublisher(config(mosquitto.port), "chaos", SystemClock()) as pub:
        mosquitto.kill()
        await asyncio.sleep(0.05)  # paho's thread sees the reset socket
        t = time.monotonic()
        with pytest.raises(DeliveryError, match="not connected"):
            await pub.publish_alert(alert())
        assert time.monotonic() - t < ACK_TIMEOUT_S
        assert pub.failed == 1


async def test_hung_broker_gives_ack_timeout_not_a_hang(mosquitto: MosquittoBroker) -> None:
    async with MqttPublisher(config(mosquitto.port), "chaos", SystemClock()) as pub:
        mosquitto.freeze()
        try:
            t = time.monotonic()
            with pytest.raises(DeliveryError, match="no PUBACK"):
                await pub.publish_alert(alert())
            elapsed = time.monotonic() - t
        finally:
            mosquitto.thaw()
    assert ACK_TIMEOUT_S <= elapsed < ACK_TIMEOUT_S + 0.5


async def test_connection_lost_before_puback_fails_the_waiting_publish(
    mosquitto: MosquittoBroker,
) -> None:
    cfg = BrokerConfig(port=mosquitto.port, ack_timeout_s=10.0, reconnect_min_s=0.1)
    async with MqttPublisher(cfg, "chaos", SystemClock()) as pub:
        mosquitto.freeze()
        pending = asyncio.create_task(pub.publish_alert(alert()))
        await asyncio.sleep(0.2)
        assert not pending.done()
        t = time.monotonic()
        mosquitto.kill()  # SIGKILL works on a stopped process; its sockets reset
        with pytest.raises(DeliveryError, match="lost before PUBACK"):
            await pending
        assert time.monotonic() - t < 2.0  # not the 10 s ack timeout


async def test_publisher_reconnects_after_broker_restart(mosquitto: MosquittoBroker) -> None:
    cfg = config(mosquitto.port)
    async with MqttPublisher(cfg, "chaos", SystemClock()) as pub:
        await pub.publish_alert(alert(1))
        mosquitto.restart()
        t = time.monotonic()
        await pub.wait_connected(5.0)
        reconnect_s = time.monotonic() - t
        await pub.publish_alert(alert(2))
        assert pub.connects == 2
        async with MessageSubscriber(cfg, [alert_topic("chaos", "B2", "breaker_wear")]) as sub:
            assert json.loads((await sub.receive(2.0)).payload)["id"] == "chaos-2"
        async with MessageSubscriber(cfg, [status_topic("chaos")]) as sub:
            assert json.loads((await sub.receive(2.0)).payload)["state"] == "online"
    assert reconnect_s < 2.0


async def test_birth_is_republished_after_a_broker_crash(mosquitto: MosquittoBroker) -> None:
    cfg = config(mosquitto.port)
    async with MqttPublisher(cfg, "chaos", SystemClock()) as pub:
        mosquitto.restart(crash=True)
        await pub.wait_connected(5.0)
        await pub.publish_alert(alert(3))  # the birth went out before this alert
        async with MessageSubscriber(cfg, [status_topic("chaos")]) as sub:
            assert json.loads((await sub.receive(2.0)).payload)["state"] == "online"


async def test_start_without_broker_raises_clear_error() -> None:
    port = free_port()
    pub = MqttPublisher(config(port), "chaos", SystemClock())
    t = time.monotonic()
    with pytest.raises(DeliveryError, match=f"cannot connect to MQTT broker 127.0.0.1:{port}"):
        await pub.start()
    assert time.monotonic() - t < 1.0
    # The caller (the outbox loop) simply calls start() again once a broker is there.
    with MosquittoBroker(port=port):
        await pub.start()
        await pub.publish_alert(alert(4))
        await pub.close()


async def test_start_against_hung_broker_times_out_waiting_for_connack(
    mosquitto: MosquittoBroker,
) -> None:
    mosquitto.freeze()
    try:
        pub = MqttPublisher(config(mosquitto.port), "chaos", SystemClock())
        t = time.monotonic()
        with pytest.raises(DeliveryError, match="no CONNACK"):
            await pub.start()
        assert time.monotonic() - t < 2.0
    finally:
        mosquitto.thaw()
