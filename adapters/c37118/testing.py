"""Reusable test helpers for PMU sources: a ``Sink`` that records what it is told."""

from __future__ import annotations

__all__ = ["RecordingSink"]

import asyncio
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edgepipe.core import SampleBatch, SourceStatus, StatusKind, StreamInfo


class RecordingSink:
    """Keeps every stream, batch and status, with the local receipt time of each batch."""

    def __init__(self) -> None:
        self.infos: list[StreamInfo] = []
        self.batches: list[SampleBatch] = []
        self.received_ns: list[int] = []
        self.statuses: list[SourceStatus] = []

    def on_stream(self, info: StreamInfo) -> None:
        self.infos.append(info)

    def on_batch(self, batch: SampleBatch) -> None:
        self.batches.append(batch)
        self.received_ns.append(time.time_ns())

    def on_status(self, status: SourceStatus) -> None:
        self.statuses.append(status)

    def kinds(self) -> list[StatusKind]:
        return [s.kind for s in self.statuses]

    def rows(self, stream: str) -> int:
        return sum(len(b) for b in self.batches if b.stream == stream)

    def times(self, stream: str) -> npt.NDArray[np.int64]:
        parts = [b.times_ns for b in self.batches if b.stream == stream]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    async def wait_for(self, cond: Callable[[], bool], within_s: float = 5.0) -> None:
        """Poll ``cond`` until true; AssertionError after ``within_s`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within_s
        while not cond():
            if loop.time() > end:
                raise AssertionError(f"condition not met within {within_s} s")
            await asyncio.sleep(0.01)
