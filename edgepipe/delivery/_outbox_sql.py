"""SQL of the outbox file: schema, its migration, and statements over lists of seqs."""

from __future__ import annotations

__all__ = ["SCHEMA", "in_chunks", "migrate"]

import sqlite3
from collections.abc import Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL,
    acked_ns INTEGER
);
CREATE INDEX IF NOT EXISTS messages_priority ON messages(priority, seq);
CREATE INDEX IF NOT EXISTS messages_created ON messages(created_ns);
CREATE TABLE IF NOT EXISTS drops (
    priority INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL
);
"""

_CHUNK = 500  # below SQLite's default limit of 999 host parameters


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables; a file from before the resend window gets ``acked_ns``."""
    db.executescript(SCHEMA)
    columns = {r[1] for r in db.execute("PRAGMA table_info(messages)").fetchall()}
    if "acked_ns" not in columns:
        # NULL: not acknowledged yet; otherwise when a broker acknowledged it (held for
        # the resend window, see docs/delivery.md).
        db.execute("ALTER TABLE messages ADD COLUMN acked_ns INTEGER")


def in_chunks(db: sqlite3.Connection, sql: str, seqs: Sequence[int]) -> tuple[int, int]:
    """Run ``sql`` (a ``{marks}`` placeholder for ``IN (...)``) over ``seqs`` in chunks.

    ``sql`` is a SELECT of ``count(*), coalesce(sum(size), 0)`` or a statement that
    changes rows; returns the summed (count, size) or (rows changed, 0).
    """
    count = size = 0
    for start in range(0, len(seqs), _CHUNK):
        part = seqs[start : start + _CHUNK]
        cur = db.execute(sql.format(marks=",".join("?" * len(part))), part)
        if sql.lstrip().startswith("SELECT"):
            row = cur.fetchone()
            count, size = count + int(row[0]), size + int(row[1])
        else:
            count += cur.rowcount
    return count, size
