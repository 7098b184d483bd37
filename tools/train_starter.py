"""Train the starter PMU fault model on simulator data and publish it into ``models/``.

``make models`` runs this. Steps: simulate scenarios (``tools/starter_data.py``), split
them by scenario (never scattering one scenario's windows across train and test), fit a
small gradient-boosted tree classifier, export it with skl2onnx (zipmap off), check
sklearn/onnxruntime parity, write ``pmu_fault.onnx``, ``manifest.json`` and the model
card ``cards/pmu_fault.md``, then load it back through the service's own loader.

Usage: ``python tools/train_starter.py [--models-dir models] [--scenarios 240]``
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import skl2onnx  # noqa: E402
import sklearn  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.metrics import f1_score, precision_score, recall_score  # noqa: E402
from starter_data import dataset  # noqa: E402

from edgepipe.core import Severity  # noqa: E402
from edgepipe.inference.loader import load_model  # noqa: E402
from edgepipe.inference.manifest import (  # noqa: E402
    Explain,
    ModelKind,
    ModelSpec,
    SelfCheck,
    merge_manifest,
)
from edgepipe.pipeline.features import FEATURE_NAMES  # noqa: E402

NAME = "pmu_fault"
VERSION = "1.0.0"
CLASSES = ("normal", "fault")
RAISE_AT, CLEAR_AT = 0.7, 0.3
TEST_EVERY = 4  # every 4th scenario (by seed) is held out for the test split
# Voltage, frequency and angle features only: every PMU reports those, while current
# phasors are often absent (a window with a NaN model feature is not scored). The
# data-quality fractions are left to the data-quality detector.
MODEL_FEATURES = (
    "v_pu_min",
    "v_pu_max",
    "v_pu_last",
    "v_pu_std",
    "v_pu_range",
    "v1_pu",
    "v2_pu",
    "v0_pu",
    "v_unbalance_pct",
    "freq_dev_min_hz",
    "freq_dev_max_hz",
    "freq_std_hz",
    "freq_range_hz",
    "rocof_abs_max_hz_s",
    "rocof_fit_hz_s",
    "angle_jump_deg",
)
F32 = npt.NDArray[np.float32]


def fit(x: F32, y: npt.NDArray[np.int64]) -> GradientBoostingClassifier:
    # Shallow trees, few of them: a few microseconds per window in onnxruntime.
    model = GradientBoostingClassifier(
        n_estimators=60, max_depth=3, learning_rate=0.15, subsample=0.8, random_state=0
    )
    model.fit(x, y)
    return model


def export(model: GradientBoostingClassifier, n_features: int) -> bytes:
    onx = to_onnx(
        model,
        np.zeros((1, n_features), dtype=np.float32),
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    return bytes(onx.SerializeToString())


def session(data: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def parity(model: GradientBoostingClassifier, sess: ort.InferenceSession, x: F32) -> float:
    """Labels must be identical and probabilities within 1e-5; return the worst gap."""
    label, proba = sess.run(["label", "probabilities"], {"X": x})
    if not np.array_equal(label, model.predict(x)):
        raise SystemExit("parity: onnxruntime labels differ from sklearn")
    gap = float(np.max(np.abs(proba - model.predict_proba(x))))
    if gap > 1e-5:
        raise SystemExit(f"parity: probabilities differ by {gap:.3g} > 1e-5")
    return gap


def latency_us(sess: ort.InferenceSession, x: F32, batch: int, reps: int = 2000) -> float:
    """Median µs per window of ``sess.run`` at ``batch`` rows."""
    rows = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])))
    for _ in range(50):
        sess.run(["probabilities"], {"X": rows})
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        sess.run(["probabilities"], {"X": rows})
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e3 / batch


def data_hash(x: F32, y: npt.NDArray[np.int64], seeds: list[int]) -> str:
    h = hashlib.sha256()
    h.update(repr((MODEL_FEATURES, seeds)).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(y.astype(np.int64).tobytes())
    return h.hexdigest()


def write_card(path: Path, facts: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Model card: {NAME} {VERSION}",
        "",
        "Fault-vs-normal classifier for PMU windows (30 frames at 60 frames/s, cut every 3",
        "frames). Written by `tools/train_starter.py`; do not edit.",
        "",
        "## Intended use",
        "Flag a window that holds a fault-induced voltage sag, as a second opinion beside the",
        "physics/rule detectors. Starter model: trained on *simulated* data only. Re-train",
        "or at least re-threshold on site captures before trusting it for paging.",
        "",
        "## Training data",
        "`adapters.c37118.scenario.synthesize` (the PMU simulator's trajectories), 3 PMUs per",
        "scenario, 4 s each: normal operation (load fluctuation 1-10 %, TVE noise 0.2-1 %),",
        "frequency excursions and sustained 1-6 % voltage steps (hard negatives), and",
        "fault sags to 0.2-0.8 pu remaining voltage,",
        "3-10 cycles, random onset, faulted phases and set of PMUs that see the fault.",
        "Windows and features come from the pipeline's own `Windower` and `pmu_features`.",
        "A window is labelled *fault* when any of its samples is inside the sag.",
        "Split by scenario: every 4th scenario seed is test only.",
        "",
        "## Results (test split)",
    ]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += [
        "",
        "## Limits",
        "- Sags to above 0.8 pu or shorter than 3 cycles were not in training.",
        "- Sustained voltage steps larger than 6 % were not in training as negatives: the",
        "  model may call them faults. Simulated data is cleaner than the field: the test",
        "  scores below are an upper bound, not an expectation for site data.",
        "- Windows with any NaN in the model's features are not scored (data-quality path).",
        f"- Thresholds: raise at P(fault) >= {RAISE_AT}, clear at <= {CLEAR_AT}.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--scenarios", type=int, default=240)
    args = ap.parse_args(argv)
    t_start = time.monotonic()

    seeds = list(range(args.scenarios))
    test_seeds = [s for s in seeds if s % TEST_EVERY == TEST_EVERY - 1]
    train_seeds = [s for s in seeds if s % TEST_EVERY != TEST_EVERY - 1]
    x_all, y_train, _ = dataset(train_seeds)
    x_tall, y_test, _ = dataset(test_seeds)
    # float32 end to end: onnxruntime sees float32, so sklearn must train on the same values.
    cols = [FEATURE_NAMES.index(f) for f in MODEL_FEATURES]
    x_train = x_all[:, cols].astype(np.float32)
    x_test = x_tall[:, cols].astype(np.float32)
    if not (np.isfinite(x_train).all() and np.isfinite(x_test).all()):
        raise SystemExit("simulated windows produced non-finite features")

    model = fit(x_train, y_train)
    pred = model.predict(x_test)
    data = export(model, x_train.shape[1])
    sess = session(data)
    gap = parity(model, sess, x_test)

    normal = x_train[y_train == 0]
    scale = np.maximum(normal.std(axis=0), 1e-6)
    pick = np.concatenate([np.flatnonzero(y_test == 1)[:3], np.flatnonzero(y_test == 0)[:3]])
    check_x = x_test[pick]
    (check_p,) = sess.run(["probabilities"], {"X": check_x})
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }
    spec = ModelSpec(
        name=NAME,
        version=VERSION,
        file=f"{NAME}.onnx",
        sha256=hashlib.sha256(data).hexdigest(),
        kind=ModelKind.CLASSIFIER,
        features=MODEL_FEATURES,
        input_name="X",
        input_shape=(None, len(MODEL_FEATURES)),
        outputs=("label", "probabilities"),
        score_output="probabilities",
        classes=CLASSES,
        positive_class="fault",
        raise_at=RAISE_AT,
        clear_at=CLEAR_AT,
        alert_kind="pmu_fault",
        severity=Severity.CRITICAL,
        training_data_sha256=data_hash(x_train, y_train, train_seeds),
        created_with=versions,
        explain=Explain(
            tuple(float(v) for v in model.feature_importances_),
            tuple(float(v) for v in normal.mean(axis=0)),
            tuple(float(v) for v in scale),
        ),
        self_check=SelfCheck(
            tuple(tuple(float(v) for v in row) for row in check_x),
            tuple(float(v) for v in check_p[:, 1]),
        ),
    )
    args.models_dir.mkdir(parents=True, exist_ok=True)
    (args.models_dir / spec.file).write_bytes(data)
    merge_manifest(args.models_dir, [spec])
    # A fixed feature matrix with sklearn's answers, for the parity test of the committed
    # model (tests/unit/inference) without shipping a pickle.
    fixed = x_test[
        np.concatenate([np.flatnonzero(y_test == 1)[::10], np.flatnonzero(y_test == 0)[::100]])
    ]
    np.savez_compressed(
        args.models_dir / f"{NAME}.parity.npz",
        x=fixed,
        proba=model.predict_proba(fixed),
        label=model.predict(fixed),
    )
    loaded = load_model(args.models_dir, NAME)  # the service's own checks, end to end

    p_test = sess.run(["probabilities"], {"X": x_test})[0][:, 1]
    alarm = p_test >= RAISE_AT
    facts = {
        "scenarios (train / test)": f"{len(train_seeds)} / {len(test_seeds)}",
        "windows (train / test)": f"{len(y_train)} / {len(y_test)}",
        "fault windows in test": f"{int(y_test.sum())}",
        "precision / recall / F1 (argmax)": (
            f"{precision_score(y_test, pred):.3f} / {recall_score(y_test, pred):.3f} / "
            f"{f1_score(y_test, pred):.3f}"
        ),
        f"precision / recall at raise threshold {RAISE_AT}": (
            f"{precision_score(y_test, alarm):.3f} / {recall_score(y_test, alarm):.3f}"
        ),
        "sklearn vs onnxruntime": f"labels identical, max probability gap {gap:.2g}",
        "onnxruntime latency, batch 1": f"{latency_us(sess, x_test, 1):.1f} µs/window",
        "onnxruntime latency, batch 50": f"{latency_us(sess, x_test, 50, 500):.2f} µs/window",
        "measured on": f"{platform.machine()}, 1 intra-op thread, onnxruntime {ort.__version__}",
        "sha256": spec.sha256,
    }
    write_card(args.models_dir / "cards" / f"{NAME}.md", facts)
    for k, v in facts.items():
        print(f"{k}: {v}")
    print(f"wrote {loaded.path} ({len(data)} bytes) in {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
