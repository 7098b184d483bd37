"""One contract, one suite, every detector (style.md 8): shapes, dtypes, determinism,
NaN input, empty batch, latency. Detectors of ``edgepipe.inference`` join through
``edgepipe.inference.testing.CONFORMANCE_DETECTORS``."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from edgepipe.pipeline.detectors import Detector
from edgepipe.pipeline.testing import CONFORMANCE_DETECTORS, check_detector, conformance_windows

LATENCY_BUDGET_US = 500.0  # per window, generous for shared CI machines; see the bench tool


def _all() -> list[tuple[str, Callable[[], Detector]]]:
    found = list(CONFORMANCE_DETECTORS)
    try:
        extra = importlib.import_module("edgepipe.inference.testing")
    except ModuleNotFoundError as exc:
        if exc.name != "edgepipe.inference.testing":
            raise  # the module exists but is broken: fail loudly
        return found
    return found + list(extra.CONFORMANCE_DETECTORS)


DETECTORS = _all()


def test_every_rule_kind_is_in_the_suite() -> None:
    names = {n for n, _ in DETECTORS}
    assert {
        "undervoltage",
        "overvoltage",
        "underfrequency",
        "overfrequency",
        "rocof",
        "angle_jump",
        "data_quality",
    } <= names


@pytest.mark.parametrize(("name", "factory"), DETECTORS, ids=[n for n, _ in DETECTORS])
def test_detector_conformance(name: str, factory: Callable[[], Detector]) -> None:
    us = check_detector(factory, conformance_windows())
    print(f"{name}: {us:.1f} us/window")  # shown with -s; the report quotes the bench tool
    assert us < LATENCY_BUDGET_US


@pytest.mark.parametrize(("name", "factory"), DETECTORS, ids=[n for n, _ in DETECTORS])
def test_detector_gives_one_score_per_window_at_most(
    name: str, factory: Callable[[], Detector]
) -> None:
    from edgepipe.pipeline.features import pmu_features

    windows = conformance_windows()
    scores = factory().evaluate(windows, pmu_features(windows))
    keys = [(s.stream, s.kind) for s in scores]
    assert len(keys) == len(set(keys))
