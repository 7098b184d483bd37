"""Capture and replay support: record SampleBatches into Arrow IPC segments, read them back.

Imports only the core (plus pyarrow/numpy). The format is described in
``edgepipe.capture._format`` and ``docs/capture.md``.
"""

from edgepipe.capture._format import FORMAT_VERSION, info_from_json, info_to_json, safe_name
from edgepipe.capture.config import CaptureConfig
from edgepipe.capture.info import RawSummary, StreamSummary, summarize, summarize_raw
from edgepipe.capture.reader import Capture, Event, Part, RawFrames, read_capture
from edgepipe.capture.recorder import Recorder
from edgepipe.capture.writer import CaptureWriter, WriterStats

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
