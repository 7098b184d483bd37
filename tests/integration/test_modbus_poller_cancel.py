"""Cancelling the Modbus poller mid-read ends it, against a real pymodbus server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

import pytest

from adapters.c37118.testing import RecordingSink
from adapters.modbus.device import DeviceConfig
from adapters.modbus.poller import ModbusPoller, ModbusSourceConfig
from adapters.modbus.simulator import ModbusSimulator
from adapters.modbus.testing import ALL_TYPES_VALUES, all_types_profile
from edgepipe.core import SystemClock
from edgepipe.delivery.broker import free_port

pytestmark = pytest.mark.integration


def _values(_unit: int, _t: float) -> Mapping[str, float | str]:
    return ALL_TYPES_VALUES


async def test_a_cancel_landing_while_answers_stream_in_always_stops_the_poller() -> None:
    # Polling back to back, a cancel often lands in the loop iteration where an answer
    # arrived; Python 3.11's wait_for (inside pymodbus) then returns the answer and drops
    # the cancellation. The poller must stop anyway, every time.
    profile = replace(all_types_profile(), poll_interval_s=0.001)
    port = free_port()
    devices = tuple(DeviceConfig(profile, u, f"A{u}", f"m/{u}") for u in (1, 2))
    async with ModbusSimulator(profile, _values, port=port):
        for attempt in range(25):
            cfg = ModbusSourceConfig("m", "127.0.0.1", port, devices)
            poller = ModbusPoller(cfg, SystemClock())
            sink = RecordingSink()
            task = asyncio.create_task(poller.run(sink))
            await sink.wait_for(lambda: sink.rows("m/1") >= 2)  # noqa: B023 - awaited here
            await asyncio.sleep(0.001 * attempt)  # land the cancel at varied points
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2.0)
            assert done, f"attempt {attempt}: the poller went on polling after cancel()"
            assert task.cancelled()
