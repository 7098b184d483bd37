"""Pipeline stages: ring buffers, windows, features, detectors, alerts (core imports only)."""

from edgepipe.pipeline.alerts import (
    ALERT_NAMESPACE,
    AlertConfig,
    AlertEngine,
    AlertStatistics,
    alert_id,
)
from edgepipe.pipeline.detectors import Detector, evaluate_all
from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES, pmu_features, row_signals
from edgepipe.pipeline.ring import RingBuffer, RingSlice, RingStatistics
from edgepipe.pipeline.rules import (
    DEFAULT_RULES,
    DataQualityDetector,
    QualityConfig,
    RuleConfig,
    RulesConfig,
    ThresholdRule,
    build_rules,
)
from edgepipe.pipeline.site import (
    CONTEXT_NAMES,
    SITE_FEATURE_NAMES,
    SiteFeatures,
    moment_ns,
    site_context,
    uses_site_context,
)
from edgepipe.pipeline.site_hold import SiteHold
from edgepipe.pipeline.windows import WindowConfig, Windower, WindowStage, WindowStatistics

__all__ = [
    "RingBuffer",
    "RingSlice",
    "RingStatistics",
    "WindowConfig",
    "WindowStage",
    "WindowStatistics",
    "Windower",
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "pmu_features",
    "row_signals",
    "CONTEXT_NAMES",
    "SITE_FEATURE_NAMES",
    "SiteFeatures",
    "SiteHold",
    "moment_ns",
    "site_context",
    "uses_site_context",
    "Detector",
    "evaluate_all",
    "DEFAULT_RULES",
    "DataQualityDetector",
    "QualityConfig",
    "RuleConfig",
    "RulesConfig",
    "ThresholdRule",
    "build_rules",
    "ALERT_NAMESPACE",
    "AlertConfig",
    "AlertEngine",
    "AlertStatistics",
    "alert_id",
]
