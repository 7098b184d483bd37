"""Training tools merge into the manifest: retraining one model never drops the others."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from edgepipe.core import ModelError
from edgepipe.inference.manifest import merge_manifest, read_manifest

MODELS = Path(__file__).resolve().parents[3] / "models"


def test_merge_replaces_its_own_entry_and_keeps_the_others(tmp_path: Path) -> None:
    shutil.copy(MODELS / "manifest.json", tmp_path / "manifest.json")
    before = read_manifest(tmp_path)
    assert len(before) >= 2
    spec = dataclasses.replace(before["pmu_fault"], version="9.9.9")
    merge_manifest(tmp_path, [spec])
    after = read_manifest(tmp_path)
    assert set(after) == set(before)
    assert after["pmu_fault"].version == "9.9.9"
    others = set(before) - {"pmu_fault"}
    assert all(after[n] == before[n] for n in others)


def test_merge_starts_a_missing_manifest(tmp_path: Path) -> None:
    spec = read_manifest(MODELS)["pmu_fault"]
    merge_manifest(tmp_path, [spec])
    assert set(read_manifest(tmp_path)) == {"pmu_fault"}


def test_merge_refuses_to_overwrite_an_unreadable_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError):
        merge_manifest(tmp_path, [read_manifest(MODELS)["pmu_fault"]])
    assert (tmp_path / "manifest.json").read_text() == "{not json"
