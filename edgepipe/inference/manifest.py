"""The model manifest: what a model file is, what it expects and how to read its output.

design.md "Models are data": ``models/manifest.json`` lists every model the site may run.
One manifest for the whole directory (not one per model) so that a release swaps the set
of models with a single file write, and an operator reads one file to see what runs.

Layout (``schema`` 1)::

    {"schema": 1,
     "models": [{"name": "pmu_fault", "version": "1.0.0", "file": "pmu_fault.onnx",
                 "sha256": "<hex of the ONNX file>", "kind": "classifier",
                 "features": ["v_min_pu", ...],        # order = the model's input columns
                 "input": {"name": "X", "shape": [null, 12], "dtype": "float32"},
                 "outputs": ["label", "probabilities"], "score_output": "probabilities",
                 "classes": ["normal", "fault"], "positive_class": "fault",
                 "thresholds": {"raise": 0.8, "clear": 0.3},
                 "alert": {"kind": "pmu_fault", "severity": "critical"},
                 "training_data_sha256": "<hex>", "created_with": {"onnx": "1.23.2"},
                 "explain": {"importance": [...], "mean": [...], "scale": [...]},
                 "self_check": {"input": [[...]], "scores": [...]}}]}

Parsing is strict: a wrong or missing key raises ``ModelError`` naming the key path.
"""

from __future__ import annotations

__all__ = [
    "MANIFEST_FILE",
    "Explain",
    "ModelKind",
    "ModelSpec",
    "SelfCheck",
    "parse_manifest",
    "read_manifest",
    "merge_manifest",
    "write_manifest",
]

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepipe.core import ModelError, Severity

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


class ModelKind(enum.StrEnum):
    CLASSIFIER = "classifier"  # score = probability of ``positive_class``
    ANOMALY = "anomaly"  # score = first column of ``score_output``, larger is worse


@dataclass(frozen=True, slots=True)
class Explain:
    """Per-feature data for evidence: global importance and the training mean/scale.

    The detector ranks a window's features by ``importance * |value - mean| / scale`` —
    a cheap, model-agnostic "what stood out" that a field engineer can check by hand.
    """

    importance: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """Rows the trainer scored; the loader re-scores them and demands the same scores."""

    inputs: tuple[tuple[float, ...], ...]
    scores: tuple[float, ...]
    tolerance: float = 1e-5


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model entry of the manifest, validated."""

    name: str
    version: str
    file: str
    sha256: str
    kind: ModelKind
    features: tuple[str, ...]
    input_name: str
    input_shape: tuple[int | None, ...]
    outputs: tuple[str, ...]
    score_output: str
    classes: tuple[str, ...]
    positive_class: str
    raise_at: float
    clear_at: float
    alert_kind: str
    severity: Severity
    training_data_sha256: str
    created_with: Mapping[str, str] = field(default_factory=dict)
    explain: Explain | None = None
    self_check: SelfCheck | None = None

    @property
    def ref(self) -> str:
        """``name@version``, the ``model`` field of every Score this model produces."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """The manifest entry, as ``parse_manifest`` reads it back."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "kind": str(self.kind),
            "features": list(self.features),
            "input": {"name": self.input_name, "shape": list(self.input_shape), "dtype": "float32"},
            "outputs": list(self.outputs),
            "score_output": self.score_output,
            # Anomaly models have neither: omitted, as parse_manifest reads them as optional.
            **({"classes": list(self.classes)} if self.classes else {}),
            **({"positive_class": self.positive_class} if self.positive_class else {}),
            "thresholds": {"raise": self.raise_at, "clear": self.clear_at},
            "alert": {"kind": self.alert_kind, "severity": str(self.severity)},
            "training_data_sha256": self.training_data_sha256,
            "created_with": dict(self.created_with),
        }
        if self.explain is not None:
            out["explain"] = {
                "importance": list(self.explain.importance),
                "mean": list(self.explain.mean),
                "scale": list(self.explain.scale),
            }
        if self.self_check is not None:
            out["self_check"] = {
                "input": [list(r) for r in self.self_check.inputs],
                "scores": list(self.self_check.scores),
                "tolerance": self.self_check.tolerance,
            }
        return out


class _Reader:
    """Typed access to one JSON object that names the key path in every error."""

    def __init__(self, obj: object, path: str) -> None:
        if not isinstance(obj, Mapping):
            raise ModelError(f"manifest {path}: must be an object")
        self._obj: Mapping[str, Any] = obj
        self.path = path

    def has(self, key: str) -> bool:
        return key in self._obj

    def _get(self, key: str) -> Any:
        try:
            return self._obj[key]
        except KeyError:
            raise ModelError(f"manifest {self.path}.{key}: missing") from None

    def obj(self, key: str) -> _Reader:
        return _Reader(self._get(key), f"{self.path}.{key}")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise ModelError(f"manifest {self.path}.{key}: must be a non-empty string")
        return value

    def num(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"manifest {self.path}.{key}: must be a number")
        if not math.isfinite(value):
            raise ModelError(f"manifest {self.path}.{key}: must be finite")
        return float(value)

    def strs(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ModelError(f"manifest {self.path}.{key}: must be a list of strings")
        return tuple(value)

    def nums(self, key: str) -> tuple[float, ...]:
        return _floats(self._get(key), f"{self.path}.{key}")

    def raw(self, key: str) -> Any:
        return self._get(key)


def _floats(value: object, path: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ModelError(f"manifest {path}: must be a list of finite numbers")
    return tuple(float(v) for v in value)


def _shape(value: object, path: str) -> tuple[int | None, ...]:
    if not isinstance(value, list) or not value:
        raise ModelError(f"manifest {path}: must be a list like [null, n_features]")
    dims: list[int | None] = []
    for d in value:
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d <= 0):
            raise ModelError(f"manifest {path}: dimensions must be positive ints or null")
        dims.append(d)
    return tuple(dims)


def _explain(r: _Reader, n: int) -> Explain:
    explain = Explain(r.nums("importance"), r.nums("mean"), r.nums("scale"))
    for key in ("importance", "mean", "scale"):
        if len(getattr(explain, key)) != n:
            raise ModelError(f"manifest {r.path}.{key}: needs one value per feature ({n})")
    if any(s <= 0 for s in explain.scale):
        raise ModelError(f"manifest {r.path}.scale: must be positive")
    return explain


def _self_check(r: _Reader, n: int) -> SelfCheck:
    rows = r.raw("input")
    if not isinstance(rows, list) or not rows:
        raise ModelError(f"manifest {r.path}.input: must be a non-empty list of rows")
    inputs = tuple(_floats(row, f"{r.path}.input[{i}]") for i, row in enumerate(rows))
    if any(len(row) != n for row in inputs):
        raise ModelError(f"manifest {r.path}.input: rows need {n} values, one per feature")
    scores = r.nums("scores")
    if len(scores) != len(inputs):
        raise ModelError(f"manifest {r.path}.scores: needs one score per input row")
    tolerance = r.num("tolerance") if r.has("tolerance") else 1e-5
    return SelfCheck(inputs, scores, tolerance)


def _spec(r: _Reader) -> ModelSpec:
    inp = r.obj("input")
    thresholds = r.obj("thresholds")
    alert = r.obj("alert")
    features = r.strs("features")
    if len(set(features)) != len(features):
        raise ModelError(f"manifest {r.path}.features: duplicate feature names")
    try:
        kind = ModelKind(r.text("kind"))
    except ValueError:
        raise ModelError(f"manifest {r.path}.kind: must be one of {list(ModelKind)}") from None
    try:
        severity = Severity(alert.text("severity"))
    except ValueError:
        raise ModelError(f"manifest {alert.path}.severity: not a severity") from None
    created = r.raw("created_with") if r.has("created_with") else {}
    if not isinstance(created, dict) or not all(isinstance(v, str) for v in created.values()):
        raise ModelError(f"manifest {r.path}.created_with: must map library to version")
    spec = ModelSpec(
        name=r.text("name"),
        version=r.text("version"),
        file=r.text("file"),
        sha256=r.text("sha256").lower(),
        kind=kind,
        features=features,
        input_name=inp.text("name"),
        input_shape=_shape(inp.raw("shape"), f"{inp.path}.shape"),
        outputs=r.strs("outputs"),
        score_output=r.text("score_output"),
        classes=r.strs("classes") if r.has("classes") else (),
        positive_class=r.text("positive_class") if r.has("positive_class") else "",
        raise_at=thresholds.num("raise"),
        clear_at=thresholds.num("clear"),
        alert_kind=alert.text("kind"),
        severity=severity,
        training_data_sha256=r.text("training_data_sha256"),
        created_with=dict(created),
        explain=_explain(r.obj("explain"), len(features)) if r.has("explain") else None,
        self_check=_self_check(r.obj("self_check"), len(features)) if r.has("self_check") else None,
    )
    _check_consistent(spec, r.path)
    return spec


def _check_consistent(spec: ModelSpec, path: str) -> None:
    if "/" in spec.file or "\\" in spec.file or spec.file.startswith("."):
        raise ModelError(f"manifest {path}.file: must be a plain file name inside models/")
    if len(spec.sha256) != 64 or any(c not in "0123456789abcdef" for c in spec.sha256):
        raise ModelError(f"manifest {path}.sha256: must be 64 hex digits")
    if spec.score_output not in spec.outputs:
        raise ModelError(f"manifest {path}.score_output: {spec.score_output!r} not in outputs")
    if spec.input_shape[-1] != len(spec.features):
        raise ModelError(
            f"manifest {path}.input.shape: width {spec.input_shape[-1]} but "
            f"{len(spec.features)} features are listed"
        )
    if spec.kind is ModelKind.CLASSIFIER and spec.positive_class not in spec.classes:
        raise ModelError(f"manifest {path}.positive_class: must be one of classes")
    # Hysteresis: an alert raised at ``raise`` clears only below ``clear``.
    if not spec.clear_at < spec.raise_at:
        raise ModelError(f"manifest {path}.thresholds: clear must be below raise")


def parse_manifest(data: object) -> dict[str, ModelSpec]:
    """Validate a decoded manifest; return its models by name."""
    top = _Reader(data, "")
    if top.raw("schema") != SCHEMA_VERSION:
        raise ModelError(f"manifest .schema: expected {SCHEMA_VERSION}")
    entries = top.raw("models")
    if not isinstance(entries, list):
        raise ModelError("manifest .models: must be a list")
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(entries):
        spec = _spec(_Reader(entry, f".models[{i}]"))
        if spec.name in specs:
            raise ModelError(f"manifest .models[{i}].name: duplicate model {spec.name!r}")
        specs[spec.name] = spec
    return specs


def read_manifest(models_dir: Path) -> dict[str, ModelSpec]:
    """Read and validate ``models_dir/manifest.json``."""
    path = Path(models_dir) / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"manifest {path}: cannot read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"manifest {path}: not JSON ({exc})") from exc
    return parse_manifest(data)


def merge_manifest(models_dir: Path, specs: Sequence[ModelSpec]) -> Path:
    """Write ``specs`` into the manifest, keeping every other model already listed, so a
    training tool never drops the models it did not train. A missing manifest starts
    empty; an unreadable one raises ``ModelError`` rather than being overwritten."""
    path = Path(models_dir) / MANIFEST_FILE
    mine = {s.name for s in specs}
    others = (
        []
        if not path.exists()
        else [s for n, s in read_manifest(models_dir).items() if n not in mine]
    )
    return write_manifest(models_dir, [*others, *specs])


def write_manifest(models_dir: Path, specs: Sequence[ModelSpec]) -> Path:
    """Write the manifest atomically (temp file + rename), for the training tools."""
    path = Path(models_dir) / MANIFEST_FILE
    body = {"schema": SCHEMA_VERSION, "models": [s.to_json() for s in specs]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
