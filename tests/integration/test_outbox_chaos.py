"""Acceptance: nothing raised is lost while brokers and edgepipe itself keep dying.

Alerts are raised continuously (200/s) by ``outbox_chaos_driver.py``, a real process
running the outbox and the failover chain (local broker first, then a regional one).
Meanwhile the local mosquitto is SIGKILLed and restarted >= 20 times, the regional one
>= 10 times, and the driver >= 5 times. A subscriber on each broker records what
arrives. Checked: every alert whose commit the driver reported reaches at least one
subscriber; per destination and topic the order holds once duplicates are dropped;
every duplicate follows a failure.

The subscribers keep persistent sessions (MQTT 5 Session Expiry) on brokers that save
their state every second, so a message a broker acknowledged while a subscriber was
reconnecting still reaches it. A broker SIGKILLed after its PUBACK but before it wrote
the message to a subscriber loses it (mosquitto saves state only every
``autosave_interval``): the forwarder's resend window (2 s, covering the 1 s
autosave) sends it again to the broker that takes over. So no id may be missing; a
missing one fails the test with the brokers that acknowledged it and the failure
times. Order per topic is checked on first arrivals; an alert a killed broker had
acknowledged and lost, sent again to it later, arrives behind newer ones its subscriber
did get: those are counted and printed (the broker lost it, not the publisher's order).
The backlog drains at 1,000/s so the subscribers keep up.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from edgepipe.delivery import BrokerConfig, MessageSubscriber, MosquittoBroker

pytestmark = pytest.mark.integration

DRIVER = Path(__file__).with_name("outbox_chaos_driver.py")
LOCAL_KILLS = 20
REGIONAL_KILLS = 10
EDGE_KILLS = 5
BROKER_CONF = ("autosave_interval 1", "max_queued_messages 0", "persistent_client_expiration 1h")


@dataclass
class Received:
    """What one subscriber saw, in arrival order: (arrival ns, id, topic, raise ns)."""

    name: str
    items: list[tuple[int, str, str, int]] = field(default_factory=list)


@dataclass
class Driver:
    outbox: Path
    ports: tuple[int, int]
    log: IO[bytes]
    raised: set[str] = field(default_factory=set)
    done: list[str] = field(default_factory=list)
    acks: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        cmd = [sys.executable, str(DRIVER), "--outbox", str(self.outbox),
               "--local", str(self.ports[0]), "--regional", str(self.ports[1]),
               "--run", str(self.runs)]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.ready = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.runs += 1
        threading.Thread(target=self._read, args=(self.proc, self.ready), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            text = line.decode().strip()
            if text.startswith("C "):
                self.raised.add(text[2:])
            elif text.startswith("A "):
                _, alert_id, dest, t = text.split()
                self.acks[alert_id].append((dest, int(t)))
            elif text == "READY":
                ready.set()
            elif text.startswith("DONE"):
                self.done.append(text)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM once the driver handles it: it stops raising and drains."""
        assert self.proc is not None
        assert self.ready.wait(30), "the driver never got ready"
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(40)


def _subscriber(broker: MosquittoBroker, name: str) -> MessageSubscriber:
    cfg = BrokerConfig(port=broker.port, client_id=f"chaos-sub-{name}",
                       reconnect_min_s=0.02, reconnect_max_s=0.1)  # fmt: skip
    return MessageSubscriber(cfg, ["edgepipe/chaos/alerts/#"], 1_000_000, session_expiry_s=3600)


async def _collect(sub: MessageSubscriber, out: Received) -> None:
    async for msg in sub:
        if not msg.retain:  # a retained copy sent on (re)subscribe is state, not news
            body = json.loads(msg.payload)
            out.items.append((time.time_ns(), body["id"], msg.topic, body["event_time_ns"]))


async def _chaos_broker(broker: MosquittoBroker, times: list[int], kills: int, *,
                        gap: tuple[float, float],
                        down: tuple[float, float], rng: random.Random,
                        failures: list[int]) -> None:  # fmt: skip
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*gap))
        failures.append(time.time_ns())
        times.append(failures[-1])
        broker.kill()
        await asyncio.sleep(rng.uniform(*down))
        await asyncio.to_thread(broker.start)


async def _chaos_edge(driver: Driver, rng: random.Random, failures: list[int]) -> None:
    for _ in range(EDGE_KILLS):
        await asyncio.sleep(rng.uniform(6.0, 8.0))
        failures.append(time.time_ns())
        driver.kill()
        await asyncio.sleep(rng.uniform(0.1, 0.6))
        driver.start()


def _key(alert_id: str) -> tuple[int, int]:
    run, n = alert_id[1:].split("-")
    return int(run), int(n)


def _resent_after_failure(acks: list[tuple[str, int]], failures: list[int], t: int) -> bool:
    """A broker acknowledged the alert, then a failure came before ``t``: this arrival is
    the resend window's recovery copy. If the acknowledging broker lost it, it can only
    arrive behind newer alerts its subscriber already has (it cannot be put back in
    place), so no-loss and per-destination order cannot both hold for such alerts."""
    return any(any(a <= f <= t for f in failures) for _d, a in acks)


def _check_order_and_duplicates(
    received: Received, failures: list[int], lost_by_broker: Callable[[str, int], bool]
) -> tuple[int, dict[str, int], int]:
    """Duplicates only after a failure; per topic, first arrivals in raise order, except
    an alert the broker lost (acknowledged, then killed) and got again from the resend
    window: behind the newer ones that its subscriber did get. Those are counted."""
    first: dict[str, int] = {}
    last_by_topic: dict[str, tuple[int, int]] = {}
    duplicates = restored = 0
    for t, alert_id, topic, _raised in received.items:
        if alert_id in first:
            duplicates += 1
            # A duplicate only follows a failure: one happened after (about) the first copy.
            assert any(first[alert_id] - 2_000_000_000 <= f <= t for f in failures), alert_id
            continue
        first[alert_id] = t
        k = _key(alert_id)
        before = last_by_topic.get(topic, (-1, -1))
        if before > k and lost_by_broker(alert_id, t):
            restored += 1
            continue
        assert before < k, (received.name, topic, alert_id, "after", before)
        last_by_topic[topic] = k
    return duplicates, first, restored


@pytest.fixture
def driver_log(tmp_path: Path) -> Iterator[IO[bytes]]:
    with open(tmp_path / "driver.log", "wb") as log:
        yield log


async def test_nothing_is_lost_under_broker_and_edge_crashes(
    tmp_path: Path, driver_log: IO[bytes]
) -> None:
    rng = random.Random(20261126)
    failures: list[int] = []
    kills: dict[str, list[int]] = {"local": [], "regional": []}
    with (
        MosquittoBroker(persistence=True, extra_config=BROKER_CONF) as local,
        MosquittoBroker(persistence=True, extra_config=BROKER_CONF) as regional,
    ):
        got = {"local": Received("local"), "regional": Received("regional")}
        subs = [_subscriber(local, "local"), _subscriber(regional, "regional")]
        for s in subs:
            await s.start()
        collectors = [asyncio.create_task(_collect(s, got[n]))
                      for s, n in zip(subs, got, strict=True)]  # fmt: skip
        driver = Driver(tmp_path / "outbox.sqlite", (local.port, regional.port), driver_log)
        driver.start()
        t0 = time.monotonic()
        await asyncio.gather(
            _chaos_broker(
                local,
                kills["local"],
                LOCAL_KILLS,
                gap=(0.8, 1.6),
                down=(0.1, 1.0),
                rng=rng,
                failures=failures,
            ),
            _chaos_broker(
                regional,
                kills["regional"],
                REGIONAL_KILLS,
                gap=(2.0, 3.5),
                down=(0.2, 1.5),
                rng=rng,
                failures=failures,
            ),
            _chaos_edge(driver, rng, failures),
        )
        chaos_s = time.monotonic() - t0
        await asyncio.sleep(1.0)
        driver.stop()
        await asyncio.sleep(1.5)  # the last PUBACKed messages reach the subscribers
        for c in collectors:
            c.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)
        for s in subs:
            await s.close()

    raised = driver.raised
    dups: dict[str, int] = {}
    restored: dict[str, int] = {}
    firsts: dict[str, dict[str, int]] = {}
    for name, rec in got.items():
        dups[name], firsts[name], restored[name] = _check_order_and_duplicates(
            rec,
            failures,
            lambda i, t: _resent_after_failure(driver.acks.get(i, []), failures, t),
        )
    delivered = set(firsts["local"]) | set(firsts["regional"])
    missing = sorted(raised - delivered, key=_key)
    max_delay_s = _max_delay_s(got)
    print(
        f"\nchaos {chaos_s:.0f} s: raised {len(raised)}, delivered {len(delivered)} "
        f"(local {len(firsts['local'])}, regional {len(firsts['regional'])}), "
        f"duplicates {sum(dups.values())} {dups}, max delay {max_delay_s:.2f} s, "
        f"kills: local {LOCAL_KILLS}, regional {REGIONAL_KILLS}, edgepipe {EDGE_KILLS}, "
        f"driver runs {driver.runs}, final {driver.done}, missing {len(missing)}, "
        f"resent after a failure, arriving behind newer ones {restored}"
    )
    assert driver.done == ["DONE 0"]
    assert len(raised) > 5000
    lost = missing
    if lost:
        when = [f"{f % 10**11 / 1e9:.3f}" for f in sorted(failures)]
        acks = {m: driver.acks.get(m) for m in lost[:5]}
        pytest.fail(f"{len(lost)} alerts lost, first acked as {acks}; failures at {when}")
    assert firsts["local"] and firsts["regional"]


def _max_delay_s(got: dict[str, Received]) -> float:
    """Raise (the alert's event time) to the first arrival anywhere."""
    first: dict[str, int] = defaultdict(lambda: 1 << 62)
    for rec in got.values():
        for t, alert_id, _topic, raised in rec.items:
            first[alert_id] = min(first[alert_id], t - raised)
    return max(first.values(), default=0) / 1e9
