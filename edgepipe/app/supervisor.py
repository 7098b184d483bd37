"""Runs the configured sources as tasks, restarts a crashed one, and applies reloads.

A source reconnects on its own; this only catches what escapes it (a bug, an
unexpected exception), so one bad adapter cannot stop the service, and a reload that
leaves a source's table unchanged leaves its stream untouched.
"""

from __future__ import annotations

__all__ = ["SourceSupervisor"]

import asyncio
from collections.abc import Sequence

import structlog

from adapters import registry
from edgepipe.app.config import SourceConfig
from edgepipe.core import Clock, Sink, Source

log = structlog.get_logger("edgepipe.supervisor")

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0


class SourceSupervisor:
    def __init__(self, sink: Sink, clock: Clock) -> None:
        self._sink = sink
        self._clock = clock
        self._configs: dict[str, SourceConfig] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.sources: dict[str, Source] = {}
        self.crashes: dict[str, int] = {}

    def build(self, configs: Sequence[SourceConfig]) -> None:
        """Create the source objects (validates options; nothing connects yet)."""
        for cfg in configs:
            self._configs[cfg.name] = cfg
            self.sources[cfg.name] = registry.create(cfg.type, cfg.name, cfg.options, self._clock)

    def start(self) -> None:
        for name in self.sources:
            self._start(name)

    async def apply(self, configs: Sequence[SourceConfig]) -> list[str]:
        """Stop removed or changed sources, start new or changed ones; returns the names
        that were (re)started. Sources whose table is unchanged keep running."""
        wanted = {c.name: c for c in configs}
        changed = [n for n in self._configs if n not in wanted or wanted[n] != self._configs[n]]
        for name in changed:
            await self._stop(name)
            del self._configs[name], self.sources[name]
        fresh = [c for n, c in wanted.items() if n not in self._configs]
        # Build them all before starting any, so a bad option starts nothing.
        built = {c.name: registry.create(c.type, c.name, c.options, self._clock) for c in fresh}
        for cfg in fresh:
            self._configs[cfg.name] = cfg
            self.sources[cfg.name] = built[cfg.name]
            self._start(cfg.name)
        return [c.name for c in fresh]

    async def stop(self) -> None:
        for name in list(self._tasks):
            await self._stop(name)

    def _start(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._supervise(name), name=f"source:{name}")

    async def _stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            # A PMU sends "turn off transmission" as it is cancelled.
            await asyncio.gather(task, return_exceptions=True)

    async def _supervise(self, name: str) -> None:
        delay = RESTART_MIN_S
        while True:
            source = self.sources[name]
            try:
                await source.run(self._sink)
                log.warning("source_returned", source=name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything that escapes an adapter
                self.crashes[name] = self.crashes.get(name, 0) + 1
                log.error("source_crashed", source=name, error=repr(exc), restart_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)
