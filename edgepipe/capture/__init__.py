"""Capture and replay support: record SampleBatches into Arrow IPC segments, read them back.

Imports only the core (plus pyarrow/numpy). The format is described in
``edgepipe.capture._format`` and ``docs/capture.md``.

The names below load their module on first use (PEP 562): the service imports
``CaptureConfig`` to read every config, and pyarrow (about 45 MB resident) is loaded only
when a capture is written or read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepipe.capture._format import FORMAT_VERSION, info_from_json, info_to_json, safe_name
    from edgepipe.capture.config import CaptureConfig
    from edgepipe.capture.info import RawSummary, StreamSummary, summarize, summarize_raw
    from edgepipe.capture.reader import Capture, Event, Part, RawFrames, read_capture
    from edgepipe.capture.recorder import Recorder
    from edgepipe.capture.writer import CaptureWriter, WriterStats

_MODULES = {
    "FORMAT_VERSION": "_format",
    "info_from_json": "_format",
    "info_to_json": "_format",
    "safe_name": "_format",
    "CaptureConfig": "config",
    "RawSummary": "info",
    "StreamSummary": "info",
    "summarize": "info",
    "summarize_raw": "info",
    "Capture": "reader",
    "Event": "reader",
    "Part": "reader",
    "RawFrames": "reader",
    "read_capture": "reader",
    "Recorder": "recorder",
    "CaptureWriter": "writer",
    "WriterStats": "writer",
}

__all__ = [
    "FORMAT_VERSION",
    "CaptureConfig",
    "CaptureWriter",
    "WriterStats",
    "Recorder",
    "Capture",
    "Event",
    "Part",
    "RawFrames",
    "read_capture",
    "StreamSummary",
    "summarize",
    "RawSummary",
    "summarize_raw",
    "info_from_json",
    "info_to_json",
    "safe_name",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
