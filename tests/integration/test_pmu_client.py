"""The PMU client against the PMU simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import structlog

from adapters.c37118.client import PmuClient, PmuClientConfig
from adapters.c37118.constants import Command, Format, Stat
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from adapters.c37118.testing import RecordingSink
from edgepipe.core import Quality, StatusKind, SystemClock

pytestmark = pytest.mark.integration

RATE = 50
PERIOD_NS = 1_000_000_000 // RATE


def _client(port: int, **kw: Any) -> PmuClient:
    base = PmuClientConfig(
        name="pmu", transport="tcp", host="127.0.0.1", port=port, idcode=1,
        timeout_s=0.3, command_gap_s=0.02, quiet_periods=5, reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )  # fmt: skip
    return PmuClient(replace(base, **kw), SystemClock())


@contextlib.asynccontextmanager
async def running(client: PmuClient, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def simulator(**kw: Any) -> AsyncIterator[PmuSimulator]:
    sim = PmuSimulator(SimulatorConfig(port=0, rate_hz=RATE, n_pmus=2, **kw))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_on_grid(times: np.ndarray) -> None:  # type: ignore[type-arg]
    """Each time is exactly k/R s since the epoch (rounded to ns), consecutive k."""
    ks = [(int(t) * RATE + 500_000_000) // 1_000_000_000 for t in times]
    assert [int(t) for t in times] == [(k * 1_000_000_000 + RATE // 2) // RATE for k in ks]
    assert np.all(np.diff(ks) == 1), "a frame is missing or repeated"


async def test_tcp_startup_streams_batches_with_device_times_values_and_quality() -> None:
    async with simulator() as sim:
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/3") >= 10)
        assert [i.stream for i in sink.infos] == ["pmu/2", "pmu/3"]
        info = sink.infos[0]
        assert (info.asset, info.rate_hz, info.nominal_hz, info.idcode) == ("PMU1", 50.0, 60.0, 2)
        assert info.channels[0].name == "VA.mag" and info.channels[0].phase == "A"
        b = next(b for b in sink.batches if b.stream == "pmu/2")
        assert b.device_time and b.values.shape[1] == 14
        v_ln = 230e3 / math.sqrt(3)
        assert np.all(np.abs(b.values[:, 0] / v_ln - 1) < 0.06)  # VA magnitude
        assert np.all(np.abs(b.values[:, info.index("freq")] - 60.0) < 0.05)
        assert np.all(b.quality == Quality.GOOD)
        _assert_on_grid(sink.times("pmu/2"))
        assert sink.kinds()[0] == StatusKind.CONNECTED
        # Cancelling the source stops the stream it started (TURN_OFF, Table 15).
        await asyncio.sleep(0.1)
        assert list(sim.command_log)[:2] == [Command.SEND_CFG2, Command.TURN_ON]
        assert sim.command_log[-1] == Command.TURN_OFF


async def test_udp_commands_and_data() -> None:
    async with simulator(udp=True) as sim:
        sink = RecordingSink()
        async with running(_client(sim.port, transport="udp"), sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 10)
        _assert_on_grid(sink.times("pmu/2"))
        await asyncio.sleep(0.1)
        assert sim.command_log[-1] == Command.TURN_OFF


async def test_tcp_commands_with_udp_data() -> None:
    """The mixed mode of clause 7.3: commands and configs on TCP, data frames by UDP."""
    data_port = _free_udp_port()
    async with simulator(udp_data_port=data_port) as sim:
        sink = RecordingSink()
        client = _client(
            data_port, transport="udp", command_host="127.0.0.1", command_port=sim.port
        )
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 10)
        _assert_on_grid(sink.times("pmu/2"))
        assert Command.SEND_CFG2 in sim.command_log
        await asyncio.sleep(0.1)
        assert sim.command_log[-1] == Command.TURN_OFF


async def test_spontaneous_udp_listener_waits_for_the_config_and_never_commands() -> None:
    port = _free_udp_port()
    async with simulator(udp=True, spontaneous_to=("127.0.0.1", port), cfg_every_s=0.4) as sim:
        # The device announced its CFG-2 before we listened: data comes first.
        await asyncio.sleep(0.1)
        sink = RecordingSink()
        client = _client(port, transport="udp", spontaneous=True)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 5)
        assert client.stats.unknown_config > 0
        assert sim.stats.commands == 0
        _assert_on_grid(sink.times("pmu/2"))


async def test_commands_are_retried_when_the_pmu_drops_them() -> None:
    async with simulator() as sim:
        sim.drop_commands = 2
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
        assert sim.stats.commands_dropped == 2
        assert client.stats.command_retries >= 2


async def test_data_before_config_asks_for_the_config() -> None:
    async with simulator(stream_on_connect=True) as sim:
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
        assert Command.SEND_CFG2 in sim.command_log


async def test_config_change_mid_stream_reannounces_without_a_gap() -> None:
    async with simulator(cfg_change_flag_s=0.5) as sim:
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 5)
            sim.change_config()
            await sink.wait_for(lambda: len(sink.infos) >= 4)
            n = sink.rows("pmu/2")
            await sink.wait_for(lambda: sink.rows("pmu/2") >= n + 5)
        assert StatusKind.CONFIG_CHANGED in sink.kinds()
        assert client.stats.config_changes == 1 and client.cfg is not None
        assert client.cfg.cfgcnt == (1, 1)
        _assert_on_grid(sink.times("pmu/2"))  # no frame lost across the change


def _magnitudes(sink: RecordingSink, stream: str) -> np.ndarray:  # type: ignore[type-arg]
    """Column 0 of every row of ``stream`` (the first phasor's magnitude, V)."""
    return np.concatenate([b.values[:, 0] for b in sink.batches if b.stream == stream])


INT_PHASORS = Format.FREQ_FLOAT  # int16 polar phasors: PHUNIT scales every value


async def test_config_change_taking_effect_when_stat_bit_10_clears_is_applied() -> None:
    # C37.118.2-2011: bit 10 is set for a while *before* the change and cleared "when
    # change effected". A client that asks only on the rise gets the old config and
    # decodes everything after the change with the wrong PHUNIT (here 1/4 of the value).
    async with simulator(fmt=INT_PHASORS, cfg_change_flag_s=0.3) as sim:
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 5)
            sim.change_config(scale=4.0, ahead=True)
            await sink.wait_for(lambda: client.stats.config_changes == 1)
            n = sink.rows("pmu/2")
            await sink.wait_for(lambda: sink.rows("pmu/2") >= n + 10)
        assert client.cfg is not None and client.cfg.cfgcnt == (1, 1)
        mags = _magnitudes(sink, "pmu/2")
        nominal = 230e3 / math.sqrt(3)
        assert np.all(np.abs(mags / nominal - 1) < 0.1), "a value decoded with the old PHUNIT"
        # the frame that cleared the bit came before its config: dropped, not mis-scaled
        assert client.stats.config_wait_drops >= 1
        assert StatusKind.CONFIG_CHANGED in sink.kinds()


async def test_a_2005_change_drops_the_frames_before_its_config_and_none_at_the_fall() -> None:
    # C37.118-2005: the change comes with the rise of bit 10; the frames that arrive
    # before the new config are laid out by it, so they are dropped, not mis-scaled. The
    # fall 0.2 s later changes nothing: the frames held then are released.
    async with simulator(fmt=INT_PHASORS, cfg_change_flag_s=0.2) as sim:
        sink = RecordingSink()
        client = _client(sim.port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 5)
            sim.change_config(scale=4.0)
            await sink.wait_for(lambda: client.stats.config_changes == 1)
            dropped, n = client.stats.config_wait_drops, sink.rows("pmu/2")
            await sink.wait_for(lambda: sink.rows("pmu/2") >= n + 25)  # 0.5 s: past the fall
        assert dropped >= 1 and client.stats.config_wait_drops == dropped
        _assert_on_grid(sink.times("pmu/2")[n:])
        mags = _magnitudes(sink, "pmu/2")
        assert np.all(np.abs(mags / (230e3 / math.sqrt(3)) - 1) < 0.1)


async def test_a_device_without_cfg3_gets_asked_for_cfg2() -> None:
    # A 2005 PMU ignores SEND_CFG3: after three tries the client asks for CFG-2 and says so.
    async with simulator(version=1) as sim:
        sink = RecordingSink()
        client = _client(sim.port, config_frame="cfg3", command_version=1)
        with structlog.testing.capture_logs() as logs:
            async with running(client, sink):
                await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
        sent = [c for c in sim.command_log if c in (Command.SEND_CFG3, Command.SEND_CFG2)]
        assert sent[:4] == [Command.SEND_CFG3] * 3 + [Command.SEND_CFG2]
        assert [e["event"] for e in logs].count("pmu_cfg3_unanswered") == 1


async def test_a_config_for_another_idcode_is_refused_and_said_once() -> None:
    async with simulator(any_idcode=True) as sim:  # answers with its own IDCODE, 1
        sink = RecordingSink()
        client = _client(sim.port, idcode=9)
        with structlog.testing.capture_logs() as logs:
            async with running(client, sink):
                await sink.wait_for(lambda: client.stats.configs_ignored >= 3)
        assert sink.rows("pmu/2") == 0 and client.cfg is None
        said = [e for e in logs if e["event"] == "pmu_config_other_idcode"]
        assert len(said) == 1 and said[0]["idcode"] == 1 and said[0]["expected"] == 9
        assert any(e["event"] == "pmu_no_answer" and e["retries"] == 1 for e in logs)


async def test_reconnects_after_the_simulator_restarts() -> None:
    async with simulator() as sim:
        port = sim.port
        sink = RecordingSink()
        client = _client(port)
        async with running(client, sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
            await sim.stop()
            await sink.wait_for(lambda: StatusKind.DISCONNECTED in sink.kinds())
            sim2 = PmuSimulator(SimulatorConfig(port=port, rate_hz=RATE, n_pmus=2))
            await sim2.start()
            try:
                n = sink.rows("pmu/2")
                await sink.wait_for(lambda: sink.rows("pmu/2") >= n + 3)
            finally:
                await sim2.stop()
        assert client.stats.reconnects >= 1
        assert sink.kinds().count(StatusKind.CONNECTED) >= 2


async def test_quiet_then_resumed() -> None:
    async with simulator() as sim:
        sink = RecordingSink()
        async with running(_client(sim.port), sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
            sim.paused = True
            await sink.wait_for(lambda: StatusKind.QUIET in sink.kinds())
            assert StatusKind.RESUMED not in sink.kinds()
            sim.paused = False
            await sink.wait_for(lambda: StatusKind.RESUMED in sink.kinds())
        quiet = [s for s in sink.statuses if s.kind == StatusKind.QUIET]
        assert {s.stream for s in quiet} == {"pmu/2", "pmu/3"}


async def test_stat_bits_become_quality_flags() -> None:
    async with simulator() as sim:
        sim.extra_stat = Stat.SYNC_LOST | Stat.TRIGGER
        sink = RecordingSink()
        async with running(_client(sim.port), sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
        q = np.concatenate([b.quality for b in sink.batches])
        assert np.all(q == Quality.SYNC_LOST | Quality.TRIGGERED)


async def test_cfg3_in_fragments() -> None:
    async with simulator(cfg3_max_frame=200) as sim:
        sink = RecordingSink()
        async with running(_client(sim.port, config_frame="cfg3"), sink):
            await sink.wait_for(lambda: sink.rows("pmu/2") >= 3)
        assert Command.SEND_CFG3 in sim.command_log
        assert sink.infos[0].channels[0].name == "VA.mag"


@pytest.mark.parametrize(
    "fmt",
    [
        Format.PHASOR_POLAR | Format.PHASOR_FLOAT | Format.FREQ_FLOAT,
        Format.PHASOR_FLOAT | Format.FREQ_FLOAT,
        Format.PHASOR_POLAR,
        Format(0),
    ],
    ids=["polar-float", "rect-float", "polar-int", "rect-int"],
)
async def test_every_wire_format_gives_the_scenario_values(fmt: Format) -> None:
    """Batches hold the simulator's trajectories whatever FORMAT carried them (within
    float32 / int16 resolution)."""
    async with simulator(fmt=fmt) as sim:
        sink = RecordingSink()
        async with running(_client(sim.port), sink):
            await sink.wait_for(lambda: sink.rows("pmu/3") >= 3)
        b = next(b for b in sink.batches if b.stream == "pmu/3")
        i = (int(b.times_ns[0]) * RATE + 500_000_000) // 1_000_000_000 - sim.k0
        sc = sim.scenario
    assert b.values[0, 0] == pytest.approx(sc.mag[i, 1, 0], rel=1e-3)  # VA magnitude
    assert b.values[0, 1] == pytest.approx(sc.ang_rad[i, 1, 0], abs=1e-3)  # VA angle
    assert b.values[0, 6] == pytest.approx(sc.mag[i, 1, 3], rel=1e-3)  # IA magnitude
    assert b.values[0, 12] == pytest.approx(sc.freq_hz[i, 1], abs=1e-3)  # int16 is mHz
