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

from edgepipe.core import Clock

_NS = 1_000_000_000


class ResendWindow:
    """Acknowledgements of the last ``window_s`` seconds, by destination and connection."""

    def __init__(self, window_s: float, clock: Clock) -> None:
        self._window_ns = int(window_s * _NS)
        self._clock = clock
        self._acks: dict[int, tuple[int, int, int]] = {}  # seq -> (acked_ns, dest, conn)
        self._order: deque[tuple[int, int]] = deque()  # (acked_ns, seq), oldest first
        self.held: list[tuple[int, int]] = []  # (seq, acked_ns) to mark in the next commit
        self.expired: list[int] = []  # seqs to delete in the next commit

    def __len__(self) -> int:
        return len(self._acks)

    def add(self, seq: int, dest: int, conn: int) -> None:
        """``seq`` was acknowledged by connection ``conn`` of destination ``dest``."""
        now = self._clock.time_ns()
        self._acks[seq] = (now, dest, conn)
        self._order.append((now, seq))
        self.held.append((seq, now))

    def due(self) -> bool:
        """Some acknowledgement is past the window (its row can be deleted)."""
        return bool(self._order) and self._order[0][0] <= self._clock.time_ns() - self._window_ns

    def expire(self) -> None:
        """Move rows past the window to ``expired`` (deleted in the next commit)."""
        cut = self._clock.time_ns() - self._window_ns
        while self._order and self._order[0][0] <= cut:
            ns, seq = self._order.popleft()
            entry = self._acks.get(seq)
            if entry is not None and entry[0] == ns:  # else: sent again and re-acknowledged
                del self._acks[seq]
                self.expired.append(seq)

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
        """Seqs acknowledged within the window over any connection but ``(dest, conn)``:
        they are pending again (and no longer held)."""
        cut = self._clock.time_ns() - self._window_ns
        seqs = sorted(
            s for s, (ns, d, c) in self._acks.items() if (d, c) != (dest, conn) and ns > cut
        )
        for s in seqs:
            del self._acks[s]
        if seqs:
            again = set(seqs)
            self.held = [h for h in self.held if h[0] not in again]
        return seqs
