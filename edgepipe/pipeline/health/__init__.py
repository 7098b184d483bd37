"""Asset health: transformer thermal model (IEEE C57.91), DGA (Duval, IEC 60599),
health index, and the plants the device simulators run. Imports the core only."""

from edgepipe.pipeline.health.config import HealthConfig
from edgepipe.pipeline.health.dga import GasLimits, Zone, duval_triangle_1
from edgepipe.pipeline.health.dga_detector import DGA_FEATURES, DgaDetector, dga_features
from edgepipe.pipeline.health.index import HealthIndex, health_index
from edgepipe.pipeline.health.plant import DgaPlant, TransformerPlant
from edgepipe.pipeline.health.thermal import ThermalParams, aging_factor
from edgepipe.pipeline.health.transformer import (
    TRANSFORMER_FEATURES,
    TransformerDetector,
    transformer_features,
)

__all__ = [
    "DGA_FEATURES",
    "DgaDetector",
    "DgaPlant",
    "GasLimits",
    "HealthConfig",
    "HealthIndex",
    "TRANSFORMER_FEATURES",
    "ThermalParams",
    "TransformerDetector",
    "TransformerPlant",
    "Zone",
    "aging_factor",
    "dga_features",
    "duval_triangle_1",
    "health_index",
    "transformer_features",
]
