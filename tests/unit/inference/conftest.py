"""Fixtures for the inference tests: the committed model and simulator windows."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models"
MODEL_FILES = ("manifest.json", "pmu_fault.onnx")


def _load_starter_data() -> ModuleType:
    """``tools/starter_data.py``: the same scenario -> window -> feature path as training."""
    name = "starter_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "starter_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def starter_data() -> ModuleType:
    return _load_starter_data()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A private copy of the committed models directory, free to corrupt."""
    out = tmp_path / "models"
    out.mkdir()
    for name in MODEL_FILES:
        shutil.copy2(MODELS / name, out / name)
    return out
