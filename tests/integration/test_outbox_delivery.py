"""The forwarder against real brokers: failover and return, PUBACK deadline, pacing,
live-before-backlog, drop reports and the retained status."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgepipe.core import Alert, AlertState, DeliveryError, Severity, SystemClock
from edgepipe.delivery import (
    BrokerConfig,
    Destination,
    Forwarder,
    MessageSubscriber,
    MosquittoBroker,
    MqttPublisher,
    Outbox,
    OutboxConfig,
)

pytestmark = pytest.mark.integration

SITE = "fw"
T0 = 1_795_694_400_000_000_000


def alert(n: int, asset: str = "B1", severity: Severity = Severity.CRITICAL) -> Alert:
    return Alert(
        id=f"fw-{n}", site=SITE, asset=asset, stream="s", kind="k", severity=severity,
        state=AlertState.RAISED, event_time_ns=T0 + n, score=1.0, model="m",
        window_start_ns=T0, window_end_ns=T0 + n, evidence={"pad": "x" * 300},
    )  # fmt: skip


def broker_config(port: int, **kw: Any) -> BrokerConfig:
    base = {"port": port, "ack_timeout_s": 0.5, "connect_timeout_s": 0.5,
            "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}  # fmt: skip
    return BrokerConfig(**(base | kw))


@asynccontextmanager
async def forwarder(
    tmp_path: Path, brokers: list[MosquittoBroker], **kw: Any
) -> AsyncIterator[Forwarder]:
    settings: dict[str, Any] = {"path": str(tmp_path / "o.sqlite"), "down_hold_s": 0.5} | kw
    cfg = OutboxConfig(**settings)
    clock = SystemClock()
    chain = [
        Destination(f"b{i}", MqttPublisher(broker_config(b.port), SITE, clock))
        for i, b in enumerate(brokers)
    ]
    fw = Forwarder(Outbox(cfg, clock), chain, cfg, SITE, clock)
    task = asyncio.create_task(fw.run())
    try:
        yield fw
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fw.close()


@asynccontextmanager
async def subscriber(broker: MosquittoBroker, topic: str) -> AsyncIterator[MessageSubscriber]:
    cfg = BrokerConfig(port=broker.port, reconnect_min_s=0.05, reconnect_max_s=0.2)
    async with MessageSubscriber(cfg, [topic], capacity=100_000) as sub:
        yield sub


async def next_id(sub: MessageSubscriber, timeout_s: float = 10.0) -> str:
    # generous: a failover under a loaded CI machine can take seconds; a pass is not slower
    while True:
        msg = await sub.receive(timeout_s)
        if not msg.retain:
            return str(json.loads(msg.payload)["id"])


async def ids_until(sub: MessageSubscriber, last: str) -> list[str]:
    """Alert ids in order of first arrival, until ``last``. QoS 1 is at least once: a
    resend whose PUBACK was late may arrive twice, and subscribers dedupe by id."""
    seen: list[str] = []
    while not seen or seen[-1] != last:
        i = await next_id(sub)
        if i not in seen:
            seen.append(i)
    return seen


async def connected(fw: Forwarder, i: int) -> None:
    await fw.destinations[i].publisher.wait_connected(5.0)


async def test_failover_to_regional_and_back_to_local(tmp_path: Path) -> None:
    with MosquittoBroker() as local, MosquittoBroker() as regional:
        alerts = f"edgepipe/{SITE}/alerts/#"
        async with (
            subscriber(local, alerts) as at_local,
            subscriber(regional, alerts) as at_regional,
            forwarder(tmp_path, [local, regional]) as fw,
        ):
            await connected(fw, 0)
            await connected(fw, 1)
            fw.submit_alert(alert(1))
            assert await next_id(at_local) == "fw-1"
            local.kill()
            fw.submit_alert(alert(2))
            # fw-1 was acknowledged by the killed broker within the resend window: again.
            assert await ids_until(at_regional, "fw-2") == ["fw-1", "fw-2"]
            local.start()
            await connected(fw, 0)
            fw.submit_alert(alert(3))
            seen = await ids_until(at_local, "fw-3")  # back to the preferred broker
            assert seen == [i for i in ("fw-1", "fw-2", "fw-3") if i in seen]
            assert fw.pending == 0 or await fw.drain(2.0)


async def test_a_broker_that_returns_gets_again_what_it_acknowledged_before_dying(
    tmp_path: Path,
) -> None:
    """Killed right after its PUBACK, the broker lost the alert (no persistence); the
    resend window brings it back (as the topic's retained state, id unchanged)."""
    with MosquittoBroker() as broker:
        async with forwarder(tmp_path, [broker]) as fw:
            await connected(fw, 0)
            fw.submit_alert(alert(1))
            while fw.stats.delivered < 1:
                await asyncio.sleep(0.01)
            broker.kill()
            broker.start()
            async with subscriber(broker, f"edgepipe/{SITE}/alerts/#") as sub:
                msg = await sub.receive(5.0)
                assert json.loads(msg.payload)["id"] == "fw-1"
            assert fw.stats.resent == 1


async def test_acknowledged_rows_are_deleted_past_the_resend_window(tmp_path: Path) -> None:
    with MosquittoBroker() as broker:
        async with forwarder(tmp_path, [broker], resend_window_s=0.3) as fw:
            await connected(fw, 0)
            for n in range(5):
                fw.submit_alert(alert(n))
            assert await fw.drain(3.0)
            assert fw.statistics()["held"] == 5  # delivered, kept for the window
            await asyncio.sleep(0.6)
            assert fw.statistics()["held"] == 0 and fw.outbox.stats.deleted == 5
            assert fw.outbox.read(0, 10) == [] and fw.outbox.bytes == 0


async def test_a_broker_that_stops_acknowledging_is_failed_over(tmp_path: Path) -> None:
    with MosquittoBroker() as local, MosquittoBroker() as regional:
        async with (
            subscriber(regional, f"edgepipe/{SITE}/alerts/#") as at_regional,
            forwarder(tmp_path, [local, regional]) as fw,
        ):
            await connected(fw, 0)
            await connected(fw, 1)
            local.freeze()  # the TCP connection stays up; nothing answers
            try:
                t = time.monotonic()
                fw.submit_alert(alert(7))
                assert await next_id(at_regional) == "fw-7"
                elapsed = time.monotonic() - t
            finally:
                local.thaw()
            assert fw.stats.ack_timeouts == 1
            assert 0.5 <= elapsed < 1.5  # the PUBACK deadline, then at once the next broker


async def test_live_alerts_overtake_a_paced_backlog_but_not_on_their_own_topic(
    tmp_path: Path,
) -> None:
    backlog = 60
    with MosquittoBroker() as broker:
        broker.kill()
        async with forwarder(tmp_path, [broker], drain_rate=40.0) as fw:
            for n in range(backlog):
                fw.submit_alert(alert(n, asset="B1"))
            while fw.outbox.depth < backlog:
                await asyncio.sleep(0.01)
            broker.start()
            async with subscriber(broker, f"edgepipe/{SITE}/alerts/#") as sub:
                t = time.monotonic()
                seen = [await next_id(sub) for _ in range(5)]
                fw.submit_alert(alert(1000, asset="LIVE"))  # a topic without backlog
                fw.submit_alert(alert(1001, asset="B1"))  # must wait behind its backlog
                while len(seen) < backlog + 2:
                    seen.append(await next_id(sub))
                elapsed = time.monotonic() - t
    live = seen.index("fw-1000")
    assert live < 10, seen  # ahead of the other ~55 backlog messages
    assert seen[-1] == "fw-1001"
    assert [s for s in seen if s not in ("fw-1000", "fw-1001")] == [
        f"fw-{n}" for n in range(backlog)
    ]
    assert elapsed > (backlog - 5) / 40.0 * 0.8  # paced at drain_rate, not flooded


async def test_drops_are_reported_once_delivery_works_again(tmp_path: Path) -> None:
    with MosquittoBroker() as broker:
        broker.kill()
        async with forwarder(tmp_path, [broker], max_bytes=65_536) as fw:
            for n in range(300):  # ~250 KB of info alerts: far beyond the cap
                fw.submit_alert(alert(n, asset=f"A{n % 7}", severity=Severity.INFO))
            fw.submit_alert(alert(999, severity=Severity.CRITICAL))
            while fw.stats.committed < 301:
                await asyncio.sleep(0.01)
            dropped = fw.outbox.stats.dropped["info"]
            assert dropped > 150
            broker.start()
            async with (
                subscriber(broker, f"edgepipe/{SITE}/health/outbox_drops") as sub,
                subscriber(broker, f"edgepipe/{SITE}/alerts/B1/k") as critical,
            ):
                report = json.loads((await sub.receive(5.0)).payload)
                assert report["detail"]["dropped"] == {"info": dropped}
                assert await fw.drain(5.0)
                with pytest.raises(DeliveryError, match="no message"):
                    await sub.receive(0.5)  # reported once
                # The critical alert survived (live, or retained if it came first).
                assert json.loads((await critical.receive(3.0)).payload)["id"] == "fw-999"


async def test_status_is_retained_with_outbox_depth_and_oldest_age(tmp_path: Path) -> None:
    with MosquittoBroker() as broker:
        async with forwarder(tmp_path, [broker], status_interval_s=0.2) as fw:
            await connected(fw, 0)
            await asyncio.sleep(0.5)
            async with subscriber(broker, f"edgepipe/{SITE}/status") as sub:
                msg = await sub.receive(2.0)
    status = json.loads(msg.payload)
    assert msg.retain and status["state"] == "online"
    assert status["detail"]["outbox_depth"] == 0
    assert status["detail"]["active"] == "b0"
    assert "oldest_age_s" in status["detail"]


async def test_an_alert_over_the_brokers_packet_limit_is_refused_without_a_reconnect_storm(
    tmp_path: Path,
) -> None:
    # Review finding: sent, an alert over the broker's max_packet_size made mosquitto close
    # the connection, after every reconnect: 164 failures and 92 reconnects in 5 s (each
    # flipping the retained status offline/online), and a log line for each. Now it is
    # refused before sending, against the CONNACK's Maximum Packet Size, and the
    # destination is held off like any broker that rejects a message.
    big = replace(alert(0), evidence={"pad": "x" * 3000})
    with MosquittoBroker(extra_config=("max_packet_size 1000",)) as broker:
        async with forwarder(tmp_path, [broker]) as fw:
            fw.submit_alert(big)
            fw.submit_alert(alert(1))
            await asyncio.sleep(3.0)
            stats = fw.statistics()
            publisher = fw.destinations[0].publisher
            assert publisher.connects == 1 and publisher.max_packet_size == 1000
    assert 1 <= stats["failures"] <= 10 and stats["sent"] == 0 and stats["depth"] == 2
