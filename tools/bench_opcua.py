"""OPC-UA benchmark: 20 subscriptions x 500 monitored items at 10 Hz; CPU and RSS.

An asyncua server (the project's ``OpcuaSimulator``) in its own process serves 500
Double variables rewritten every 100 ms with a new SourceTimestamp. This process runs
20 ``OpcuaSource`` instances (20 sessions, one subscription each, publishing and
sampling at 100 ms) over the 500 items and measures, over ``--seconds``: notifications
and rows per second against the ideal (20 x 500 x 10 and 20 x 10), CPU share of one
core and peak RSS.

Usage: ``python tools/bench_opcua.py [--seconds 20] [--subs 20] [--items 500]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from adapters.opcua.client import OpcuaSource  # noqa: E402
from adapters.opcua.config import parse_options  # noqa: E402
from edgepipe.core import SampleBatch, SourceStatus, StreamInfo, SystemClock  # noqa: E402
from edgepipe.delivery.broker import free_port  # noqa: E402


def serve(port: int, items: int, period_s: float) -> None:
    from adapters.opcua.simulator import OpcuaSimulator

    names = [f"V{i:04d}" for i in range(items)]

    async def run() -> None:
        sim = OpcuaSimulator(names, lambda t: {n: t + i for i, n in enumerate(names)},
                             port=port, folder="Bench", period_s=period_s)  # fmt: skip
        async with sim:
            await asyncio.Event().wait()

    asyncio.run(run())


class Sink:
    def __init__(self) -> None:
        self.rows = 0

    def on_stream(self, info: StreamInfo) -> None:
        pass

    def on_batch(self, batch: SampleBatch) -> None:
        self.rows += 1

    def on_status(self, status: SourceStatus) -> None:
        pass


async def measure(port: int, subs: int, items: int, seconds: float) -> None:
    nodes = {f"v{i}": f"ns=2;i={i + 2}" for i in range(items)}  # folder is i=1

    def options(k: int) -> dict[str, object]:
        return {
            "url": f"opc.tcp://127.0.0.1:{port}/",
            "publishing_interval_ms": 100,
            "sampling_interval_ms": 100,
            "queue_size": 1,
            "nodes": nodes,
            "timeout_s": 30,
        }

    sources = [OpcuaSource(parse_options(f"s{k}", options(k)), SystemClock()) for k in range(subs)]
    sink = Sink()
    tasks = [asyncio.create_task(s.run(sink)) for s in sources]
    t_end = time.monotonic() + 60
    while sum(s.stats.sessions for s in sources) < subs and time.monotonic() < t_end:  # noqa: ASYNC110 - polling counters of 20 sources
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # settle: initial values and first publishes
    n0 = sum(s.stats.notifications for s in sources)
    rows0, cpu0, t0 = sink.rows, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    notes = sum(s.stats.notifications for s in sources) - n0
    rows = sink.rows - rows0
    for t in tasks:
        t.cancel()
    await asyncio.wait(tasks, timeout=10)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"opcua: {subs} subscriptions x {items} items at 10 Hz, {wall:.1f} s, "
          f"{sum(s.stats.sessions for s in sources)} sessions up")  # fmt: skip
    print(f"  notifications {notes / wall:.0f}/s (ideal {subs * items * 10}/s), rows "
          f"{rows / wall:.1f}/s (ideal {subs * 10}/s)")  # fmt: skip
    print(f"  CPU {100 * cpu / wall:.1f} % of one core, peak RSS {rss:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument("--items", type=int, default=500)
    args = ap.parse_args(argv)
    port = free_port()
    server = mp.get_context("spawn").Process(target=serve, args=(port, args.items, 0.1))
    server.start()
    try:
        time.sleep(4.0)
        asyncio.run(measure(port, args.subs, args.items, args.seconds))
    finally:
        server.terminate()
        server.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
