"""`edgepipe run` under a stand-in for systemd: the notify protocol end to end.

The test binds the notify socket (systemd's side), starts the real command with
NOTIFY_SOCKET and WATCHDOG_USEC set, and checks READY, STATUS, WATCHDOG, RELOADING on
SIGHUP, and STOPPING plus a clean exit within 5 s on SIGTERM.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.delivery.broker import MosquittoBroker

pytestmark = pytest.mark.integration


def _config(pmu_port: int, mqtt_port: int) -> str:
    return f"""
site = "systemd"
[sources.feeder]
type = "pmu"
url = "tcp://127.0.0.1:{pmu_port}"
idcode = 1
nominal_voltage = {230e3 / math.sqrt(3)}
[mqtt]
port = {mqtt_port}
"""


async def _collect(sock: socket.socket, until: str, timeout_s: float) -> list[dict[str, str]]:
    """Read notify datagrams until one carries ``until``; return all read."""
    loop = asyncio.get_running_loop()
    got: list[dict[str, str]] = []
    async with asyncio.timeout(timeout_s):
        while True:
            data = await loop.sock_recv(sock, 4096)
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            got.append(fields)
            if until in fields:
                return got


async def test_notify_protocol_reload_and_clean_stop(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    sim = PmuSimulator(SimulatorConfig(port=0, rate_hz=30))
    await sim.start()
    config = tmp_path / "edgepipe.toml"
    config.write_text(_config(sim.port, mosquitto.port))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "400000",  # systemd would expect a ping every 0.4 s
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgepipe.app.cli", "run", "--config", str(config),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        first = await _collect(notify, "READY", 20)
        ready = first[-1]
        assert ready["READY"] == "1" and "stream" in ready["STATUS"]
        pings = await _collect(notify, "WATCHDOG", 2)
        assert pings[-1]["WATCHDOG"] == "1"
        await asyncio.sleep(1.0)

        proc.send_signal(signal.SIGHUP)
        reload_msgs = await _collect(notify, "RELOADING", 5)
        assert "MONOTONIC_USEC" in reload_msgs[-1]
        after = await _collect(notify, "READY", 10)
        assert "refused" not in after[-1]["STATUS"]

        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await _collect(notify, "STOPPING", 5)
        code = await asyncio.wait_for(proc.wait(), 5)
        assert code == 0
        assert time.monotonic() - stopped_at < 5
        assert sim.command_log[-1] == 1  # TURN_OFF sent to the PMU on the way out
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert '"config_reloaded"' in err and '"service_stopped"' in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.stop()
        notify.close()
