"""Model cards of the event models (``models/cards/<name>.md``), written by ``make models``."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from event_clearing import CLEARING_DEEP_SAG, CLEARING_MAX_AGE, CLEARING_MIN_RISE
from scenarios.dataset import WindowSet
from scenarios.labels import AMBIENT_FREQ_RANGE_HZ, AMBIENT_V_RANGE, FAULT_SAG
from scenarios.spec import KINDS

from edgepipe.inference.manifest import ModelKind, ModelSpec
from edgepipe.pipeline.site import uses_site_context
from edgepipe.pipeline.windows import WindowConfig

_HOP = WindowConfig().hop

_SITE_WHAT = (
    "The same event classifier with eight site-context features beside the window's own"
    " (`edgepipe/pipeline/site.py`): the deepest and the median relative voltage, the median"
    " frequency dip, rise and voltage span, and the largest voltage rebound and rising step"
    " (a cleared fault) over all PMUs of the site at the same window end, and this PMU's sag"
    " as a share of the deepest. A clearing gate follows the forest in the graph"
    f" (`tools/event_clearing.py`): a window whose main voltage step is more than"
    f" {CLEARING_MAX_AGE} frames old (the longest fault of the scenarios) while no PMU of"
    f" the site has risen by {CLEARING_MIN_RISE} or more and none is at or below"
    f" {CLEARING_DEEP_SAG} of its pre-event voltage is no fault (P(fault) 0, the other"
    " classes renormalised): a fault's window shows its clearing, a trip's does not."
    " For a box that sees most of a grid's"
    " PMUs (behind a PDC, at a control centre or a wide-area hub): trained and"
    " evaluated with every PMU of a run as the site (the held-out buses' windows give"
    " context to the training windows of their run, and are never trained on). Enable it"
    " in place of `pmu_event`"
    " (`[models] enabled`); the service then holds each moment's windows until every PMU"
    " has delivered it (`[windows] site_hold_ms`). With a few PMUs it misses faults that"
    ' `pmu_event` detects (`tools/event_site.py`; docs/scenarios.md, "How many PMUs the'
    ' site model needs").'
)
_WHAT = {
    ModelKind.CLASSIFIER: (
        "Event classifier for PMU windows (30 frames at 60 frames/s; trained on windows "
        f"cut every 3 frames, evaluated every {_HOP}, the service's default hop): "
        + ", ".join(KINDS)
        + ". Random forest (40 trees, depth 12; classes balanced, each training grid weighted "
        "equally), chosen by leave-one-grid-out validation on "
        "the training grids (`tools/event_logo.py`), exported with skl2onnx "
        "(TreeEnsembleClassifier) with the ambient gate as a new root of each tree "
        f"(`tools/event_gate.py`): a window spanning less than {AMBIENT_FREQ_RANGE_HZ} Hz "
        f"and {AMBIENT_V_RANGE:.0%} voltage is normal with probability 1. The "
        "service alerts on P(fault) (`pmu_fault`, critical); every alert carries all class "
        "probabilities in its evidence."
    ),
    ModelKind.ANOMALY: (
        "Anomaly detector for PMU windows: IsolationForest (100 trees, 256 samples each) "
        "trained on normal-operation windows only, exported as one ONNX "
        "TreeEnsembleRegressor whose leaves hold path lengths (`tools/iforest_onnx.py`); "
        "score = 2^(-mean path / c(256)) in (0, 1], larger = more anomalous "
        "(= -IsolationForest.score_samples). Alert `pmu_anomaly`, warning."
    ),
}


_EVENTS = {ModelKind.CLASSIFIER: "fault events", ModelKind.ANOMALY: "all event kinds"}


def _section(title: str, res: dict[str, Any], spec: ModelSpec) -> list[str]:
    stats = res["alarm"]
    lines = [f"### {title}", ""]
    if spec.kind is ModelKind.CLASSIFIER:
        lines += ["Per-class scores (argmax), windows labelled as in docs/scenarios.md:", ""]
        lines += [res["table"], ""]
        lines.append(
            "- the fault alert's operating point (a window with P(fault) at or above the raise "
            f"threshold counts as a fault): {res['operating_point']}"
        )
    lines += [
        f"- false alarms: {stats.raises} raises in {stats.hours:.1f} PMU-hours of normal "
        f"operation ({stats.streams} PMU streams) = {stats.per_pmu_day:.2f} per PMU per day",
        f"- detection delay ({_EVENTS[spec.kind]}, "
        f"frames from the event's first frame to the raising window): {stats.delay_text()}",
    ]
    if stats.other_runs:
        lines.append(
            "- raised on events of other kinds (runs in which a PMU that sees the event raised at "
            f"or after its start; such PMU streams): {stats.other_text()}"
        )
    return [*lines, ""]


def write_card(
    path: Path,
    spec: ModelSpec,
    results: dict[str, dict[str, Any]],
    *,
    train: WindowSet,
    gap: float,
    latency: dict[str, float],
    th: tuple[float, float],
) -> list[str]:
    counts = np.bincount(train.y, minlength=len(KINDS))
    lines = [
        f"# Model card: {spec.name} {spec.version}",
        "",
        _WHAT[spec.kind] + (" " + _SITE_WHAT if uses_site_context(spec.features) else ""),
        "Written by `tools/train_events.py` (`make models`); do not edit.",
        "",
        "## Data",
        "ANDES time-domain simulations (docs/scenarios.md): ieee14, ieee39, npcc and wecc",
        "for training; kundur never seen in training (the held-out grid), nor wscc9 (a second",
        "unseen grid: the 3-machine WSCC system with tools/scenarios/wscc9.py's machine data).",
        "Trips and load steps of 1-3",
        "elements up to 40 % of generation or 30 % of load. PMU noise TVE up to 1 %, frame",
        "drops, load fluctuation, random loading 0.85-1.1. Features: the pipeline's",
        "`pmu_features`, relative to each window's pre-event state or to its largest voltage",
        "step (`edgepipe/pipeline/event_shape.py`): "
        + ", ".join(f"`{f}`" for f in spec.features)
        + ".",
        "Training windows per class: "
        + ", ".join(f"{k} {c}" for k, c in zip(KINDS, counts, strict=True))
        + " (the classifier is fitted on all event windows and 100,000 normal ones drawn at random;"
        " the anomaly detector on every normal window).",
        "",
        "## Thresholds",
        f"raise at {th[0]:.4f}, clear at {th[1]:.4f}.",
        "",
        "## Results",
        "",
    ]
    for title, res in results.items():
        lines += _section(title, res, spec)
    ours = latency[spec.name]
    lines += [
        "## Export and speed",
        f"- scikit-learn vs onnxruntime: labels identical, max score gap {gap:.2g} (limit 1e-5)",
        f"- onnxruntime, batch 1, 1 thread: {ours:.1f} µs per window "
        f"({platform.machine()}, onnxruntime {ort.__version__}; tools/bench_inference.py)",
    ]
    if spec.kind is ModelKind.ANOMALY:
        lines.append(
            f"- skl2onnx's stock IsolationForest graph, same model: {latency['stock']:.0f} µs "
            f"per window ({latency['stock'] / ours:.0f}x slower)"
        )
    lines += [
        f"- sha256 {spec.sha256}",
        "",
        "## Limits",
        "- Simulated data only (positive-sequence phasor dynamics, no unbalanced faults, no",
        "  PMU filter transients, no CT/VT errors). Field data will score worse.",
        "- Oscillations are forced (loads modulated as a decaying sine at 0.3-2 Hz); a",
        "  half-second window holds at most one period, so slow modes are hard to tell apart.",
        "- Windows with a NaN in a model feature are not scored (data-quality path).",
        "- The false alarms above are over each set's normal runs. No raise in 24.6 PMU-hours",
        "  bounds the rate at 2.9 per PMU-day (one-sided 95 %); `make models` then soaks the",
        "  held-out grid for 24.6 simulated hours (246 PMU-hours) with every shipped model",
        "  (`tools/event_soak.py`, report in `models/cards/soak-kundur.txt`).",
        f"- The detection delays above are at the default hop of {_HOP} frames; another"
        " `[windows] hop` trades delay for CPU (`tools/event_hop.py`, table in"
        " docs/operations.md).",
        "- Left out of training and of every metric (tools/scenarios/labels.py): runs that",
        "  collapse after the event, fault windows at PMUs whose voltage never sags by"
        f" {1 - FAULT_SAG:.0%}, and event windows that span less than"
        f" {AMBIENT_FREQ_RANGE_HZ} Hz and {AMBIENT_V_RANGE:.0%} voltage (inside the ambient band of"
        " the training grids' normal windows).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return lines
