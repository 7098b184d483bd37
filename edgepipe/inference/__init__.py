"""ONNX model inference under the model contract (design.md "Models are data").

``load_model`` / ``ModelStore`` verify a model against ``models/manifest.json`` before
use; ``OnnxDetector`` runs it as a pipeline Detector.
"""

from edgepipe.inference.loader import LoadedModel, ModelStore, load_model
from edgepipe.inference.manifest import ModelKind, ModelSpec, read_manifest
from edgepipe.inference.onnx_detector import DetectorStats, OnnxDetector

__all__ = [
    "DetectorStats",
    "LoadedModel",
    "ModelKind",
    "ModelSpec",
    "ModelStore",
    "OnnxDetector",
    "load_model",
    "read_manifest",
]
