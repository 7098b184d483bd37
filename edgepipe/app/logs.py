"""Logging setup: the only global configuration in edgepipe (style.md, 9).

JSON lines when stderr is not a terminal (journald, pipes), readable console output on a
terminal. Logs always go to stderr; stdout carries only a command's own output.
"""

from __future__ import annotations

__all__ = ["RepeatLimiter", "configure_logging"]

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class RepeatLimiter:
    """A structlog processor that rate-limits repeated warnings and errors.

    The same (event, source, stream) may log ``burst`` times per ``period_s``; further
    repeats are dropped and counted, and the next one let through carries
    ``suppressed=N``, so a flapping device cannot flood the journal yet nothing is hidden.
    """

    def __init__(self, burst: int = 5, period_s: float = 60.0) -> None:
        self.burst = burst
        self.period_s = period_s
        self._seen: dict[tuple[object, ...], list[float]] = {}  # key -> [start, count, dropped]

    def __call__(
        self, _logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if method not in ("warning", "error", "critical", "exception"):
            return event
        key = (event.get("event"), event.get("source"), event.get("stream"))
        now = time.monotonic()
        slot = self._seen.get(key)
        if slot is None or now - slot[0] >= self.period_s:
            if len(self._seen) > 10_000:  # bounded: forget everything rather than grow
                self._seen.clear()
            dropped = int(slot[2]) if slot is not None else 0
            self._seen[key] = [now, 1, 0]
            if dropped:
                event["suppressed"] = dropped
            return event
        slot[1] += 1
        if slot[1] > self.burst:
            slot[2] += 1
            raise structlog.DropEvent
        return event


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Route structlog (and the stdlib loggers of our libraries) to stderr."""
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=True)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        RepeatLimiter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not console:
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the stdlib: keep them on stderr, quieter.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING), force=True)
