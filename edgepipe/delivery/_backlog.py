"""The backlog of the forwarder: what was pending at a failure, a restart or a stall.

It is read back from the outbox file in seq order and sent at ``rate`` messages per
second (a token bucket), so a broker that has just come back is not flooded. Rows
committed after it started (seq > ``end``) are live and may overtake it, except on the
topics it still holds: per topic (the retained state of one alert key) order holds.
"""

from __future__ import annotations

__all__ = ["Backlog"]

from collections import deque
from collections.abc import Sequence

from edgepipe.core import Clock
from edgepipe.delivery.outbox import OutboxMessage

_NS = 1_000_000_000


class Backlog:
    """Backlog state and pacing; the forwarder does the reading and sending."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.active = False
        self.end: int | None = None  # highest seq of the backlog, once known
        self.topics: set[str] = set()
        self.rows: deque[OutboxMessage] = deque()  # read ahead, not yet sent
        self.cursor = 0  # highest seq read so far
        self._rate = rate
        self._burst = max(1.0, rate / 20)  # 50 ms worth
        self._tokens = 0.0
        self._free = 0  # messages that may go unpaced (a resend, see grant)
        self._refill_ns = 0
        self._clock = clock

    def enter(self) -> None:
        """Everything pending is backlog again, from the oldest row on."""
        self.active = True
        self.end = None
        self.topics = set()
        self.rows.clear()
        self.cursor = 0

    @property
    def started(self) -> bool:
        """Active with its end and topics known: ready to read and to judge live rows."""
        return self.active and self.end is not None

    def start(self, end: int, topics: set[str]) -> None:
        self.end = end
        self.topics = topics

    def feed(self, rows: Sequence[OutboxMessage]) -> bool:
        """Rows read after ``cursor``; none means the backlog is done (returns False)."""
        if not rows:
            self.active = False
            self.topics = set()
            self._free = 0
            return False
        self.cursor = rows[-1].seq
        self.rows.extend(rows)
        return True

    def is_live(self, row: OutboxMessage) -> bool:
        """May ``row`` go out now, ahead of the backlog?"""
        if not self.active:
            return True
        return self.end is not None and row.seq > self.end and row.topic not in self.topics

    def grant(self, n: int) -> None:
        """Let ``n`` more messages go out unpaced: what is sent again after a failure
        (at most the resend window's worth) is not held behind the pace."""
        self._free += n

    def may_send(self) -> bool:
        """A row is read ahead and the pace allows one more message now."""
        if not self.rows:
            return False
        if self._free > 0:
            return True
        now = self._clock.monotonic_ns()
        self._tokens = min(self._burst, self._tokens + (now - self._refill_ns) / _NS * self._rate)
        self._refill_ns = now
        return self._tokens >= 1

    def spend(self) -> None:
        if self._free > 0:
            self._free -= 1
        else:
            self._tokens -= 1

    def floor(self) -> int:
        """Lowest seq the backlog may still hand out (for pruning acknowledged seqs)."""
        if self.rows:
            return self.rows[0].seq
        return self.cursor + 1 if self.active else 1 << 62
