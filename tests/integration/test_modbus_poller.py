"""The Modbus poller against real pymodbus servers (the project's simulator) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace

import numpy as np
import pytest

from adapters.c37118.testing import RecordingSink
from adapters.modbus.device import DeviceConfig
from adapters.modbus.plan import plan_reads
from adapters.modbus.poller import ModbusPoller, ModbusSourceConfig
from adapters.modbus.profile import DeviceProfile, parse_profile
from adapters.modbus.simulator import ModbusSimulator
from adapters.modbus.testing import ALL_TYPES_VALUES, all_types_profile
from edgepipe.core import Quality, StatusKind, SystemClock
from edgepipe.delivery.broker import free_port

pytestmark = pytest.mark.integration


def _values(_unit: int, _t: float) -> Mapping[str, float | str]:
    return ALL_TYPES_VALUES


def _poller(
    port: int, profile: DeviceProfile, units: tuple[int, ...] = (1,), **kw: object
) -> ModbusPoller:
    devices = tuple(DeviceConfig(profile, u, f"A{u}", f"m/{u}") for u in units)
    cfg = ModbusSourceConfig("m", "127.0.0.1", port, devices, reconnect_min_s=0.2,
                             reconnect_max_s=0.4)  # fmt: skip
    return ModbusPoller(replace(cfg, **kw), SystemClock())  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def polling(poller: ModbusPoller, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(poller.run(sink))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _check_values(sink: RecordingSink, poller: ModbusPoller, stream: str) -> None:
    info = next(i for i in sink.infos if i.stream == stream)
    row = next(b for b in reversed(sink.batches) if b.stream == stream)
    for name, value in zip((c.name for c in info.channels), row.values[0], strict=True):
        assert value == ALL_TYPES_VALUES[name], name
    state = next(d for d in poller.devices if d.dev.stream == stream)
    assert all(v == "TX-42" for v in state.texts.values()) and len(state.texts) == 4
    assert not row.device_time and int(row.quality[0]) == int(Quality.RECEIPT_TIME)


@pytest.mark.parametrize("framer", ["socket", "rtu"])
async def test_every_type_and_order_decodes_and_requests_match_the_plan(framer: str) -> None:
    profile, port = all_types_profile(), free_port()
    sink = RecordingSink()
    poller = _poller(port, profile, framer=framer)
    async with ModbusSimulator(profile, _values, port=port, framer=framer) as sim:
        async with polling(poller, sink):
            await sink.wait_for(lambda: sink.rows("m/1") >= 4)
        _check_values(sink, poller, "m/1")
        plan = len(poller.devices[0].plan)
        assert plan == 5  # coil, discrete input, holding (36 points in 2 reads), input
        done = poller.stats.rows
        assert poller.stats.responses == sim.requests
        assert done * plan <= poller.stats.requests <= (done + 1) * plan
        assert poller.stats.timeouts == poller.stats.exceptions == poller.stats.garbage == 0


async def test_several_units_behind_one_gateway_are_polled_fairly() -> None:
    profile, port = all_types_profile(), free_port()
    sink = RecordingSink()
    poller = _poller(port, profile, units=(1, 2, 7))
    sim = ModbusSimulator(profile, _values, port=port, unit_ids=(1, 2, 7))
    async with sim, polling(poller, sink):
        await sink.wait_for(lambda: min(sink.rows(f"m/{u}") for u in (1, 2, 7)) >= 3)
    counts = [sink.rows(f"m/{u}") for u in (1, 2, 7)]
    assert max(counts) - min(counts) <= 1
    for u in (1, 2, 7):
        _check_values(sink, poller, f"m/{u}")


async def test_refused_points_are_invalid_and_the_rest_goes_on() -> None:
    profile, port = all_types_profile(), free_port()
    sink = RecordingSink()
    poller = _poller(port, replace(profile, max_gap=0))
    refused = ("scaled",)
    sim = ModbusSimulator(profile, _values, port=port, refuse=refused)
    async with sim, polling(poller, sink):
        await sink.wait_for(lambda: sink.rows("m/1") >= 3)
    info = sink.infos[0]
    row = sink.batches[-1].values[0]
    assert math.isnan(row[info.index("scaled")])
    assert row[info.index("flag3")] == 1.0  # same table, next address: still read
    assert row[info.index("u32_bl")] == ALL_TYPES_VALUES["u32_bl"]
    # The merged input-register read was refused once, then split to find the culprit:
    # only the refused point keeps failing.
    assert poller.stats.exceptions >= 3
    assert len(poller.devices[0].invalid) == 1
    assert len(poller.devices[0].plan) == len(plan_reads(replace(profile, max_gap=0))) + 2


async def test_server_restart_is_followed_within_two_backoff_periods() -> None:
    profile, port = all_types_profile(), free_port()
    sink = RecordingSink()
    poller = _poller(port, profile)
    sim = ModbusSimulator(profile, _values, port=port)
    await sim.start()
    async with polling(poller, sink):
        await sink.wait_for(lambda: sink.rows("m/1") >= 2)
        await sim.stop()
        await sink.wait_for(lambda: StatusKind.DISCONNECTED in sink.kinds(), within_s=3)
        await asyncio.sleep(0.5)  # down for a while: reconnects fail and back off
        sim = ModbusSimulator(profile, _values, port=port)
        await sim.start()
        before = sink.rows("m/1")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await sink.wait_for(lambda: sink.rows("m/1") > before, within_s=3)
        # two backoff periods (reconnect_max_s 0.4 s with +20 % jitter) plus one poll
        assert loop.time() - t0 < 2 * 0.48 + 0.2
        await sim.stop()
    assert poller.stats.connects >= 2 and poller.stats.disconnects >= 1
    _check_values(sink, poller, "m/1")


async def _garbage_server(port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.read(260):
                writer.write(b"\x13\x37garbage-not-modbus\xff" * 3)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def test_a_device_answering_garbage_is_counted() -> None:
    profile, port = all_types_profile(), free_port()
    sink = RecordingSink()
    poller = _poller(port, replace(profile, timeout_s=0.2))
    server = await _garbage_server(port)
    async with server, polling(poller, sink):
        await sink.wait_for(lambda: poller.stats.garbage >= 2, within_s=5)
    assert poller.stats.responses == 0
    assert not any(np.isfinite(b.values).any() for b in sink.batches)


async def _mbap_server(
    port: int, answer: Callable[[int, bytes], bytes], *, hang_up_after: int = 0
) -> asyncio.Server:
    """A raw Modbus/TCP device: the ``k``-th request's PDU gets ``answer(k, pdu)`` under
    the request's MBAP header (transaction and unit id); with ``hang_up_after`` it closes
    each connection after that many answers."""
    answered = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            for _ in itertools.count() if not hang_up_after else range(hang_up_after):
                head = await reader.readexactly(7)  # MBAP: tid, protocol, length, unit
                pdu = await reader.readexactly(int.from_bytes(head[4:6], "big") - 1)
                body = answer(answered, pdu)
                answered += 1
                writer.write(head[:2] + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big")
                             + head[6:7] + body)  # fmt: skip
                await writer.drain()
            await asyncio.sleep(0.02)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def _registers(pdu: bytes, value: bytes = b"\x00\x07") -> bytes:
    """A good answer to a register read: every register asked holds ``value``."""
    count = int.from_bytes(pdu[3:5], "big")
    return bytes([pdu[0], 2 * count]) + value * count


ONE_HOLDING = {
    "name": "one", "unit_id": 1, "poll_interval_s": 0.05, "timeout_s": 0.3,
    "points": [{"name": "p", "table": "holding", "address": 0, "type": "u16"}],
}  # fmt: skip


async def test_an_answer_with_another_function_code_is_garbage_not_data() -> None:
    # It crashed the poller (AttributeError on a coil answer), stopping every device on
    # the connection, or an input-register answer was taken for holding registers.
    def confused(k: int, pdu: bytes) -> bytes:  # a coil answer, an input-register one
        return (b"\x01\x01\x05", b"\x04\x02\x00\x09")[k] if k < 2 else _registers(pdu)

    port, sink = free_port(), RecordingSink()
    poller = _poller(port, parse_profile(ONE_HOLDING))
    async with await _mbap_server(port, confused), polling(poller, sink):
        await sink.wait_for(lambda: poller.stats.responses >= 3, within_s=5)
    assert poller.stats.garbage == 2 and poller.stats.connects == 1
    values = np.concatenate([b.values[:, 0] for b in sink.batches])
    assert set(values[np.isfinite(values)].tolist()) == {7.0}


async def test_an_answer_with_an_odd_byte_count_is_garbage_and_the_link_stays() -> None:
    # The byte count check raised inside pymodbus's data_received: the connection was
    # dropped ("No response received") with every device's reads, again and again.
    def odd(k: int, pdu: bytes) -> bytes:
        return b"\x03\x03\x00\x07\x00" if k < 2 else _registers(pdu)

    port, sink = free_port(), RecordingSink()
    poller = _poller(port, parse_profile(ONE_HOLDING))
    async with await _mbap_server(port, odd), polling(poller, sink):
        await sink.wait_for(lambda: poller.stats.responses >= 3, within_s=5)
    assert poller.stats.garbage == 2 and poller.stats.connects == 1


async def test_a_device_that_hangs_up_after_every_answer_still_gives_rows() -> None:
    # A cycle of two reads was abandoned at every disconnect and restarted at its first
    # read: six answers, six reconnects, no row.
    profile = parse_profile({
        "name": "two", "unit_id": 1, "poll_interval_s": 0.05, "timeout_s": 0.3,
        "points": [{"name": "h", "table": "holding", "address": 0, "type": "u16"},
                   {"name": "i", "table": "input", "address": 0, "type": "u16"}],
    })  # fmt: skip

    def by_table(_k: int, pdu: bytes) -> bytes:
        return _registers(pdu, b"\x00\x07" if pdu[0] == 3 else b"\x00\x09")

    port, sink = free_port(), RecordingSink()
    poller = _poller(port, profile, reconnect_min_s=0.05, reconnect_max_s=0.1)
    async with await _mbap_server(port, by_table, hang_up_after=1), polling(poller, sink):
        await sink.wait_for(lambda: poller.stats.rows >= 2, within_s=10)
    assert sink.batches[-1].values[0].tolist() == [7.0, 9.0]
