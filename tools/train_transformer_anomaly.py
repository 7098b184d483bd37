"""Train the transformer anomaly model on normal simulator data and add it to ``models/``.

``make models`` runs this after the PMU starter model. Steps: run the transformer plant
(``edgepipe.pipeline.health.TransformerPlant``, the simulator's own model) in its
"normal" scenario for several simulated weeks with different seeds, cut 30-row windows
through the pipeline's own ``transformer_features``, fit a Gaussian model of normal
operation (mean and covariance, Ledoit-Wolf shrunk), and export the Mahalanobis
distance per feature as a small ONNX graph::

    score = sum(((x - mean) @ W) ** 2) / d        W = whitening matrix (Cholesky of the
                                                   inverse covariance)

so a score near 1 is ordinary and larger is stranger. Thresholds: raise at the 99.9th
percentile of the training scores, clear at the 99th. The manifest entry (kind
"anomaly") is merged into ``models/manifest.json`` next to the other models.

Usage: ``python tools/train_transformer_anomaly.py [--models-dir models] [--days 28]``
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.covariance import LedoitWolf  # noqa: E402

from edgepipe.core import ChannelInfo, ChannelKind, Quality, Severity, StreamInfo, Window  # noqa: E402
from edgepipe.inference.loader import load_model  # noqa: E402
from edgepipe.inference.manifest import (  # noqa: E402
    Explain,
    ModelKind,
    ModelSpec,
    SelfCheck,
    merge_manifest,
)
from edgepipe.pipeline.health import (  # noqa: E402
    TRANSFORMER_FEATURES,
    ThermalParams,
    TransformerPlant,
    transformer_features,
)

NAME = "transformer_anomaly"
VERSION = "1.0.0"
#: Every transformer monitor reports these; a measured hot spot (winding_c) is optional.
MODEL_FEATURES = tuple(f for f in TRANSFORMER_FEATURES if f != "winding_c_max")
CHANNELS = ("load_a", "load_b", "load_c", "ambient_c", "top_oil_c", "winding_c", "cooling_stage")
ROW_S = 60.0  # one row per model minute (time_scale 60 at a 1 s poll)
WINDOW = 30


def windows(seed: int, days: float) -> list[Window]:
    params = {"rated_current_a": 1000.0, "time_scale": 60.0}
    channels = tuple(ChannelInfo(c, ChannelKind.ANALOG) for c in CHANNELS)
    info = StreamInfo("sim/1", "sim", "T", channels, rate_hz=1.0, kind="transformer",
                      params=tuple(params.items()))  # fmt: skip
    plant = TransformerPlant(ThermalParams.from_params(params), 1000.0, "normal", 60.0, seed=seed)
    n = int(days * 86_400 / ROW_S)
    offset = (seed % 24) * 3600 / 60.0  # start at a different hour of the day
    rows = np.array([[plant.values(offset + k)[c] for c in CHANNELS] for k in range(n)])
    times = (np.arange(n, dtype=np.int64) + 1_700_000_000) * 1_000_000_000
    quality = np.zeros(n, dtype=np.uint16) | np.uint16(Quality.RECEIPT_TIME)
    return [Window(info, times[i : i + WINDOW], rows[i : i + WINDOW], quality[i : i + WINDOW])
            for i in range(0, n - WINDOW, 5)]  # fmt: skip


def graph(mean: np.ndarray, w: np.ndarray) -> bytes:
    d = len(mean)
    nodes = [
        helper.make_node("Sub", ["X", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "W"], ["z"]),
        helper.make_node("Mul", ["z", "z"], ["z2"]),
        helper.make_node("ReduceSum", ["z2", "axes"], ["total"], keepdims=1),
        helper.make_node("Div", ["total", "d"], ["score"]),
    ]
    inits = [
        numpy_helper.from_array(mean.astype(np.float32), "mean"),
        numpy_helper.from_array(w.astype(np.float32), "W"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array([float(d)], dtype=np.float32), "d"),
    ]
    g = helper.make_graph(
        nodes, NAME,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        inits,
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--days", type=float, default=28.0)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)

    cols = [TRANSFORMER_FEATURES.index(f) for f in MODEL_FEATURES]
    parts = [transformer_features(windows(s, args.days / args.seeds)) for s in range(args.seeds)]
    x = np.concatenate(parts)[:, cols].astype(np.float32)
    if not np.isfinite(x).all():
        raise SystemExit("simulated windows produced non-finite features")
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), 1e-6)
    cov = LedoitWolf().fit((x - mean) / scale).covariance_
    # Whitening in standardised units, folded back: W = diag(1/scale) @ chol(inv(cov)).
    w = np.diag(1.0 / scale) @ np.linalg.cholesky(np.linalg.inv(cov))
    data = graph(mean, w)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    scores = sess.run(["score"], {"X": x})[0][:, 0]
    raise_at = float(np.quantile(scores, 0.999))
    clear_at = float(np.quantile(scores, 0.99))
    check_x = x[:: max(len(x) // 6, 1)][:6]
    check_s = sess.run(["score"], {"X": check_x})[0][:, 0]
    spec = ModelSpec(
        name=NAME, version=VERSION, file=f"{NAME}.onnx", sha256=hashlib.sha256(data).hexdigest(),
        kind=ModelKind.ANOMALY, features=MODEL_FEATURES, input_name="X",
        input_shape=(None, len(MODEL_FEATURES)), outputs=("score",), score_output="score",
        classes=(), positive_class="", raise_at=round(raise_at, 4), clear_at=round(clear_at, 4),
        alert_kind="transformer_anomaly", severity=Severity.WARNING,
        training_data_sha256=hashlib.sha256(x.tobytes()).hexdigest(),
        created_with={"python": platform.python_version(), "numpy": np.__version__,
                      "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        explain=Explain(tuple(1.0 for _ in cols), tuple(float(v) for v in mean),
                        tuple(float(v) for v in scale)),
        self_check=SelfCheck(tuple(tuple(float(v) for v in r) for r in check_x),
                             tuple(float(v) for v in check_s)),
    )  # fmt: skip
    args.models_dir.mkdir(parents=True, exist_ok=True)
    (args.models_dir / spec.file).write_bytes(data)
    merge_manifest(args.models_dir, [spec])
    load_model(args.models_dir, NAME, known_features=TRANSFORMER_FEATURES)  # the service's checks
    print(f"{NAME}: {len(x)} windows, raise {raise_at:.3f}, clear {clear_at:.3f}, "
          f"{len(data)} bytes -> {args.models_dir / spec.file}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
