"""The detector contract: windows and their feature rows in, one ``Score`` list out.

Rules (``rules``) and ONNX models (``edgepipe.inference``) implement the same protocol
and pass the same conformance suite (``edgepipe.pipeline.testing``).
"""

from __future__ import annotations

__all__ = ["BatchDetector", "Detector", "evaluate_all"]

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from edgepipe.core import Score, ScoreBatch, Window
from edgepipe.pipeline.features import pmu_features
from edgepipe.pipeline.ring import F64


@runtime_checkable
class Detector(Protocol):
    """A deterministic function of its inputs (no clock, no hidden state across calls).

    ``features`` holds the ``pmu_features`` rows of ``windows`` (same order). A feature
    may be NaN; a detector must decide explicitly what NaN means (rules hold their state:
    neither ``active`` nor ``clear``). At most one ``Score`` per window and per kind;
    ``event_time_ns`` is the time of the row that first crossed the threshold, else the
    window end.
    """

    name: str

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]: ...


@runtime_checkable
class BatchDetector(Detector, Protocol):
    """A detector that can also hand over its verdicts in columns: ``evaluate_batch``
    holds, row for row, the scores ``evaluate`` returns (``ScoreBatch``)."""

    def evaluate_batch(self, windows: Sequence[Window], features: np.ndarray) -> ScoreBatch: ...


def evaluate_all(detectors: Sequence[Detector], windows: Sequence[Window]) -> list[Score]:
    """Compute the features once and run every detector over them, in order."""
    if not windows:
        return []
    features: F64 = pmu_features(windows)
    scores: list[Score] = []
    for det in detectors:
        scores.extend(det.evaluate(windows, features))
    return scores
