"""Core records, errors and clocks. Imports nothing else of edgepipe."""

from edgepipe.core.clock import Clock, SystemClock, VirtualClock
from edgepipe.core.errors import (
    ConfigError,
    ConfigIssue,
    DeliveryError,
    EdgepipeError,
    ModelError,
    ProtocolError,
    TransportError,
)
from edgepipe.core.records import (
    BAD_QUALITY,
    Alert,
    AlertState,
    ChannelInfo,
    ChannelKind,
    Quality,
    SampleBatch,
    Score,
    Severity,
    StreamInfo,
    Window,
)
from edgepipe.core.score_batch import ScoreBatch
from edgepipe.core.source import Sink, Source, SourceStatus, StatusKind

__all__ = [
    "BAD_QUALITY",
    "Alert",
    "AlertState",
    "ChannelInfo",
    "ChannelKind",
    "Clock",
    "ConfigError",
    "ConfigIssue",
    "DeliveryError",
    "EdgepipeError",
    "ModelError",
    "ProtocolError",
    "Quality",
    "SampleBatch",
    "Score",
    "ScoreBatch",
    "Severity",
    "Sink",
    "Source",
    "SourceStatus",
    "StatusKind",
    "StreamInfo",
    "SystemClock",
    "TransportError",
    "VirtualClock",
    "Window",
]
