"""The service as the OT team runs it: reload, /metrics, /healthz, a stalled pipeline."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.app.config import load_config
from edgepipe.app.lifecycle import Runtime
from edgepipe.app.service import Service
from edgepipe.app.systemd import Notifier
from edgepipe.core import StatusKind, SystemClock
from edgepipe.delivery.broker import MosquittoBroker

pytestmark = pytest.mark.integration

RATE = 30


def _config_text(pmu_port: int, undervoltage: float = 0.9, extra: str = "") -> str:
    return f"""
site = "runtime"
[sources.feeder]
type = "pmu"
url = "tcp://127.0.0.1:{pmu_port}"
idcode = 1
nominal_voltage = {230e3 / math.sqrt(3)}
quiet_periods = 6
timeout_s = 0.3
reconnect_max_s = 0.5
[windows]
length = 6
hop = 1
[rules.undervoltage]
raise_threshold = {undervoltage}
clear_threshold = {max(undervoltage, 0.95)}
[service]
metrics_listen = "127.0.0.1:0"
stall_limit_s = 0.5
{extra}
"""


class NotifySocket:
    """systemd's side of the notify protocol: collects every datagram sent to it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.path = path
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)


async def _http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
async def simulator() -> AsyncIterator[PmuSimulator]:
    sim = PmuSimulator(SimulatorConfig(port=0, rate_hz=RATE))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def _start(
    path: Path, notifier: Notifier | None = None
) -> tuple[Runtime, asyncio.Task[None]]:
    runtime = Runtime(Service(load_config(path), SystemClock()), notifier)
    started = asyncio.Event()
    task = asyncio.create_task(runtime.run(started))
    await asyncio.wait_for(started.wait(), 10)
    return runtime, task


async def _wait_rows(runtime: Runtime, rows: int) -> None:
    async with asyncio.timeout(10):
        while runtime.service.pipeline.stats.rows < rows:
            await asyncio.sleep(0.05)


async def test_good_reload_applies_new_rules_without_a_gap(
    simulator: PmuSimulator, tmp_path: Path
) -> None:
    path = tmp_path / "edgepipe.toml"
    path.write_text(_config_text(simulator.port))
    runtime, task = await _start(path)
    try:
        await _wait_rows(runtime, RATE)
        assert runtime.service.pipeline.stats.alerts_by_kind[("undervoltage", "raised")] == 0
        # An operator raises the undervoltage threshold above the healthy voltage.
        path.write_text(_config_text(simulator.port, undervoltage=1.5))
        assert await runtime.reload()
        rows_at_reload = runtime.service.pipeline.stats.rows
        await _wait_rows(runtime, rows_at_reload + RATE)
        stats = runtime.service.pipeline.stats
        assert stats.alerts_by_kind[("undervoltage", "raised")] == 1  # the new rule is live
        # The stream was not touched: one connection, no quiet period, rows on the grid.
        assert simulator.stats.clients == 1
        assert StatusKind.QUIET not in {
            s.kind for s in runtime.service.pipeline.stream_state.values()
        }
        windows = runtime.service.pipeline.windows.statistics()
        assert all(w.gap_windows == 0 for w in windows.values())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_bad_reload_is_refused_and_the_old_config_keeps_running(
    simulator: PmuSimulator, tmp_path: Path
) -> None:
    path = tmp_path / "edgepipe.toml"
    path.write_text(_config_text(simulator.port))
    runtime, task = await _start(path)
    try:
        await _wait_rows(runtime, RATE)
        path.write_text(_config_text(simulator.port) + "\n[windows.bogus]\n")
        assert not await runtime.reload()
        assert "windows" in runtime.last_reload_error
        rows = runtime.service.pipeline.stats.rows
        await _wait_rows(runtime, rows + RATE)  # still streaming on the old config
        assert runtime.service.config.windows.length == 6
        status, body = await _http_get(runtime.http.port, "/healthz")  # type: ignore[union-attr]
        assert status == 200
        assert "last reload refused" in json.loads(body)["warnings"][0]
        path.write_bytes(_config_text(simulator.port).encode() + b"\n# S\xfcd\n")
        assert not await runtime.reload()  # not UTF-8: refused and said, not a dead task
        assert "not UTF-8" in runtime.last_reload_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_metrics_scrape_and_healthz_turns_503_when_the_stream_goes_quiet(
    simulator: PmuSimulator, tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    path = tmp_path / "edgepipe.toml"
    delivery = (
        f"[mqtt]\nport = {mosquitto.port}\n"
        f'[outbox]\npath = "{tmp_path / "outbox.sqlite"}"\nstatus_interval_s = 0.2\n'
    )
    path.write_text(_config_text(simulator.port) + delivery)
    runtime, task = await _start(path)
    try:
        await _wait_rows(runtime, RATE)
        port = runtime.http.port  # type: ignore[union-attr]
        status, body = await _http_get(port, "/metrics")
        assert status == 200
        rows = next(
            float(line.split()[-1])
            for line in body.splitlines()
            if line.startswith("edgepipe_pipeline_rows_total")
        )
        assert rows >= RATE
        for name in (
            'edgepipe_source_frames_total{source="feeder"}',
            'edgepipe_ring_capacity{stream="feeder/2"}',
            'edgepipe_stage_seconds_bucket{le="0.001",stage="flush"}',
            'edgepipe_stage_seconds_count{stage="detector:onnx:pmu_event"}',
            'edgepipe_stage_seconds_count{stage="features:pmu"}',
            'edgepipe_model_windows_scored_total{model="onnx:pmu_event"}',
            'edgepipe_model_windows_scored_total{model="onnx:pmu_anomaly"}',
            "edgepipe_outbox_depth",
            'edgepipe_stream_staleness_seconds{stream="feeder/2"}',
            'edgepipe_destination_up{destination="local"} 1.0',
            "edgepipe_outbox_committed_total",
            "edgepipe_outbox_oldest_age_seconds 0.0",
        ):
            assert name in body, name
        status, body = await _http_get(port, "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")

        simulator.paused = True  # the PMU stops sending
        async with asyncio.timeout(5):
            while (await _http_get(port, "/healthz"))[0] == 200:
                await asyncio.sleep(0.1)
        status, body = await _http_get(port, "/healthz")
        assert status == 503
        assert any("feeder/2 is quiet" in r for r in json.loads(body)["reasons"])
        simulator.paused = False
        async with asyncio.timeout(5):
            while (await _http_get(port, "/healthz"))[0] == 503:
                await asyncio.sleep(0.1)

        # The broker dies while alerts are raised: they wait in the outbox, and it shows.
        mosquitto.kill()
        simulator.paused = True
        async with asyncio.timeout(10):
            while "no broker reachable" not in (await _http_get(port, "/healthz"))[1]:
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_watchdog_is_withheld_while_the_pipeline_stalls(
    simulator: PmuSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    path = tmp_path / "edgepipe.toml"
    path.write_text(_config_text(simulator.port))
    runtime, task = await _start(path, Notifier({"NOTIFY_SOCKET": str(notify.path)}))
    try:
        await _wait_rows(runtime, RATE)
        await asyncio.sleep(0.5)
        fed_before = sum("WATCHDOG" in m for m in notify.drain())
        assert notify.messages[0].get("READY") == "1" and "stream" in notify.messages[0]["STATUS"]
        assert fed_before >= 3
        # A stage that never gets to run: due windows pile up unevaluated.
        pipeline = runtime.service.pipeline
        monkeypatch.setattr(pipeline, "_schedule_flush", lambda: None)
        await asyncio.sleep(1.5)
        notify.drain()
        notify.messages.clear()
        await asyncio.sleep(1.0)
        assert sum("WATCHDOG" in m for m in notify.drain()) == 0
        status, body = await _http_get(runtime.http.port, "/healthz")  # type: ignore[union-attr]
        assert status == 503 and "pipeline stalled" in body
        monkeypatch.undo()
        pipeline.flush()  # the stage recovers
        await asyncio.sleep(0.6)
        assert sum("WATCHDOG" in m for m in notify.drain()) >= 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
