"""Load a model only after it proves it is the model the manifest describes.

design.md "Models are data": the loader verifies the file's sha256, the feature spec
against the pipeline's ``SITE_FEATURE_NAMES`` and the ONNX graph's input, opens an
onnxruntime session and re-scores the manifest's self-check rows. ``ModelStore`` keeps
the last good model when a reload fails any of those checks.
"""

from __future__ import annotations

__all__ = ["LoadedModel", "ModelStore", "load_model"]

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import structlog

from edgepipe.core import ModelError
from edgepipe.inference.manifest import ModelKind, ModelSpec, read_manifest
from edgepipe.pipeline.site import SITE_FEATURE_NAMES

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_log = structlog.get_logger()


@contextlib.contextmanager
def _ort_errors(what: str) -> Iterator[None]:
    """Translate onnxruntime's exceptions (plain ``Exception`` subclasses) at the boundary."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{what}: onnxruntime: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified model: its spec, an open session and where its inputs come from.

    ``columns[i]`` is the index in ``SITE_FEATURE_NAMES`` of the model's i-th input column, so
    ``features[:, columns]`` turns the pipeline's feature matrix into the model's input.
    """

    spec: ModelSpec
    path: Path
    session: Any  # onnxruntime.InferenceSession (untyped library)
    columns: npt.NDArray[np.intp]
    score_column: int

    @property
    def ref(self) -> str:
        return self.spec.ref

    def run(self, x: F32) -> F64:
        """Run the graph on ``x`` (n, k) float32; return the score output (n, m) as float64."""
        return self.run_raw(x).astype(np.float64)

    def run_raw(self, x: F32) -> npt.NDArray[Any]:
        """``run`` without the float64 copy: the score output (n, m) as the graph gives it
        (float32), for the service's path, where every numpy call counts."""
        # try/except in line, not ``_ort_errors``: a generator context manager costs
        # microseconds per call, on a path whose budget is 50 µs per window
        try:
            (out,) = self.session.run([self.spec.score_output], {self.spec.input_name: x})
        except Exception as exc:
            raise ModelError(f"model {self.ref}: onnxruntime: {exc}") from exc
        out = np.asarray(out)
        return out if out.ndim == 2 else out.reshape(x.shape[0], -1)

    def scores(self, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The alert score per row: P(positive class) or the anomaly score (``out``'s dtype)."""
        return out[:, self.score_column]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _columns(spec: ModelSpec, known: Sequence[str]) -> npt.NDArray[np.intp]:
    index = {name: i for i, name in enumerate(known)}
    unknown = [f for f in spec.features if f not in index]
    if unknown:
        raise ModelError(
            f"model {spec.ref}: unknown feature(s) {', '.join(unknown)} "
            "(not produced by the pipeline's SITE_FEATURE_NAMES)"
        )
    return np.array([index[f] for f in spec.features], dtype=np.intp)


def _open_session(spec: ModelSpec, data: bytes) -> Any:
    opts = ort.SessionOptions()
    # One thread, sequential: the box runs many detectors side by side, and at batch
    # sizes of tens of windows thread hand-off costs more than it saves.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    with _ort_errors(f"model {spec.ref}: cannot open {spec.file}"):
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _check_graph(spec: ModelSpec, session: Any) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != spec.input_name:
        names = [i.name for i in inputs]
        raise ModelError(f"model {spec.ref}: graph inputs {names}, manifest says {spec.input_name}")
    shape = list(inputs[0].shape)
    width = shape[-1] if shape else None
    if len(shape) != 2 or width != len(spec.features):
        raise ModelError(
            f"model {spec.ref}: graph input width {width} (shape {shape}) does not match "
            f"the {len(spec.features)} features in the manifest"
        )
    if inputs[0].type != "tensor(float)":
        raise ModelError(f"model {spec.ref}: graph input is {inputs[0].type}, need float32")
    have = {o.name for o in session.get_outputs()}
    missing = [o for o in spec.outputs if o not in have]
    if missing:
        raise ModelError(f"model {spec.ref}: graph lacks output(s) {missing}")


def _score_column(spec: ModelSpec) -> int:
    if spec.kind is ModelKind.CLASSIFIER:
        return spec.classes.index(spec.positive_class)
    return 0


def _self_check(model: LoadedModel) -> None:
    """Warm up the session and prove it computes what the trainer recorded."""
    spec = model.spec
    check = spec.self_check
    rows = check.inputs if check is not None else (tuple(0.0 for _ in spec.features),)
    out = model.run(np.asarray(rows, dtype=np.float32))
    if spec.kind is ModelKind.CLASSIFIER and out.shape[1] != len(spec.classes):
        raise ModelError(
            f"model {spec.ref}: {spec.score_output} has {out.shape[1]} columns "
            f"for {len(spec.classes)} classes"
        )
    got = model.scores(out)
    if not np.all(np.isfinite(got)):
        raise ModelError(f"model {spec.ref}: self-check produced non-finite scores")
    if check is not None:
        worst = float(np.max(np.abs(got - np.asarray(check.scores))))
        if worst > check.tolerance:
            raise ModelError(
                f"model {spec.ref}: self-check scores differ from the manifest by {worst:.3g} "
                f"(tolerance {check.tolerance:g})"
            )


def load_model(
    models_dir: Path | str, name: str, *, known_features: Sequence[str] = SITE_FEATURE_NAMES
) -> LoadedModel:
    """Read the manifest, verify model ``name`` completely and return it ready to run.

    Raises ``ModelError`` naming the failed check: manifest key, missing file, sha256
    mismatch, unknown feature, input width, onnxruntime failure or self-check mismatch.
    """
    models_dir = Path(models_dir)
    specs = read_manifest(models_dir)
    try:
        spec = specs[name]
    except KeyError:
        raise ModelError(f"model {name!r} is not in {models_dir}/manifest.json") from None
    columns = _columns(spec, known_features)
    path = models_dir / spec.file
    try:
        # Hash and load the same bytes, so the file cannot change between check and use.
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"model {spec.ref}: cannot read {path} ({exc.strerror})") from exc
    digest = _sha256(data)
    if digest != spec.sha256:
        raise ModelError(
            f"model {spec.ref}: sha256 mismatch for {spec.file}: "
            f"file {digest[:16]}..., manifest {spec.sha256[:16]}..."
        )
    session = _open_session(spec, data)
    _check_graph(spec, session)
    model = LoadedModel(spec, path, session, columns, _score_column(spec))
    _self_check(model)
    return model


class ModelStore:
    """The current model of one name, swapped only for a model that passes every check.

    Detectors read ``current`` on every evaluation, so a successful ``reload`` takes
    effect at the next window; a failed one changes nothing.
    """

    def __init__(
        self,
        models_dir: Path | str,
        name: str,
        *,
        known_features: Sequence[str] = SITE_FEATURE_NAMES,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.name = name
        self._known = tuple(known_features)
        self._lock = threading.Lock()
        self.last_error: ModelError | None = None
        self._current = load_model(self.models_dir, name, known_features=self._known)
        _log.info("model_loaded", model=self._current.ref, sha256=self._current.spec.sha256)

    @property
    def current(self) -> LoadedModel:
        return self._current

    def reload(self) -> LoadedModel:
        """Load the model again from disk; swap it in only if it passes every check.

        On failure the previous model stays current, ``last_error`` holds the reason and
        the ``ModelError`` is raised for the caller to log.
        """
        with self._lock:
            try:
                new = load_model(self.models_dir, self.name, known_features=self._known)
            except ModelError as exc:
                self.last_error = exc
                raise
            old, self._current, self.last_error = self._current, new, None
        _log.info("model_reloaded", model=new.ref, previous=old.ref, sha256=new.spec.sha256)
        return new
