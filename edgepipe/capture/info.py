"""`edgepipe capture info`: what a capture holds, per stream.

Gaps are counted on the reporting-rate grid (C37.118.2-2011 6.3: every frame has a slot
``k / rate``): a step between consecutive rows of more than 1.5 periods is a gap, and the
frames it skipped are ``missing``.
"""

from __future__ import annotations

__all__ = ["RawSummary", "StreamSummary", "summarize", "summarize_raw"]

from dataclasses import dataclass

import numpy as np

from edgepipe.capture.reader import Capture
from edgepipe.core import BAD_QUALITY


@dataclass(frozen=True, slots=True)
class StreamSummary:
    stream: str
    source: str
    asset: str
    rate_hz: float
    channels: tuple[str, ...]
    rows: int
    start_ns: int
    end_ns: int
    gaps: int
    missing: int  # frames absent inside gaps
    bad_quality: int  # rows with any of BAD_QUALITY set
    nan_values: int
    segments: int

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def summarize(capture: Capture) -> list[StreamSummary]:
    """One summary per stream (its parts together; the last layout's channels)."""
    out = []
    for stream in capture.streams:
        parts = [p for p in capture.parts if p.info.stream == stream]
        info = parts[-1].info
        times = np.concatenate([p.times_ns for p in parts])
        quality = np.concatenate([p.quality for p in parts])
        nan = sum(int(np.isnan(p.values).sum()) for p in parts)
        gaps = missing = 0
        if info.rate_hz > 0 and len(times) > 1:
            step = np.diff(np.sort(times)) * info.rate_hz / 1e9
            big = step[step > 1.5]
            gaps, missing = len(big), int(np.rint(big - 1).sum())
        out.append(
            StreamSummary(
                stream,
                info.source,
                info.asset,
                info.rate_hz,
                tuple(c.name for c in info.channels),
                len(times),
                int(times.min()) if len(times) else 0,
                int(times.max()) if len(times) else 0,
                gaps,
                missing,
                int(((quality & int(BAD_QUALITY)) != 0).sum()),
                nan,
                sum(p.segments for p in parts),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class RawSummary:
    """The raw wire frames of one source (``raw_frames = true``)."""

    raw: str  # the source name
    frames: int
    bytes: int
    start_ns: int  # first and last receipt time
    end_ns: int
    segments: int

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def summarize_raw(capture: Capture) -> list[RawSummary]:
    """One summary per source with raw frames."""
    return [
        RawSummary(
            r.source,
            len(r),
            sum(len(f) for f in r.frames),
            int(r.times_ns.min()) if len(r) else 0,
            int(r.times_ns.max()) if len(r) else 0,
            r.segments,
        )
        for r in capture.raw
    ]
