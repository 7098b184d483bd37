"""The contract between adapters and the pipeline.

An adapter is a ``Source``: it runs until cancelled and reports what it reads to a
``Sink``. The pipeline implements ``Sink``; it finds sources by name through
``adapters.registry`` and never imports a concrete adapter.
"""

from __future__ import annotations

__all__ = ["FramesHook", "Sink", "Source", "SourceStatus", "StatusKind", "frames_hook"]

import enum
from collections.abc import Callable, Sequence
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
    """Receives what sources read. Optional extra method: ``on_frames(source, time_ns,
    frames)``, the raw wire frames (see :func:`frames_hook`); not part of the protocol
    so that sinks without it stay valid ``Sink``s."""

    def on_stream(self, info: StreamInfo) -> None:
        """A stream appeared or its channel layout changed."""
        ...

    def on_batch(self, batch: SampleBatch) -> None:
        """New rows for a stream announced before with ``on_stream``."""
        ...

    def on_status(self, status: SourceStatus) -> None: ...


#: ``on_frames(source, time_ns, frames)``: the exact wire frames a source received
#: (``time_ns``: wall-clock receipt time, ns since the epoch), in arrival order.
FramesHook = Callable[[str, int, Sequence[bytes]], None]


def frames_hook(sink: Sink) -> FramesHook | None:
    """The sink's optional ``on_frames`` method, or None.

    ``Sink.on_frames`` is optional: a sink that wants the raw frames (the capture
    recorder with ``raw_frames = true``) defines it. A framed protocol's adapter looks it
    up once per run and, only when it is there, hands over each batch of frames it
    received, unchanged, before decoding them further; when it is absent the adapter does
    no extra work at all.
    """
    hook = getattr(sink, "on_frames", None)
    return hook if callable(hook) else None


class Source(Protocol):
    name: str

    async def run(self, sink: Sink) -> None:
        """Read until cancelled; reconnect on its own; report through ``sink``."""
        ...
