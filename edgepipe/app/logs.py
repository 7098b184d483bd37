"""Logging setup: the only global configuration in edgepipe (style.md, 9).

JSON lines when stderr is not a terminal (journald, pipes), readable console output on a
terminal. Logs always go to stderr; stdout carries only a command's own output.
"""

from __future__ import annotations

__all__ = ["configure_logging"]

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


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
