"""The site hold: each PMU window waits until every PMU of the site has delivered its moment.

A moment is a window end on the reporting-rate grid (``site.moment_ns``). The site's
streams are those announced (``join``) and not reported gone (``leave``: quiet or
disconnected). A stream is waited for while its newest moment is within ``stale_ns`` of
the site's newest, or, if it has delivered nothing yet, while it joined less than
``stale_ns`` of data time ago. A moment is released when every waited-for stream's newest
moment is at or after it (a stream's windows come in order: it has nothing more for it),
or when the site's newest moment has passed it by ``hold_ns`` (counted in
``released_late``): a late PMU delays the others by at most ``hold_ns``. The site's newest
moment leaves out a stream that runs more than ``stale_ns`` ahead of all the others (a
clock or SOC glitch), whose windows go out at once, also counted late. Everything is data
time: a replay, which adds every stream's rows of a tick before releasing, groups each
moment as the live run did while ``released_late`` stays 0.
"""

from __future__ import annotations

__all__ = ["SiteHold"]

import math
from typing import Generic, TypeVar

T = TypeVar("T")


class SiteHold(Generic[T]):
    def __init__(self, hold_ns: int, stale_ns: int) -> None:
        self.hold_ns = hold_ns
        self.stale_ns = stale_ns
        self._newest: dict[str, int | None] = {}
        self._joined_at: dict[str, int | None] = {}  # the site's newest moment at join
        self._gone: dict[str, int | None] = {}  # newest moment of a stream that left
        self._waiting: dict[int, list[tuple[str, T]]] = {}
        self.released_late = 0

    def join(self, stream: str) -> None:
        """``stream`` is (again) one of the site's; a returning stream has delivered what
        it delivered before it left, and is waited for after that."""
        if stream not in self._newest:
            self._newest[stream] = self._gone.pop(stream, None)
            self._joined_at[stream] = self._top()

    def leave(self, stream: str) -> None:
        if stream in self._newest:
            self._gone[stream] = self._newest.pop(stream)
            self._joined_at.pop(stream, None)

    @property
    def size(self) -> int:
        """The streams of the site now (joined and not gone)."""
        return len(self._newest)

    @property
    def held(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    def holds(self, stream: str, moment: int) -> bool:
        """Whether the window of ``stream`` at ``moment`` is held."""
        return any(s == stream for s, _ in self._waiting.get(moment, ()))

    def add(self, stream: str, moment: int, item: T) -> None:
        """Hold ``item``, the window of ``stream`` at ``moment``."""
        self.join(stream)
        first = self._top() is None
        seen = self._newest[stream]
        if seen is None or moment > seen:
            self._newest[stream] = moment
        if first:  # the first window: streams announced before it join now
            self._joined_at = dict.fromkeys(self._joined_at, moment)
        self._waiting.setdefault(moment, []).append((stream, item))

    def _top(self) -> int | None:
        """The site's newest moment, leaving out streams far ahead of all the others."""
        seen = sorted(v for v in self._newest.values() if v is not None)
        while len(seen) > 1 and seen[-1] - seen[-2] > self.stale_ns:
            seen.pop()
        return seen[-1] if seen else None

    def _complete(self, top: int) -> float:
        """The newest moment every waited-for stream has delivered."""
        floor = top - self.stale_ns
        complete: float = top
        for stream, seen in self._newest.items():
            if seen is None:
                joined = self._joined_at[stream]
                if joined is not None and joined >= floor:
                    return -math.inf  # a new stream, nothing from it yet: wait for it
            elif seen >= floor:
                complete = min(complete, seen)
        return complete

    def release(self) -> list[T]:
        """Items of the moments now complete, oldest first."""
        top = self._top()
        if not self._waiting or top is None:
            return []
        complete = self._complete(top)
        out: list[T] = []
        for moment in sorted(self._waiting):
            if moment <= complete:
                out.extend(item for _, item in self._waiting.pop(moment))
            elif moment + self.hold_ns <= top or moment > top + self.stale_ns:
                out.extend(item for _, item in self._waiting.pop(moment))
                self.released_late += 1
        return out

    def drain(self) -> list[T]:
        """Everything held, oldest moment first (the service stops or reconfigures)."""
        out = [item for m in sorted(self._waiting) for _, item in self._waiting[m]]
        self._waiting.clear()
        return out
