"""Settings of the durable outbox and of the delivery loop around it (``[outbox]``)."""

from __future__ import annotations

__all__ = ["OutboxConfig", "default_outbox_path"]

import os
from dataclasses import dataclass
from pathlib import Path

from edgepipe.core.tables import check

_SYNC_MODES = ("full", "extra", "normal")


def default_outbox_path() -> str:
    """``$STATE_DIRECTORY/outbox.sqlite`` under systemd (``StateDirectory=``), else the
    XDG state directory of the user (``~/.local/state/edgepipe``)."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if not state:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        state = str(Path(base) / "edgepipe")
    return str(Path(state) / "outbox.sqlite")


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """The outbox file, its bounds and the pace of delivery.

    ``max_bytes`` is the soft cap (info/health then warnings are dropped above it),
    ``hard_max_bytes`` the file-size cap at which even critical rows may go,
    ``max_age_s`` the age after which non-critical rows are dropped (0: never).
    ``synchronous``: SQLite's mode; ``full`` survives a power cut (docs/delivery.md).
    ``batch_max``: rows per grouped commit. ``drain_rate``: backlog messages per second
    (live messages are not paced). ``max_live``: committed messages held in memory for
    immediate sending before the rest is read back from the file as backlog.
    ``status_interval_s``: period of the retained status (depth, oldest age).
    ``down_hold_s``: how long a destination that missed a PUBACK deadline or rejected a
    message stays out of the chain before it is tried again (doubles, up to 30 s).
    ``resend_window_s``: how long an acknowledged message is kept; when the destination
    that acknowledged it fails within this time, it is sent again (it must cover the
    broker's persistence interval, e.g. mosquitto's ``autosave_interval``).
    """

    path: str = ""
    max_bytes: int = 256 * 1024 * 1024
    hard_max_bytes: int = 1024 * 1024 * 1024
    max_age_s: float = 7 * 24 * 3600.0
    synchronous: str = "full"
    batch_max: int = 2000
    drain_rate: float = 2000.0
    max_live: int = 10_000
    max_inflight: int = 1000
    status_interval_s: float = 10.0
    down_hold_s: float = 2.0
    resend_window_s: float = 5.0

    def __post_init__(self) -> None:
        check(self.max_bytes >= 64 * 1024, "max_bytes", "must be >= 65536")
        check(self.hard_max_bytes >= self.max_bytes, "hard_max_bytes", "must be >= max_bytes")
        check(self.max_age_s >= 0, "max_age_s", "must be >= 0 (0: no age limit)")
        check(self.synchronous in _SYNC_MODES, "synchronous", f"one of {', '.join(_SYNC_MODES)}")
        check(1 <= self.batch_max <= 100_000, "batch_max", "must be 1..100000")
        check(self.drain_rate > 0, "drain_rate", "must be > 0 messages/s")
        check(self.max_live >= 1, "max_live", "must be >= 1")
        check(1 <= self.max_inflight <= 65535, "max_inflight", "must be 1..65535")
        check(self.status_interval_s > 0, "status_interval_s", "must be > 0")
        check(self.down_hold_s > 0, "down_hold_s", "must be > 0")
        check(0 <= self.resend_window_s <= 3600, "resend_window_s", "must be 0..3600 s")

    def resolved_path(self) -> str:
        return self.path or default_outbox_path()
