"""Per-stage latency histograms, cheap enough for every flush (one bisect per stage)."""

from __future__ import annotations

__all__ = ["BUCKETS_S", "StageTimings"]

import bisect
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Upper bounds (s) of every stage histogram.
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class StageTimings:
    """Counts per bucket (+Inf last) and the sum, per stage name."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, stage: str, seconds: float) -> None:
        counts = self.counts.get(stage)
        if counts is None:
            counts = self.counts[stage] = [0] * (len(BUCKETS_S) + 1)
            self.sums[stage] = 0.0
        counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.sums[stage] += seconds

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - started)
