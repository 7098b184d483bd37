"""Records of the outbox: what goes in, what comes out, what was dropped."""

from __future__ import annotations

__all__ = ["DropReport", "NewMessage", "OutboxMessage", "OutboxStats", "Priority"]

import enum
from dataclasses import dataclass, field

from edgepipe.core import Severity


class Priority(enum.IntEnum):
    """Drop order under pressure: lowest goes first."""

    INFO = 0  # info alerts and health messages
    WARNING = 1
    CRITICAL = 2

    @classmethod
    def of(cls, severity: Severity) -> Priority:
        return _BY_SEVERITY[Severity(severity)]


_BY_SEVERITY = {
    Severity.INFO: Priority.INFO,
    Severity.WARNING: Priority.WARNING,
    Severity.CRITICAL: Priority.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: what to publish and how important it is."""

    topic: str
    payload: bytes
    priority: Priority
    created_ns: int
    retain: bool = True
    key: str = ""  # the alert id, for logs of drops


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A committed row. ``seq`` orders rows: increasing in commit order, never reused."""

    seq: int
    topic: str
    payload: bytes
    priority: Priority
    created_ns: int
    retain: bool


@dataclass(frozen=True, slots=True)
class DropReport:
    """Drops since the last report, per priority name, with the time span they cover."""

    dropped: dict[str, int]
    first_ns: int
    last_ns: int


@dataclass(slots=True)
class OutboxStats:
    appended: int = 0
    deleted: int = 0
    commits: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {p.name.lower(): 0 for p in Priority})
    full_retries: int = 0
    corrupt_recoveries: int = 0
    resent_after_restart: int = 0
