"""``[capture]``: where and how `edgepipe run` records what its sources report."""

from __future__ import annotations

__all__ = ["CaptureConfig"]

from dataclasses import dataclass

from edgepipe.core.tables import check

_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Recording settings.

    ``dir``: the capture directory; ``segment_s`` / ``segment_bytes``: a segment is closed
    and a new one opened when either is reached; ``flush_s`` (<= 10): the most a crash can
    lose of the open segment; ``max_bytes`` / ``max_age_s``: retention, the oldest closed
    segments are deleted beyond either, so recording never fills the disk;
    ``max_pending_rows``: rows held between flushes (beyond it the oldest are dropped,
    counted and logged); ``fsync``: push each flush to the disk, so a power loss (not only
    a process crash) loses at most ``flush_s`` too; ``raw_frames``: also record the exact
    wire frames of the sources that hand them over (PMUs, C37.118.2), under ``raw/``,
    with the same rotation, flush and retention (their frames count in
    ``max_pending_rows``).
    """

    dir: str = ""
    enabled: bool = True
    segment_s: float = 300.0
    segment_bytes: int = 64 * _MIB
    flush_s: float = 1.0
    max_bytes: int = 1024 * _MIB
    max_age_s: float = 7 * 86400.0
    max_pending_rows: int = 1_000_000
    fsync: bool = True
    raw_frames: bool = False

    def __post_init__(self) -> None:
        check(bool(self.dir) or not self.enabled, "dir", "required: the capture directory")
        check(self.segment_s > 0, "segment_s", "must be > 0")
        check(self.segment_bytes >= 4096, "segment_bytes", "must be >= 4096")
        check(0 < self.flush_s <= 10, "flush_s", "must be in (0, 10] seconds")
        check(self.max_bytes >= self.segment_bytes, "max_bytes", "must be >= segment_bytes")
        check(self.max_age_s > 0, "max_age_s", "must be > 0")
        check(self.max_pending_rows >= 1, "max_pending_rows", "must be >= 1")
