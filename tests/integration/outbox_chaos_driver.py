"""Raises alerts continuously through the real delivery path (outbox + failover chain).

Run by ``test_outbox_chaos.py`` as a subprocess that the test SIGKILLs and restarts.
Prints ``C <id>`` on stdout for every alert once its outbox commit returned (the point
from which the alert must never be lost). On SIGTERM it stops raising, drains the
outbox, prints ``DONE <pending>`` and exits (``READY`` says the handler is in place).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

import structlog

from edgepipe.core import Alert, AlertState, Severity, SystemClock
from edgepipe.delivery import (
    BrokerConfig,
    Destination,
    Forwarder,
    MqttPublisher,
    Outbox,
    OutboxConfig,
    OutboxMessage,
)

SITE = "chaos"
ASSETS = 5
SEVERITIES = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)


def broker(port: int, name: str) -> BrokerConfig:
    return BrokerConfig(
        port=port,
        client_id=f"chaos-edge-{name}",
        keepalive=5,
        ack_timeout_s=1.0,
        connect_timeout_s=1.0,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
    )


def committed(rows: Sequence[OutboxMessage]) -> None:
    lines = [f"C {json.loads(r.payload)['id']}\n" for r in rows if "/alerts/" in r.topic]
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


def delivered(row: OutboxMessage, destination: str) -> None:
    """Which broker acknowledged which alert, and when (the test's diagnosis of a loss)."""
    if "/alerts/" in row.topic:
        alert_id = json.loads(row.payload)["id"]
        print(f"A {alert_id} {destination} {time.time_ns()}", flush=True)


async def main(args: argparse.Namespace) -> None:
    clock = SystemClock()
    cfg = OutboxConfig(path=args.outbox, drain_rate=1000.0, status_interval_s=1.0,
                       down_hold_s=0.5, resend_window_s=args.resend_window)  # fmt: skip
    chain = [
        Destination(name, MqttPublisher(broker(port, name), SITE, clock))
        for name, port in (("local", args.local), ("regional", args.regional))
    ]
    fw = Forwarder(
        Outbox(cfg, clock), chain, cfg, SITE, clock, on_commit=committed, on_delivered=delivered
    )
    runner = asyncio.create_task(fw.run())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    n = 0
    next_ns = clock.monotonic_ns()
    while not stop.is_set():
        now = clock.time_ns()
        fw.submit_alert(
            Alert(
                id=f"r{args.run:02d}-{n:07d}",
                site=SITE,
                asset=f"A{n % ASSETS}",
                stream="chaos",
                kind="chaos",
                severity=SEVERITIES[n % len(SEVERITIES)],
                state=AlertState.RAISED,
                event_time_ns=now,
                score=float(n),
                model="chaos",
                window_start_ns=now,
                window_end_ns=now,
            )
        )
        n += 1
        next_ns += int(1e9 / args.rate)
        await clock.sleep_until_ns(next_ns)
    await fw.drain(30.0)
    print(f"DONE {fw.pending}", flush=True)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await fw.close()


if __name__ == "__main__":
    # Logs to stderr (the test keeps them in driver.log); stdout is the test's protocol.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    p = argparse.ArgumentParser()
    p.add_argument("--outbox", required=True)
    p.add_argument("--local", type=int, required=True)
    p.add_argument("--regional", type=int, required=True)
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--rate", type=float, default=200.0)
    # Covers the brokers' autosave_interval (1 s) plus the time to notice a failure.
    p.add_argument(
        "--resend-window", type=float, default=float(os.environ.get("CHAOS_RESEND_WINDOW", "1.5"))
    )
    asyncio.run(main(p.parse_args()))
