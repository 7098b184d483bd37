"""The contract between adapters and the pipeline.

An adapter is a ``Source``: it runs until cancelled and reports what it reads to a
``Sink``. The pipeline implements ``Sink``; it finds sources by name through
``adapters.registry`` and never imports a concrete adapter.
"""

from __future__ import annotations

__all__ = ["Sink", "Source", "SourceStatus", "StatusKind"]

import enum
from dataclasses import dataclass
from typing import Protocol

from edgepipe.core.records import SampleBatch, StreamInfo


class StatusKind(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    QUIET = "quiet"  # no data for the configured number of reporting periods
    RESUMED = "resumed"  # data flows again after QUIET
    CONFIG_CHANGED = "config_changed"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A change in a source's state, for logs, metrics and data-quality alerts."""

    source: str
    stream: str
    kind: StatusKind
    time_ns: int
    detail: str = ""


class Sink(Protocol):
    def on_stream(self, info: StreamInfo) -> None:
        """A stream appeared or its channel layout changed."""
        ...

    def on_batch(self, batch: SampleBatch) -> None:
        """New rows for a stream announced before with ``on_stream``."""
        ...

    def on_status(self, status: SourceStatus) -> None: ...


class Source(Protocol):
    name: str

    async def run(self, sink: Sink) -> None:
        """Read until cancelled; reconnect on its own; report through ``sink``."""
        ...
