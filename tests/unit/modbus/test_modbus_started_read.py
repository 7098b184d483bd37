"""The poller's started read: sent now (its first step runs at once), awaited later."""

from __future__ import annotations

import asyncio

import pytest

from adapters.modbus.poller import _Started


async def test_the_first_step_runs_before_the_await_and_the_rest_after() -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read(x: int, *, y: int) -> int:
        steps.append("sent")
        got = await gate
        steps.append("answered")
        return x + y + got

    started = _Started(read, 1, y=2)
    assert steps == ["sent"]  # no await yet: the request is already out
    asyncio.get_running_loop().call_soon(gate.set_result, 4)
    assert await started == 7
    assert steps == ["sent", "answered"]


async def test_an_error_raised_by_the_call_itself_comes_out_of_the_await() -> None:
    def not_connected(*_args: object, **_kw: object) -> asyncio.Future[int]:
        raise ConnectionError("not connected")  # pymodbus does this before any coroutine

    started = _Started(not_connected)
    with pytest.raises(ConnectionError, match="not connected"):
        await started


async def test_cancelling_the_awaiting_task_cancels_the_read() -> None:
    cleaned: list[bool] = []

    async def read() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    async def poll() -> None:
        await _Started(read)

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_a_read_never_awaited_can_be_closed() -> None:
    cleaned: list[bool] = []

    async def read() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    _Started(read).close()
    assert cleaned == [True]
