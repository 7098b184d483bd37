"""Conformance entries for the pipeline's detector suite (``edgepipe.pipeline.testing``).

The suite imports ``CONFORMANCE_DETECTORS`` from here and runs ``check_detector`` over
each factory: the committed starter model must meet the same contract as the rules.
"""

from __future__ import annotations

__all__ = ["CONFORMANCE_DETECTORS", "MODELS_DIR", "starter_model"]

import functools
from collections.abc import Callable
from pathlib import Path

from edgepipe.inference.loader import LoadedModel, load_model
from edgepipe.inference.onnx_detector import OnnxDetector
from edgepipe.pipeline.detectors import Detector

#: The repository's ``models/`` (this package lives in ``<repo>/edgepipe/inference``).
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@functools.cache
def starter_model() -> LoadedModel:
    """The committed ``pmu_fault`` model, loaded (and verified) once per process."""
    return load_model(MODELS_DIR, "pmu_fault")


def _starter_detector() -> OnnxDetector:
    return OnnxDetector(starter_model())


CONFORMANCE_DETECTORS: list[tuple[str, Callable[[], Detector]]] = [
    ("onnx:pmu_fault", _starter_detector),
]
