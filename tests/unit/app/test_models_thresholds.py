"""``[models.thresholds.<name>]``: a site's own raise/clear for a model, checked by key,
applied by the detector to every model the store loads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from edgepipe.app.config import AppConfig, parse_config
from edgepipe.app.pipeline import build_detectors
from edgepipe.core import ConfigError, ModelError
from edgepipe.inference import OnnxDetector
from edgepipe.pipeline.features import FEATURE_NAMES
from edgepipe.pipeline.testing import conformance_windows

ROOT = Path(__file__).resolve().parents[3]
SOURCES = {"feeder": {"type": "pmu", "url": "tcp://127.0.0.1:4712", "idcode": 7}}


def _config(extra: str) -> AppConfig:
    return parse_config({"site": "north", "sources": SOURCES, **tomllib.loads(extra)})


def test_thresholds_parse_per_enabled_model() -> None:
    cfg = _config(
        """
[models]
enabled = ["pmu_event", "pmu_anomaly"]
[models.thresholds.pmu_event]
raise_at = 0.4
clear_at = 0.3
"""
    )
    assert cfg.models.thresholds == {"pmu_event": (0.4, 0.3)}


T = "[models.thresholds.pmu_event]\n"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("[models.thresholds.pmu_fault]\nraise_at = 0.4\nclear_at = 0.3", "pmu_fault"),
        (T + "raise_at = 0.4", "pmu_event.clear_at"),
        (T + "raise_at = 0.3\nclear_at = 0.4", "pmu_event.clear_at"),
        (T + "raise_at = '0.4'\nclear_at = 0.3", "pmu_event.raise_at"),
        (T + "raise_at = 0.4\nclear_at = 0.3\nrise = 1", "pmu_event.rise"),
        ("[models]\nthresholds = 0.4", ""),
    ],
)
def test_a_bad_threshold_names_its_key(table: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(table)
    assert "models.thresholds" + (f".{key}" if key else "") in {i.key for i in info.value.issues}


def _event_detector(extra: str) -> OnnxDetector:
    detectors, _ = build_detectors(_config('[models]\nenabled = ["pmu_event"]\n' + extra))
    (det,) = [d for d in detectors if isinstance(d, OnnxDetector)]
    return det


def test_a_lower_raise_makes_a_low_fault_probability_active() -> None:
    stock = _event_detector("")
    site = _event_detector("[models.thresholds.pmu_event]\nraise_at = 0.1\nclear_at = 0.05\n")
    with np.load(ROOT / "models" / "pmu_event.parity.npz") as z:
        x, proba = z["x"], z["proba"]
    shipped = stock.model.spec.raise_at
    assert shipped > 0.1
    middling = np.flatnonzero((proba[:, 1] >= 0.1) & (proba[:, 1] < shipped))
    assert len(middling) > 0, f"the parity rows hold no P(fault) in [0.1, {shipped})"
    cols = [FEATURE_NAMES.index(f) for f in stock.model.spec.features]
    features = np.full((len(middling), len(FEATURE_NAMES)), np.nan)
    features[:, cols] = x[middling]
    windows = conformance_windows(len(middling))  # the model sees only ``features``
    before, after = stock.evaluate(windows, features), site.evaluate(windows, features)
    assert [s.active for s in before] == [False] * len(middling)
    assert [s.active for s in after] == [True] * len(middling)
    assert after[0].evidence["thresholds"] == {"raise": 0.1, "clear": 0.05}
    assert before[0].evidence["thresholds"] == {"raise": shipped, "clear": 0.3}


def test_two_models_raising_the_same_alert_kind_are_refused_by_name() -> None:
    with pytest.raises(ModelError, match=r"pmu_fault and pmu_event both raise pmu_fault"):
        build_detectors(_config('[models]\nenabled = ["pmu_fault", "pmu_event"]\n'))
