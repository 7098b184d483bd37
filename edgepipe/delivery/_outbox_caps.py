"""The outbox's bounds and drop policy (docs/delivery.md), applied inside its commits.

A mixin of :class:`~edgepipe.delivery.outbox.Outbox`: it works on the outbox's open
connection, counters and statistics.
"""

from __future__ import annotations

__all__ = ["OutboxCaps"]

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from edgepipe.core import Clock
from edgepipe.delivery.outbox_config import OutboxConfig
from edgepipe.delivery.outbox_records import OutboxStats, Priority

_log = structlog.get_logger()
_NS = 1_000_000_000


class OutboxCaps:
    """Age, soft cap, hard cap / full disk: what goes, in which order, counted."""

    config: OutboxConfig
    bytes: int
    depth: int
    stats: OutboxStats
    _clock: Clock
    _has_drops: bool
    _next_age_check_ns: int

    @property
    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _enforce_caps_in_txn(self) -> None:
        cfg = self.config
        now = self._clock.time_ns()
        # The age check runs at most once a second: during a long outage the file holds
        # many rows and a commit every few milliseconds.
        if cfg.max_age_s > 0 and now >= self._next_age_check_ns:
            self._next_age_check_ns = now + _NS
            rows = self.db.execute(
                "SELECT seq, priority, created_ns, size FROM messages "
                "WHERE created_ns < ? AND priority < ? AND acked_ns IS NULL ORDER BY seq",
                (now - int(cfg.max_age_s * _NS), int(Priority.CRITICAL)),
            ).fetchall()
            self._drop_rows(rows, "max_age")
        if self.bytes > cfg.max_bytes:
            self._shed_held()
        if self.bytes > cfg.max_bytes:
            for prio in (Priority.INFO, Priority.WARNING):
                self._evict(prio, self.bytes - cfg.max_bytes, "max_bytes")
                if self.bytes <= cfg.max_bytes:
                    break

    def _evict(self, prio: Priority, need: int, reason: str) -> int:
        """Drop the oldest rows of ``prio`` until ``need`` bytes are freed; bytes freed."""
        freed = 0
        while freed < need:
            rows = self.db.execute(
                "SELECT seq, priority, created_ns, size FROM messages "
                "WHERE priority = ? AND acked_ns IS NULL ORDER BY seq LIMIT 512",
                (int(prio),),
            ).fetchall()
            if not rows:
                break
            take = []
            for r in rows:
                take.append(r)
                freed += r[3]
                if freed >= need:
                    break
            self._drop_rows(take, reason)
        return freed

    def _evict_for_full(self, need: int) -> bool:
        """Free ``need`` bytes for a write that hit the hard cap or a full disk."""
        with self._txn():
            freed = self._shed_held()
            for prio in Priority:  # critical only when nothing else is left
                freed += self._evict(prio, need - freed, "disk_full")
                if freed >= need:
                    break
        return freed > 0

    def _shed_held(self) -> int:
        """Under a cap, delivered rows held for the resend window go first (not drops)."""
        row = self.db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM messages WHERE acked_ns IS NOT NULL"
        ).fetchone()
        if row[0]:
            self.db.execute("DELETE FROM messages WHERE acked_ns IS NOT NULL")
            self.bytes -= int(row[1])
            self.stats.deleted += int(row[0])
            _log.warning("outbox_resend_window_shed", rows=int(row[0]), bytes=self.bytes)
        return int(row[1])

    def _drop_rows(self, rows: Sequence[Any], reason: str) -> None:
        if not rows:
            return
        self.db.executemany("DELETE FROM messages WHERE seq = ?", [(r[0],) for r in rows])
        self.bytes -= sum(r[3] for r in rows)
        self.depth -= len(rows)
        self._record_drops([(Priority(r[1]), r[2], f"seq:{r[0]}") for r in rows], reason)

    def _record_drops(self, drops: Iterable[tuple[Priority, int, str]], reason: str) -> None:
        counts: dict[Priority, list[int]] = {}
        keys: list[str] = []
        for prio, created_ns, key in drops:
            counts.setdefault(prio, []).append(created_ns)
            keys.append(key)
        for prio, times in counts.items():
            self.db.execute(
                "INSERT INTO drops (priority, count, first_ns, last_ns) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(priority) DO UPDATE SET count = count + excluded.count, "
                "first_ns = min(first_ns, excluded.first_ns), "
                "last_ns = max(last_ns, excluded.last_ns)",
                (int(prio), len(times), min(times), max(times)),
            )
            self.stats.dropped[prio.name.lower()] += len(times)
            log = _log.error if prio is Priority.CRITICAL else _log.warning
            log(
                "outbox_dropped",
                reason=reason,
                priority=prio.name.lower(),
                count=len(times),
                first=keys[0],
                depth=self.depth,
                bytes=self.bytes,
            )
        self._has_drops = True
