"""``ScoreBatch``: one detector's verdicts on a batch of windows, kept in columns.

A flush judges hundreds of windows per detector, and nearly every verdict is "healthy"
for a key that is idle, which leaves the alert engine's state as it was. Building a
``Score`` record for each of them cost more than the features and the models together,
so a detector may hand over its verdicts in columns and build a ``Score`` only for the
rows the engine asks for (``make``). ``make(k)`` must return exactly the ``k``-th
``Score`` the detector's ``evaluate`` gives for the same input.
"""

from __future__ import annotations

__all__ = ["ScoreBatch"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgepipe.core.records import Score


@dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Rows in the order of ``evaluate``'s scores: ``assets[k]`` and ``active[k]`` of
    row ``k``; every row has kind ``kind`` and model ``model``."""

    kind: str
    model: str
    assets: Sequence[str]
    active: npt.NDArray[np.bool_]
    make: Callable[[int], Score]

    def __post_init__(self) -> None:
        if self.active.shape != (len(self.assets),):
            raise ValueError("ScoreBatch: active must have one entry per row")

    def __len__(self) -> int:
        return len(self.assets)

    def scores(self) -> list[Score]:
        """Every row as a ``Score`` (what ``evaluate`` returns)."""
        return [self.make(k) for k in range(len(self.assets))]
