"""A disk that refuses writes: the forwarder logs, keeps the alerts in memory, keeps running.

The write failure is real: the child process gets a file-size limit (RLIMIT_FSIZE), so
the kernel refuses to grow the outbox files (EFBIG, which SQLite reports as a disk I/O
error). A full disk (ENOSPC -> "database or disk is full") is the hard-cap path, tested
in test_outbox_store.py with SQLite's own page limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import asyncio, json, resource, signal, sys
import structlog
from edgepipe.core import Alert, AlertState, Severity, SystemClock
from edgepipe.delivery import Forwarder, Outbox, OutboxConfig

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write(), not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))

def alert(n):
    return Alert(id=f"d-{n}", site="d", asset="A", stream="s", kind="k",
                 severity=Severity.CRITICAL, state=AlertState.RAISED, event_time_ns=n,
                 score=1.0, model="m", window_start_ns=0, window_end_ns=n,
                 evidence={"pad": "x" * 1000})

async def main():
    clock = SystemClock()
    cfg = OutboxConfig(path=sys.argv[1], batch_max=50)  # the first batches fit
    fw = Forwarder(Outbox(cfg, clock), [], cfg, "d", clock)
    task = asyncio.create_task(fw.run())
    for n in range(1000):  # ~1.1 MB: beyond the 400 kB limit
        fw.submit_alert(alert(n))
        if n % 50 == 0:
            await asyncio.sleep(0.01)
    await asyncio.sleep(1.5)
    alive = not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(json.dumps({"alive": alive, "committed": fw.stats.committed,
                      "pending": fw.pending, "dropped": fw.stats.dropped_unbuffered}))

with structlog.testing.capture_logs() as logs:
    asyncio.run(main())
print(json.dumps(sorted({e["event"] for e in logs})))
"""


def test_write_errors_are_logged_and_retried_and_the_forwarder_keeps_running(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "o.sqlite")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    stats_line, events_line = out.stdout.strip().splitlines()[-2:]
    stats = json.loads(stats_line)
    events = json.loads(events_line)
    assert stats["alive"], out.stderr
    assert 0 < stats["committed"] < 1000  # some got in before the disk refused
    assert stats["pending"] == 1000  # in the file, or waiting in memory: none lost
    assert stats["dropped"] == 0
    assert "outbox_write_failed" in events
