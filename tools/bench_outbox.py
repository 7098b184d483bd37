"""Benchmarks of alert delivery: durable outbox writes, drain to mosquitto, added latency.

    .venv/bin/python tools/bench_outbox.py [--alerts 100000] [--drain 50000] [--seconds 10]

1. Durable write rate: alerts through ``Forwarder.submit_alert`` -> grouped commits
   (WAL, synchronous=FULL) until the commit returned; and ``Outbox.append`` alone.
2. Drain rate: a pre-filled outbox delivered to a local mosquitto (PUBACK for every
   message, rows deleted), ``drain_rate`` unlimited, ``max_inflight`` 1000.
3. Added latency at 100 alerts/s: raise -> subscriber, through the outbox, minus the same
   path publishing directly with ``MqttPublisher`` (no outbox); p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from edgepipe.core import Alert, AlertState, Severity, SystemClock
from edgepipe.delivery import (
    BrokerConfig,
    Destination,
    Forwarder,
    MessageSubscriber,
    MosquittoBroker,
    MqttPublisher,
    NewMessage,
    Outbox,
    OutboxConfig,
    Priority,
    alert_to_json,
)

SITE = "bench"
CLOCK = SystemClock()


def alert(n: int, t_ns: int = 0) -> Alert:
    t = t_ns or 1_795_694_400_000_000_000 + n
    return Alert(
        id=f"bench-{n}", site=SITE, asset=f"PMU{n % 16}", stream="sim/1", kind="undervoltage",
        severity=Severity.CRITICAL, state=AlertState.RAISED, event_time_ns=t, score=0.46,
        model="rules/undervoltage", window_start_ns=t - 200_000_000, window_end_ns=t,
        evidence={"feature": "v_pu_min", "value": 0.46, "raise_threshold": 0.9,
                  "clear_threshold": 0.95, "unit": "pu"},
    )  # fmt: skip


def config(d: str, **kw: float) -> OutboxConfig:
    return OutboxConfig(path=str(Path(d) / "outbox.sqlite"), **kw)  # type: ignore[arg-type]


async def bench_writes(n: int) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        cfg = config(d)
        fw = Forwarder(Outbox(cfg, CLOCK), [], cfg, SITE, CLOCK)
        task = asyncio.create_task(fw.run())
        alerts = [alert(i) for i in range(n)]
        await asyncio.sleep(0.2)
        t = time.perf_counter()
        for i, a in enumerate(alerts):
            fw.submit_alert(a)
            if i % 2000 == 1999:
                await asyncio.sleep(0)  # the pipeline hands over alerts between windows
        while fw.stats.committed < n:  # noqa: ASYNC110 - polling a counter, 1 ms resolution
            await asyncio.sleep(0.001)
        dt = time.perf_counter() - t
        commits = fw.outbox.stats.commits
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fw.close()
    print(f"durable write (submit -> committed, synchronous=FULL): {n / dt:,.0f} alerts/s "
          f"({n} alerts, {commits} commits, {dt:.2f} s)")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        rows = [NewMessage("edgepipe/bench/alerts/PMU1/undervoltage", alert_to_json(a),
                           Priority.CRITICAL, 0, True) for a in alerts]  # fmt: skip
        with Outbox(config(d), CLOCK) as ob:
            t = time.perf_counter()
            for i in range(0, n, 2000):
                ob.append(rows[i : i + 2000])
            dt = time.perf_counter() - t
    print(f"Outbox.append alone, batches of 2000: {n / dt:,.0f} alerts/s")


async def bench_drain(n: int, broker: MosquittoBroker) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        cfg = config(d, drain_rate=1e9)
        with Outbox(cfg, CLOCK) as ob:
            for i in range(0, n, 2000):
                ob.append([NewMessage(f"edgepipe/{SITE}/alerts/PMU{j % 16}/undervoltage",
                                      alert_to_json(alert(j)), Priority.CRITICAL, 0, True)
                           for j in range(i, min(n, i + 2000))])  # fmt: skip
        pub = MqttPublisher(BrokerConfig(port=broker.port, max_inflight=1000), SITE, CLOCK)
        fw = Forwarder(Outbox(cfg, CLOCK), [Destination("local", pub)], cfg, SITE, CLOCK)
        t = time.perf_counter()
        task = asyncio.create_task(fw.run())
        while fw.stats.delivered < n:  # noqa: ASYNC110 - polling a counter, 5 ms resolution
            await asyncio.sleep(0.005)
        dt = time.perf_counter() - t
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fw.close()
    print(f"drain to local mosquitto (PUBACK each, QoS 1): {n / dt:,.0f} alerts/s "
          f"({n} alerts in {dt:.2f} s incl. connect)")  # fmt: skip


async def latencies(broker: MosquittoBroker, seconds: float, via_outbox: bool) -> list[float]:
    sub = MessageSubscriber(BrokerConfig(port=broker.port), [f"edgepipe/{SITE}/alerts/#"], 100_000)
    await sub.start()
    pub = MqttPublisher(BrokerConfig(port=broker.port, client_id="bench-pub"), SITE, CLOCK)
    out: list[float] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        cfg = config(d)
        fw = Forwarder(Outbox(cfg, CLOCK), [Destination("local", pub)], cfg, SITE, CLOCK)
        task = asyncio.create_task(fw.run()) if via_outbox else None
        if not via_outbox:
            await pub.start()
        await pub.wait_connected(5.0)
        await asyncio.sleep(0.5)

        async def receive() -> None:
            async for msg in sub:
                if not msg.retain:
                    sent = json.loads(msg.payload)["event_time_ns"]
                    out.append((time.time_ns() - sent) / 1e6)

        rx = asyncio.create_task(receive())
        n = int(seconds * 100)
        for i in range(n):
            a = alert(i, time.time_ns())
            if via_outbox:
                fw.submit_alert(a)
            else:
                asyncio.create_task(pub.publish_alert(a))  # noqa: RUF006 - awaited below
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        rx.cancel()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await fw.close()
        else:
            await pub.close()
    await sub.close()
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1]


async def bench_latency(broker: MosquittoBroker, seconds: float) -> None:
    direct = await latencies(broker, seconds, via_outbox=False)
    outbox = await latencies(broker, seconds, via_outbox=True)
    for name, v in (("direct publish", direct), ("through outbox", outbox)):
        print(f"raise -> subscriber at 100 alerts/s, {name}: n={len(v)} "
              f"p50 {pct(v, 50):.2f} ms, p99 {pct(v, 99):.2f} ms, max {max(v):.2f} ms")  # fmt: skip
    print(f"latency added by the outbox: p50 {pct(outbox, 50) - pct(direct, 50):.2f} ms, "
          f"p99 {pct(outbox, 99) - pct(direct, 99):.2f} ms")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    where = os.environ.get("BENCH_DIR") or tempfile.gettempdir()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, outbox dir {where}")  # fmt: skip
    await bench_writes(args.alerts)
    with MosquittoBroker(extra_config=("max_queued_messages 0",)) as broker:
        await bench_drain(args.drain, broker)
        await bench_latency(broker, args.seconds)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=100_000)
    p.add_argument("--drain", type=int, default=50_000)
    p.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(p.parse_args()))
