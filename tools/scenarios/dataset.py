"""Scenario Parquet files -> pipeline windows -> feature rows and window labels.

Each PMU's rows go through the service's own ``Windower`` (30 frames; hop 3 for training,
the service's default hop for evaluation) and ``pmu_features``, so training and serving
share one feature code.
Window labels (class index into ``KINDS``, or ``IGNORE``):

- a window before the event, or any window of a normal run: ``normal``;
- a window holding at least one frame of the event (``event_start_s`` to
  ``event_end_s``; a step event's first post-event frame) at a PMU where the event is
  ``visible``: the event's class;
- windows after the event (recovery swings), and event windows at PMUs that barely see
  the event: ``IGNORE`` (left out of training and of the per-class metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from edgepipe.core import ChannelInfo, ChannelKind, SampleBatch, StreamInfo, Window
from edgepipe.pipeline.features import pmu_features
from edgepipe.pipeline.windows import WindowConfig, Windower
from scenarios.spec import FNOM, KINDS, RATE_HZ

IGNORE = -1
T0_NS = 1_700_000_000 * 1_000_000_000
CHUNK = 120  # rows per push: two seconds, well inside the ring's 8 x length


@dataclass(frozen=True, slots=True)
class WindowSet:
    """Feature rows of many windows with what the evaluation needs to know of each."""

    x: npt.NDArray[np.float32]  # (n, len(FEATURE_NAMES)), as the models see them
    y: npt.NDArray[np.int64]  # class index or IGNORE
    scenario: npt.NDArray[np.str_]
    case: npt.NDArray[np.str_]
    bus: npt.NDArray[np.int64]
    pmu_key: npt.NDArray[np.str_]  # scenario/pmu: one stream
    end_frame: npt.NDArray[np.int64]  # the frame at which the window is emitted
    start_frame: npt.NDArray[np.int64]  # event's first frame at this PMU (-1 for none)
    kind: npt.NDArray[np.int64]  # the scenario's kind (index into KINDS)

    @staticmethod
    def concat(sets: list[WindowSet]) -> WindowSet:
        fields = WindowSet.__slots__
        return WindowSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in fields))

    def take(self, mask: npt.NDArray[np.bool_]) -> WindowSet:
        return WindowSet(*(getattr(self, f)[mask] for f in WindowSet.__slots__))


def stream_info(pmu: int, vn_kv: float, *, nominal_known: bool) -> StreamInfo:
    """A PMU reporting one positive-sequence voltage phasor, frequency and ROCOF."""
    v_ln = vn_kv * 1e3 / math.sqrt(3)
    return StreamInfo(
        stream=f"andes/{pmu}",
        source="andes",
        asset=f"bus{pmu}",
        channels=(
            ChannelInfo(
                "V1.mag", ChannelKind.MAGNITUDE, "V", "V1", "1", v_ln if nominal_known else 0
            ),
            ChannelInfo("V1.ang", ChannelKind.ANGLE, "rad", "V1", "1"),
            ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=FNOM),
            ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s"),
        ),
        rate_hz=RATE_HZ,
        nominal_hz=FNOM,
        idcode=pmu,
    )


def pmu_windows(rows: pl.DataFrame, *, nominal_known: bool, hop: int = 3) -> list[Window]:
    """All windows of one PMU of one scenario run (rows sorted by frame), ``hop`` rows
    apart (the service's default is 3)."""
    vn = float(rows["vn_kv"][0])
    info = stream_info(int(rows["pmu"][0]), vn, nominal_known=nominal_known)
    v_ln = vn * 1e3 / math.sqrt(3)
    values = np.column_stack(
        (
            rows["v_mag_pu"].to_numpy() * v_ln,
            rows["v_ang_rad"].to_numpy(),
            rows["freq_hz"].to_numpy(),
            rows["rocof_hz_s"].to_numpy(),
        )
    )
    times = T0_NS + np.rint(rows["frame"].to_numpy() * (1e9 / RATE_HZ)).astype(np.int64)
    quality = np.zeros(len(times), dtype=np.uint16)
    win = Windower(info, WindowConfig(hop=hop))
    out: list[Window] = []
    for i in range(0, len(times), CHUNK):
        sl = slice(i, i + CHUNK)
        out += win.push(SampleBatch(info.stream, times[sl], values[sl], quality[sl]))
    return out


def _labels(
    *,
    kind: int,
    start: int,
    end: int,
    visible: bool,
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    y = np.zeros(len(first), dtype=np.int64)
    if kind == 0:
        return y
    hit = (last >= start) & (first <= end)
    y[hit] = kind if visible else IGNORE
    y[first > end] = IGNORE
    return y


def _event_frames(kind: str, start_s: float, end_s: float) -> tuple[int, int]:
    if kind == "normal":
        return -1, -1
    start = math.ceil(start_s * RATE_HZ)  # events sit between frames
    end = start if end_s <= start_s else math.floor(end_s * RATE_HZ)
    return start, end


def shard_windows(
    path: Path,
    *,
    nominal_known: bool | None = None,
    hop: int = 3,
    rows: pl.Expr | None = None,
) -> WindowSet:
    """Every window of every PMU in one Parquet shard, with features and labels.

    ``nominal_known`` None: per PMU at random (seeded) whether the stream configures a
    nominal voltage, as sites do both. ``hop``: rows between windows. ``rows``: a filter
    on the shard's rows (some buses only).
    """
    df = pl.read_parquet(path)
    if rows is not None:
        df = df.filter(rows)
    if df.is_empty():
        raise ValueError(f"{path}: no rows{' pass the filter' if rows is not None else ''}")
    windows: list[Window] = []
    sets = []
    for (sid, pmu), group in df.group_by(["scenario", "pmu"], maintain_order=True):
        ordered = group.sort("frame")
        r0 = ordered.row(0, named=True)
        known = nominal_known
        if known is None:
            known = bool(np.random.default_rng([int(r0["seed"]), int(pmu)]).random() < 0.5)
        wins = pmu_windows(ordered, nominal_known=known, hop=hop)
        windows += wins
        n = len(wins)
        first = np.array([round((w.start_ns - T0_NS) * RATE_HZ / 1e9) for w in wins])
        last = np.array([round((w.end_ns - T0_NS) * RATE_HZ / 1e9) for w in wins])
        kind = KINDS.index(r0["kind"])
        start, end = _event_frames(r0["kind"], r0["event_start_s"], r0["event_end_s"])
        sets.append(
            WindowSet(
                x=np.empty((n, 0), dtype=np.float32),
                y=_labels(
                    kind=kind,
                    start=start,
                    end=end,
                    visible=bool(r0["visible"]),
                    first=first,
                    last=last,
                ),
                scenario=np.full(n, str(sid)),
                case=np.full(n, r0["case"]),
                bus=np.full(n, int(r0["bus"]), dtype=np.int64),
                pmu_key=np.full(n, f"{sid}/{pmu}"),
                end_frame=last.astype(np.int64),
                start_frame=np.full(n, start if r0["visible"] else -1, dtype=np.int64),
                kind=np.full(n, kind, dtype=np.int64),
            )
        )
    out = WindowSet.concat(sets)
    # One pmu_features call for the whole shard: it batches windows of equal layout.
    x = pmu_features(windows).astype(np.float32)
    return WindowSet(x, *(getattr(out, f) for f in WindowSet.__slots__[1:]))
