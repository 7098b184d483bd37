"""The durable outbox: every alert and health message is committed here before any publish.

SQLite in WAL mode, ``synchronous=FULL`` by default (docs/delivery.md says why: a commit
that returned survives a power cut). Rows are appended in groups, one transaction and so
one fsync per group, which is what makes >= 20,000 alerts/s durable on a small box.

Bounds and the drop policy (docs/delivery.md):

- ``max_bytes`` (soft): over it, info/health rows go first (oldest first), then warnings;
  critical rows are kept.
- ``max_age_s``: info/health and warning rows older than this are dropped; critical never.
- ``hard_max_bytes``: SQLite's ``max_page_count``. When a write fails with "database or
  disk is full" (this cap or a real full disk), the oldest non-critical rows are evicted,
  then, only if nothing else is left, the oldest critical rows, and the write is retried.

Every drop is counted per priority in the database itself (so a crash does not forget
it), logged, and turned into one health message by :meth:`Outbox.append_drop_report`.

A file that is not a database, or that SQLite finds malformed, is renamed to
``<path>.corrupt-<ns>`` (with its -wal/-shm), logged as ``outbox_corrupt``, and a fresh
outbox takes its place; the caller's batch is written into the fresh one.

Not thread-safe: the forwarder uses it from one dedicated thread.
"""

from __future__ import annotations

__all__ = ["DropReport", "NewMessage", "Outbox", "OutboxMessage", "Priority"]

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from edgepipe.core import Clock, DeliveryError
from edgepipe.delivery._outbox_caps import OutboxCaps
from edgepipe.delivery._outbox_sql import in_chunks, migrate
from edgepipe.delivery.outbox_config import OutboxConfig
from edgepipe.delivery.outbox_records import (
    DropReport,
    NewMessage,
    OutboxMessage,
    OutboxStats,
    Priority,
)

_log = structlog.get_logger()
T = TypeVar("T")

#: Bytes counted per row beyond topic and payload (row header, index entries).
ROW_OVERHEAD = 64
_NS = 1_000_000_000


def _size(topic: str, payload: bytes) -> int:
    return len(topic) + len(payload) + ROW_OVERHEAD


class Outbox(OutboxCaps):
    """Append, read in order, delete when acknowledged; bounded, crash- and power-safe."""

    def __init__(self, config: OutboxConfig, clock: Clock) -> None:
        self.config = config
        self.path = Path(config.resolved_path())
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self.bytes = 0
        self.depth = 0
        self.stats = OutboxStats()
        self._has_drops = False
        self._next_age_check_ns = 0

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> Outbox:
        """Open (or create) the file; a corrupt one is moved aside and replaced."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                self._connect()
            except sqlite3.OperationalError:
                raise  # locked, no permission, no such directory: not the file's fault
            except sqlite3.DatabaseError as exc:
                self._move_aside(exc)
                self._connect()
        except sqlite3.Error as exc:
            raise DeliveryError(f"cannot open outbox {self.path}: {exc}") from exc
        return self

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Outbox:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _connect(self) -> None:
        # timeout: how long to wait for the lock of another process before failing.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1.0)
        try:
            # One process owns the outbox: a second edgepipe on the same file fails to open
            # ("database is locked") instead of delivering the same rows twice.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.config.synchronous.upper()}")
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(self.config.hard_max_bytes // page_size, 16)
            db.execute(f"PRAGMA max_page_count={pages}")
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {ok}")
            migrate(db)
            resend = self._resend_after_restart(db)
            drops = db.execute("SELECT count(*) FROM drops").fetchone()[0]
        except sqlite3.DatabaseError:
            db.close()
            raise
        self._db = db
        self._recount()
        self.stats.resent_after_restart += resend
        self._has_drops = drops > 0
        _log.info("outbox_opened", path=str(self.path), depth=self.depth, bytes=self.bytes)

    def _resend_after_restart(self, db: sqlite3.Connection) -> int:
        """Rows acknowledged within the resend window are pending again, older ones go.

        Across a crash nothing says whether the broker that acknowledged them is still
        alive and kept them, so they are sent again (same ids); a restart is a failure.
        """
        cut = self._clock.time_ns() - int(self.config.resend_window_s * _NS)
        with contextlib.closing(db.cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            cur.execute("DELETE FROM messages WHERE acked_ns < ?", (cut,))
            cur.execute("UPDATE messages SET acked_ns = NULL WHERE acked_ns IS NOT NULL")
            resend = cur.rowcount
            cur.execute("COMMIT")
        return resend

    def _move_aside(self, exc: BaseException) -> None:
        self.close()
        stamp = self._clock.time_ns()
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{moved}{suffix}")
        self.stats.corrupt_recoveries += 1
        _log.error(
            "outbox_corrupt",
            path=str(self.path),
            moved_to=str(moved),
            error=str(exc),
            action="started a fresh outbox",
        )

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise DeliveryError(f"outbox {self.path} is not open")
        return self._db

    def _guard(self, op: Callable[[], T]) -> T:
        """Run ``op``; on corruption move the file aside, open a fresh one, run it again."""
        try:
            return op()
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            self._connect()
            return op()

    # -- writing -----------------------------------------------------------------------
    def append(
        self,
        messages: Sequence[NewMessage],
        acked: Sequence[int] = (),
        held: Sequence[tuple[int, int]] = (),
    ) -> list[OutboxMessage]:
        """Commit ``messages`` in one transaction (one fsync) and return them with seqs.

        ``held``: (seq, acked_ns) of rows acknowledged meanwhile, kept for the resend
        window; ``acked``: rows to forget (delivered, past that window). Both happen in
        the same transaction (so a commit costs one fsync, not two or three: that fsync
        is most of what the outbox adds to latency).

        Rows evicted by the caps in the same transaction may include some of ``messages``
        (never a critical one while a non-critical row is left); they are counted as
        dropped and simply absent from later :meth:`read` results.
        """
        if not messages:
            self.delete(acked, held)
            return []
        return self._guard(lambda: self._append_full_safe(messages, acked, held))

    def _append_full_safe(
        self, messages: Sequence[NewMessage], acked: Sequence[int], held: Sequence[tuple[int, int]]
    ) -> list[OutboxMessage]:
        for _attempt in range(64):
            try:
                return self._append_once(messages, acked, held)
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc):
                    raise
                self.stats.full_retries += 1
                need = sum(_size(m.topic, m.payload) for m in messages)
                if not self._evict_for_full(max(need, self.bytes // 10)):
                    break
        # Even an empty outbox cannot hold this batch: count it as dropped, keep running.
        self._record_drops([(m.priority, m.created_ns, m.key) for m in messages], "disk_full")
        self.delete(acked, held)
        return []

    def _append_once(
        self, messages: Sequence[NewMessage], acked: Sequence[int], held: Sequence[tuple[int, int]]
    ) -> list[OutboxMessage]:
        added = 0
        out: list[OutboxMessage] = []
        with self._txn() as db:
            gone = self._delete_in_txn(db, acked, held)
            cur = db.cursor()
            for m in messages:
                size = _size(m.topic, m.payload)
                cur.execute(
                    "INSERT INTO messages (topic, payload, priority, created_ns, retain, size) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (m.topic, m.payload, int(m.priority), m.created_ns, int(m.retain), size),
                )
                seq = cur.lastrowid
                assert seq is not None
                out.append(
                    OutboxMessage(seq, m.topic, m.payload, m.priority, m.created_ns, m.retain)
                )
                added += size
            self.bytes += added
            self.depth += len(messages)
            self._enforce_caps_in_txn()
        self.stats.deleted += gone
        self.stats.appended += len(messages)
        self.stats.commits += 1
        return out

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; SQLite may have rolled back already (SQLITE_FULL)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):
                self._recount()
            raise

    def _recount(self) -> None:
        sql = "SELECT count(*) - count(acked_ns), coalesce(sum(size), 0) FROM messages"
        row = self.db.execute(sql).fetchone()
        self.depth, self.bytes = int(row[0]), int(row[1])

    # -- reading and acknowledging -------------------------------------------------------
    def read(self, after_seq: int, limit: int) -> list[OutboxMessage]:
        """Up to ``limit`` committed rows with ``seq > after_seq``, in seq order."""
        rows = self._guard(
            lambda: self.db.execute(
                "SELECT seq, topic, payload, priority, created_ns, retain FROM messages "
                "WHERE seq > ? AND acked_ns IS NULL ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        )
        return [OutboxMessage(r[0], r[1], r[2], Priority(r[3]), r[4], bool(r[5])) for r in rows]

    def topics(self, up_to_seq: int) -> set[str]:
        """Topics that still have a row with ``seq <= up_to_seq`` (the backlog's keys)."""
        rows = self._guard(
            lambda: self.db.execute(
                "SELECT DISTINCT topic FROM messages WHERE seq <= ? AND acked_ns IS NULL",
                (up_to_seq,),
            ).fetchall()
        )
        return {r[0] for r in rows}

    def delete(self, seqs: Sequence[int], held: Sequence[tuple[int, int]] = ()) -> None:
        """Mark ``held`` (seq, acked_ns) acknowledged and forget ``seqs`` (one transaction);
        unknown seqs are ignored."""
        if seqs or held:
            self._guard(lambda: self._delete(seqs, held))

    def _delete(self, seqs: Sequence[int], held: Sequence[tuple[int, int]]) -> None:
        with self._txn() as db:
            gone = self._delete_in_txn(db, seqs, held)
        self.stats.deleted += gone

    def _delete_in_txn(
        self, db: sqlite3.Connection, seqs: Sequence[int], held: Sequence[tuple[int, int]] = ()
    ) -> int:
        """Mark ``held``, delete ``seqs`` (those still there); depth and bytes follow."""
        if held:
            cur = db.executemany(
                "UPDATE messages SET acked_ns = ? WHERE seq = ? AND acked_ns IS NULL",
                [(ns, seq) for seq, ns in held],
            )
            self.depth -= cur.rowcount
        pending, size = in_chunks(
            db,
            "SELECT count(*) - count(acked_ns), coalesce(sum(size), 0) FROM messages "
            "WHERE seq IN ({marks})",
            seqs,
        )
        gone, _ = in_chunks(db, "DELETE FROM messages WHERE seq IN ({marks})", seqs)
        self.depth -= pending
        self.bytes -= size
        return gone

    def unack(self, seqs: Sequence[int]) -> int:
        """Acknowledged rows become pending again (to be sent again); rows changed."""
        if not seqs:
            return 0
        return self._guard(lambda: self._unack(seqs))

    def _unack(self, seqs: Sequence[int]) -> int:
        sql = "UPDATE messages SET acked_ns = NULL WHERE seq IN ({marks}) AND acked_ns IS NOT NULL"
        with self._txn() as db:
            changed, _ = in_chunks(db, sql, seqs)
        self.depth += changed
        return changed

    def oldest_created_ns(self) -> int | None:
        # The first row by seq: an index lookup, and created_ns grows with seq.
        sql = "SELECT created_ns FROM messages WHERE acked_ns IS NULL ORDER BY seq LIMIT 1"
        row = self._guard(lambda: self.db.execute(sql).fetchone())
        return None if row is None else int(row[0])

    def max_seq(self) -> int:
        sql = "SELECT coalesce(max(seq), 0) FROM messages"
        row = self._guard(lambda: self.db.execute(sql).fetchone())
        return int(row[0])

    # -- drop reports ------------------------------------------------------------------
    @property
    def has_drops(self) -> bool:
        return self._has_drops

    def append_drop_report(self, build: Callable[[DropReport], NewMessage]) -> OutboxMessage | None:
        """Turn the drops counted so far into one message, atomically with resetting them."""
        if not self._has_drops:
            return None
        return self._guard(lambda: self._drop_report(build))

    def _drop_report(self, build: Callable[[DropReport], NewMessage]) -> OutboxMessage | None:
        db = self.db
        rows = db.execute("SELECT priority, count, first_ns, last_ns FROM drops").fetchall()
        self._has_drops = False
        if not rows:
            return None
        report = DropReport(
            dropped={Priority(r[0]).name.lower(): int(r[1]) for r in rows},
            first_ns=min(int(r[2]) for r in rows),
            last_ns=max(int(r[3]) for r in rows),
        )
        m = build(report)
        try:
            with self._txn():
                cur = db.execute(
                    "INSERT INTO messages (topic, payload, priority, created_ns, retain, size) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (m.topic, m.payload, int(m.priority), m.created_ns, int(m.retain),
                     _size(m.topic, m.payload)),
                )  # fmt: skip
                db.execute("DELETE FROM drops")
        except BaseException:
            self._has_drops = True
            raise
        self.depth += 1
        self.bytes += _size(m.topic, m.payload)
        seq = cur.lastrowid
        assert seq is not None
        _log.info("outbox_drop_report", **report.dropped)
        return OutboxMessage(seq, m.topic, m.payload, m.priority, m.created_ns, m.retain)
