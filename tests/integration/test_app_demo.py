"""`edgepipe demo` (what `make demo` runs), as a user runs it: a child process."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

DEMO = [sys.executable, "-m", "edgepipe.app.cli", "demo"]


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*DEMO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_demo_prints_a_fault_raise_and_clear_then_stops_on_ctrl_c() -> None:
    proc = _start()
    assert proc.stdout is not None
    alerts: list[dict[str, object]] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                continue
            line = proc.stdout.readline()
            if not line:
                break
            alerts.append(json.loads(line))  # stdout carries only alerts, one JSON per line
            states = {(a["kind"], a["state"]) for a in alerts}
            if {("undervoltage", "raised"), ("undervoltage", "cleared")} <= states:
                break
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    kinds = {(a["kind"], a["state"]) for a in alerts}
    assert ("undervoltage", "raised") in kinds, alerts
    assert ("undervoltage", "cleared") in kinds, alerts
    raised = next(a for a in alerts if a["kind"] == "undervoltage" and a["state"] == "raised")
    cleared = next(a for a in alerts if a["kind"] == "undervoltage" and a["state"] == "cleared")
    assert raised["id"] == cleared["id"]
    assert raised["severity"] == "critical"
    assert code == 0


def test_demo_stops_by_itself_after_duration() -> None:
    proc = _start("--duration", "3")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # no fault in the first 3 s: nothing but alerts ever goes to stdout
    # Off a terminal, logs are JSON lines on stderr (journald), with stable event names
    # and the key fields of the stream they speak of.
    events = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all("event" in e and "level" in e and "timestamp" in e for e in events)
    names = [e["event"] for e in events]
    assert "service_stopped" in names
    configured = [e for e in events if e["event"] == "stream_configured"]
    assert len(configured) == 3  # the demo's three PMUs
    assert {"source", "stream", "idcode", "asset"} <= set(configured[0])
