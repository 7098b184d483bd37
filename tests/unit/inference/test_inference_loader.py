"""The loader verifies every model before use; the store keeps the last good one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepipe.core import ModelError
from edgepipe.inference import ModelStore, load_model
from edgepipe.pipeline.features import FEATURE_NAMES

NAME = "pmu_fault"


def _edit_manifest(models_dir: Path, **changes: Any) -> None:
    path = models_dir / "manifest.json"
    data = json.loads(path.read_text())
    entry = data["models"][0]
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path.write_text(json.dumps(data))


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_committed_model_loads_and_names_itself(models_dir: Path) -> None:
    model = load_model(models_dir, NAME)
    assert model.ref == "pmu_fault@1.0.0"
    assert set(model.spec.features) <= set(FEATURE_NAMES)
    assert [FEATURE_NAMES[i] for i in model.columns] == list(model.spec.features)
    out = model.run(np.zeros((2, len(model.spec.features)), dtype=np.float32))
    assert out.shape == (2, 2)
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_flipped_byte_is_a_sha256_mismatch_and_the_store_keeps_the_good_model(
    models_dir: Path,
) -> None:
    store = ModelStore(models_dir, NAME)
    good = store.current
    _flip_byte(models_dir / "pmu_fault.onnx")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        store.reload()
    assert store.current is good
    assert store.last_error is not None and "sha256" in str(store.last_error)
    # The kept model still works.
    assert store.current.run(np.zeros((1, len(good.spec.features)), np.float32)).shape == (1, 2)


def test_reload_swaps_in_a_new_version_that_passes(models_dir: Path) -> None:
    store = ModelStore(models_dir, NAME)
    _edit_manifest(models_dir, version="1.0.1")
    new = store.reload()
    assert store.current is new and new.ref == "pmu_fault@1.0.1"
    assert store.last_error is None


def test_unknown_feature_is_named(models_dir: Path) -> None:
    spec = json.loads((models_dir / "manifest.json").read_text())["models"][0]
    features = ["no_such_feature", *spec["features"][1:]]
    _edit_manifest(models_dir, features=features)
    with pytest.raises(ModelError, match=r"unknown feature.*no_such_feature"):
        load_model(models_dir, NAME)


def test_manifest_width_that_does_not_match_the_graph_is_refused(models_dir: Path) -> None:
    spec = json.loads((models_dir / "manifest.json").read_text())["models"][0]
    fewer = spec["features"][:-1]
    _edit_manifest(
        models_dir,
        features=fewer,
        input={"name": "X", "shape": [None, len(fewer)], "dtype": "float32"},
        explain=None,
        self_check=None,
    )
    with pytest.raises(ModelError, match=f"graph input width {len(fewer) + 1}"):
        load_model(models_dir, NAME)


def test_input_shape_that_disagrees_with_the_feature_list_is_refused(models_dir: Path) -> None:
    _edit_manifest(models_dir, input={"name": "X", "shape": [None, 3], "dtype": "float32"})
    with pytest.raises(ModelError, match=r"input\.shape: width 3"):
        load_model(models_dir, NAME)


def test_missing_model_file_is_a_model_error(models_dir: Path) -> None:
    (models_dir / "pmu_fault.onnx").unlink()
    with pytest.raises(ModelError, match="cannot read"):
        load_model(models_dir, NAME)


def test_missing_manifest_and_unknown_name_are_model_errors(models_dir: Path) -> None:
    with pytest.raises(ModelError, match="not in"):
        load_model(models_dir, "no_such_model")
    (models_dir / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest"):
        load_model(models_dir, NAME)


def test_garbage_with_a_matching_hash_is_wrapped_from_onnxruntime(models_dir: Path) -> None:
    garbage = b"not an onnx model" * 10
    (models_dir / "pmu_fault.onnx").write_bytes(garbage)
    _edit_manifest(models_dir, sha256=hashlib.sha256(garbage).hexdigest())
    with pytest.raises(ModelError, match="onnxruntime") as info:
        load_model(models_dir, NAME)
    assert info.value.__cause__ is not None


def test_self_check_mismatch_is_refused(models_dir: Path) -> None:
    spec = json.loads((models_dir / "manifest.json").read_text())["models"][0]
    check = spec["self_check"]
    check["scores"] = [1.0 - s for s in check["scores"]]
    _edit_manifest(models_dir, self_check=check)
    with pytest.raises(ModelError, match="self-check"):
        load_model(models_dir, NAME)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"thresholds": {"raise": 0.3, "clear": 0.7}}, "clear must be below raise"),
        ({"positive_class": "boom"}, "positive_class"),
        ({"sha256": "xyz"}, "sha256: must be 64 hex"),
        ({"file": "../etc/passwd"}, "plain file name"),
        ({"alert": {"kind": "pmu_fault", "severity": "loud"}}, "severity"),
        ({"kind": "regressor"}, "kind"),
    ],
    ids=["hysteresis", "positive-class", "sha-format", "path-escape", "severity", "kind"],
)
def test_bad_manifest_entries_name_their_key(
    models_dir: Path, change: dict[str, Any], message: str
) -> None:
    _edit_manifest(models_dir, **change)
    with pytest.raises(ModelError, match=message):
        load_model(models_dir, NAME)


def test_a_store_cannot_start_without_a_good_model(models_dir: Path) -> None:
    _flip_byte(models_dir / "pmu_fault.onnx")
    with pytest.raises(ModelError, match="sha256"):
        ModelStore(models_dir, NAME)
