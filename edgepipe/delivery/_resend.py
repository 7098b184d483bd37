"""The resend window: acknowledged messages are kept a while, in case their broker dies.

A broker's PUBACK does not mean the message reached a subscriber or its disk: mosquitto
keeps it in memory and saves only every ``autosave_interval``, so a broker SIGKILLed
right after acknowledging loses it. The forwarder therefore keeps every acknowledged row
in the outbox (marked ``acked_ns``) for ``resend_window_s``. When delivery moves to
another destination, or to a new connection of the same one (the broker restarted), the
rows acknowledged within the window over any other connection are sent again, same ids:
subscribers drop duplicates by (id, state). Past the window, rows are deleted.
"""

from __future__ import annotations

__all__ = ["ResendWindow"]

from collections import deque
from collections.abc import Callable

from edgepipe.core import Clock

_NS = 1_000_000_000


class ResendWindow:
    """Acknowledgements of the last ``window_s`` seconds, by destination and connection.

    A row is safe, and deleted, once a connection that acknowledged it has lived
    ``window_s`` past that acknowledgement (``alive(dest, conn)`` says whether it still
    does). Sent again to another connection, a row keeps its earlier acknowledgements:
    a resend made only to keep order on the new destination does not restart its window.
    """

    def __init__(self, window_s: float, clock: Clock, alive: Callable[[int, int], bool]) -> None:
        self._window_ns = int(window_s * _NS)
        self._clock = clock
        self._alive = alive
        self._acks: dict[int, list[tuple[int, int, int]]] = {}  # seq -> [(ns, dest, conn)]
        self._order: deque[tuple[int, int]] = deque()  # (acked_ns, seq), oldest first
        self._resending: set[int] = set()
        self.held: list[tuple[int, int]] = []  # (seq, acked_ns) to mark in the next commit
        self.expired: list[int] = []  # seqs to delete in the next commit

    def __len__(self) -> int:
        return len(self._acks)

    def add(self, seq: int, dest: int, conn: int) -> None:
        """``seq`` was acknowledged by connection ``conn`` of destination ``dest``."""
        now = self._clock.time_ns()
        self._acks.setdefault(seq, []).append((now, dest, conn))
        self._resending.discard(seq)
        self._order.append((now, seq))
        self.held.append((seq, now))

    def due(self) -> bool:
        """Some acknowledgement is past the window (its row may be deleted)."""
        return bool(self._order) and self._order[0][0] <= self._clock.time_ns() - self._window_ns

    def expire(self) -> None:
        """Rows that a still-living connection has held for the window go to ``expired``."""
        cut = self._clock.time_ns() - self._window_ns
        while self._order and self._order[0][0] <= cut:
            ns, seq = self._order.popleft()
            acks = self._acks.get(seq)
            ack = next((a for a in acks or () if a[0] == ns), None)
            if acks is None or ack is None:
                continue
            if self._alive(ack[1], ack[2]):
                del self._acks[seq]
                self._resending.discard(seq)
                self.expired.append(seq)
            else:  # that broker failed since: the row waits for another acknowledgement
                acks.remove(ack)

    def take_commit(self) -> tuple[list[tuple[int, int]], list[int]]:
        """What the next commit marks (held) and deletes (expired)."""
        self.expire()
        held, self.held = self.held, []
        expired, self.expired = self.expired, []
        return held, expired

    def restore(self, held: list[tuple[int, int]], expired: list[int]) -> None:
        """The commit failed: keep both for the next one."""
        self.held[:0] = held
        self.expired[:0] = expired

    def take_resend(self, dest: int, conn: int) -> list[int]:
        """Held seqs that connection ``conn`` of ``dest`` has not acknowledged: they are
        pending again (to be sent to it)."""
        seqs = sorted(
            s
            for s, acks in self._acks.items()
            if s not in self._resending and all((d, c) != (dest, conn) for _, d, c in acks)
        )
        if seqs:
            self._resending.update(seqs)
            again = set(seqs)
            self.held = [h for h in self.held if h[0] not in again]
        return seqs
