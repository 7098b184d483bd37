"""Metrics for the event models: per-class scores, false alarms per hour, detection delay.

Alarms follow the service's hysteresis (``edgepipe.pipeline.alerts``): a stream raises
when a window's score reaches ``raise_at`` and clears when one falls to ``clear_at``; a
false alarm is a raise on normal data; the detection delay is the number of frames from
the event's first frame at the PMU to the emission of the first raising window (a window
is emitted when its last frame arrives), over the streams that keep labelled event
windows after ``scenarios.labels`` (the same events the per-class scores count).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scenarios.dataset import IGNORE, WindowSet
from scenarios.spec import KINDS, RATE_HZ
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

F64 = npt.NDArray[np.float64]


def _streams(ws: WindowSet) -> list[npt.NDArray[np.intp]]:
    """Row indices of each stream (scenario/PMU), in emission order."""
    order = np.lexsort((ws.end_frame, ws.pmu_key))
    keys = ws.pmu_key[order]
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.split(order, cuts)


def raises(score: F64, raise_at: float, clear_at: float) -> npt.NDArray[np.bool_]:
    """Per window (in stream order): True where the hysteresis state machine raises."""
    out = np.zeros(len(score), dtype=bool)
    active = False
    for i, s in enumerate(score.tolist()):
        if not active and s >= raise_at:
            active = out[i] = True
        elif active and s <= clear_at:
            active = False
    return out


@dataclass
class AlarmStats:
    raises: int = 0
    hours: float = 0.0
    streams: int = 0
    delays: list[int] | None = None
    events: int = 0
    missed: int = 0
    # Raises on events of the other kinds (a line trip paged as a fault): per kind, the
    # runs and PMU streams seen, and those in which the alert raised at or after the start.
    other_runs: dict[int, set[str]] = field(default_factory=dict)
    other_raised_runs: dict[int, set[str]] = field(default_factory=dict)
    other_streams: dict[int, list[int]] = field(default_factory=dict)

    def add_normal(self, ws: WindowSet, score: F64, raise_at: float, clear_at: float) -> None:
        for idx in _streams(ws):
            self.raises += int(raises(score[idx], raise_at, clear_at).sum())
            frames = ws.end_frame[idx]
            self.hours += (frames[-1] - frames[0] + 1) / RATE_HZ / 3600
            self.streams += 1

    def add_events(
        self, ws: WindowSet, score: F64, raise_at: float, clear_at: float, kinds: set[int]
    ) -> None:
        self.delays = self.delays if self.delays is not None else []
        for idx in _streams(ws):
            start, kind = int(ws.start_frame[idx[0]]), int(ws.kind[idx[0]])
            if start < 0 or (kind not in kinds and (ws.y[idx] == IGNORE).all()):
                continue  # no event, or a run the label rules left out whole (collapse)
            if kind not in kinds:
                self._other(ws, idx, score, raise_at, clear_at)
                continue
            if not (ws.y[idx] == kind).any():
                # the label rules left every event window of this stream out (a run that
                # collapsed, a PMU that never sees the fault's sag): neither hit nor miss,
                # as in the per-class scores
                continue
            up = raises(score[idx], raise_at, clear_at)
            after = up & (ws.end_frame[idx] >= start)
            self.events += 1
            if not after.any():
                self.missed += 1
                continue
            self.delays.append(int(ws.end_frame[idx][np.argmax(after)] - start))

    def _other(
        self, ws: WindowSet, idx: npt.NDArray[np.intp], score: F64, raise_at: float, clear_at: float
    ) -> None:
        start, kind, run = (
            int(ws.start_frame[idx[0]]),
            int(ws.kind[idx[0]]),
            str(ws.scenario[idx[0]]),
        )
        up = raises(score[idx], raise_at, clear_at) & (ws.end_frame[idx] >= start)
        self.other_runs.setdefault(kind, set()).add(run)
        seen = self.other_streams.setdefault(kind, [0, 0])
        seen[0] += 1
        if up.any():
            seen[1] += 1
            self.other_raised_runs.setdefault(kind, set()).add(run)

    def other_text(self) -> str:
        """``line_trip 18/30 runs (40/300 PMU streams), ...``; empty when no other kind."""
        return ", ".join(
            f"{KINDS[k]} {len(self.other_raised_runs.get(k, ()))}/{len(runs)} runs "
            f"({self.other_streams[k][1]}/{self.other_streams[k][0]} PMU streams)"
            for k, runs in sorted(self.other_runs.items())
        )

    @property
    def per_pmu_day(self) -> float:
        return 24 * self.raises / self.hours if self.hours else float("nan")

    def delay_text(self) -> str:
        d = np.asarray(self.delays or [-1])
        if self.delays is None or not self.delays:
            return "no detections"
        return (
            f"median {np.median(d):.0f}, p95 {np.percentile(d, 95):.0f} frames "
            f"({self.events - self.missed}/{self.events} events detected)"
        )


def class_report(
    y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]
) -> tuple[str, dict[str, float]]:
    """Markdown table of per-class precision/recall/F1 and the confusion matrix."""
    keep = y != IGNORE
    y, pred = y[keep], pred[keep]
    labels = list(range(len(KINDS)))
    p, r, f, n = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    lines = ["| class | precision | recall | F1 | windows |", "|---|---|---|---|---|"]
    for k, name in enumerate(KINDS):
        lines.append(f"| {name} | {p[k]:.3f} | {r[k]:.3f} | {f[k]:.3f} | {n[k]} |")
    present = n > 0
    macro = float(f[present].mean())
    lines += ["", f"macro-F1 over classes present: {macro:.3f}", ""]
    cm = confusion_matrix(y, pred, labels=labels)
    lines.append("| true \\ predicted | " + " | ".join(KINDS) + " |")
    lines.append("|---" * (len(KINDS) + 1) + "|")
    for k, name in enumerate(KINDS):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in cm[k]) + " |")
    return "\n".join(lines), {"macro_f1": macro, "fault_f1": float(f[KINDS.index("fault")])}


def alert_point(
    hit: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]
) -> tuple[float, float, float]:
    """Precision, recall and F1 of windows flagged ``hit`` against windows ``truth``."""
    tp, fp = int((hit & truth).sum()), int((hit & ~truth).sum())
    fn = int((~hit & truth).sum())
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), 2 * tp / max(2 * tp + fp + fn, 1)
