"""Clocks. Nothing outside a Clock implementation reads the wall clock.

Stages take a ``Clock``; the live service passes ``SystemClock``, replay and tests pass
``VirtualClock`` so that a replay produces exactly the alerts of the live run.
"""

from __future__ import annotations

__all__ = ["Clock", "SystemClock", "VirtualClock"]

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock time, int64 ns since the UNIX epoch."""
        ...

    def monotonic_ns(self) -> int:
        """A monotonic reading for measuring intervals."""
        ...

    async def sleep_until_ns(self, deadline_ns: int) -> None:
        """Sleep until ``monotonic_ns()`` reaches ``deadline_ns``."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    async def sleep_until_ns(self, deadline_ns: int) -> None:
        delay = (deadline_ns - time.monotonic_ns()) / 1e9
        await asyncio.sleep(max(delay, 0.0))


class VirtualClock:
    """A clock moved by hand (tests) or by event time (replay)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def time_ns(self) -> int:
        return self._now

    def monotonic_ns(self) -> int:
        return self._now

    def advance_to(self, t_ns: int) -> None:
        """Move forward to ``t_ns``; the clock never runs backwards."""
        self._now = max(self._now, t_ns)

    def advance(self, delta_ns: int) -> None:
        self._now += max(delta_ns, 0)

    async def sleep_until_ns(self, deadline_ns: int) -> None:
        self.advance_to(deadline_ns)
        await asyncio.sleep(0)
