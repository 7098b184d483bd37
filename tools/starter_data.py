"""Simulator scenarios -> pipeline windows -> feature rows, for the starter fault model.

The rows come from exactly the code the service runs: ``synthesize`` (the trajectories
the PMU simulator streams), the pipeline's ``Windower`` (default ``WindowConfig``) and
its ``pmu_features``, so training and serving cannot drift apart (no train/serve skew).

Used by ``tools/train_starter.py``, ``tools/bench_inference.py`` and the inference tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapters.c37118.scenario import (
    LABEL_FAULT_SAG,
    Event,
    Scenario,
    fault_sag,
    frequency_excursion,
    synthesize,
)
from edgepipe.core import ChannelInfo, ChannelKind, SampleBatch, StreamInfo, Window
from edgepipe.pipeline.features import pmu_features
from edgepipe.pipeline.windows import WindowConfig, Windower

RATE_HZ = 60.0
FNOM = 60.0
NOMINAL_V = 230e3
NOMINAL_I = 500.0
T0_NS = 1_700_000_000 * 1_000_000_000  # an arbitrary, fixed epoch for event time


def stream_info(sc: Scenario, pmu: int, *, nominal_v: float = NOMINAL_V) -> StreamInfo:
    """One simulated PMU laid out as ``adapters.c37118.batches.stream_infos`` lays it out.

    ``<PHASOR>.mag`` / ``<PHASOR>.ang`` per phasor, ``freq``, ``rocof``. Like the adapter,
    currents carry no nominal and voltages only the configured one (``nominal_v`` 0 =
    not configured: features then use the pre-event level as the per-unit base).
    """
    channels: list[ChannelInfo] = []
    for name, current in zip(sc.phasor_names, sc.is_current, strict=True):
        phase = name[-1] if name[-1] in "ABC" else ""
        nominal = 0.0 if current else nominal_v / math.sqrt(3)
        unit = "A" if current else "V"
        channels.append(
            ChannelInfo(f"{name}.mag", ChannelKind.MAGNITUDE, unit, name, phase, nominal)
        )
        channels.append(ChannelInfo(f"{name}.ang", ChannelKind.ANGLE, "rad", name, phase))
    channels.append(ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=FNOM))
    channels.append(ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s"))
    return StreamInfo(
        stream=f"sim/{100 + pmu}",
        source="sim",
        asset=f"bus{pmu}",
        channels=tuple(channels),
        rate_hz=RATE_HZ,
        nominal_hz=FNOM,
        idcode=100 + pmu,
    )


def scenario_batch(sc: Scenario, pmu: int) -> SampleBatch:
    """All rows of one PMU of ``sc`` as one batch, in the ``stream_info`` column order."""
    cols: list[npt.NDArray[np.float64]] = []
    for j in range(len(sc.phasor_names)):
        cols += [sc.mag[:, pmu, j], sc.ang_rad[:, pmu, j]]
    cols += [sc.freq_hz[:, pmu], sc.rocof[:, pmu]]
    times = T0_NS + np.rint(sc.t_s * 1e9).astype(np.int64)
    quality = np.zeros(times.shape[0], dtype=np.uint16)
    return SampleBatch(f"sim/{100 + pmu}", times, np.stack(cols, axis=1), quality)


@dataclass(frozen=True, slots=True)
class Labelled:
    """Windows of one scenario with their labels (1 = a fault sample inside the window)."""

    windows: list[Window]
    labels: npt.NDArray[np.int64]


def scenario_windows(
    sc: Scenario, config: WindowConfig | None = None, *, nominal_v: float = NOMINAL_V
) -> Labelled:
    """Cut every PMU of ``sc`` into pipeline windows; label a window by its samples."""
    windows: list[Window] = []
    labels: list[int] = []
    for pmu in range(sc.n_pmus):
        windower = Windower(stream_info(sc, pmu, nominal_v=nominal_v), config)
        out = windower.push(scenario_batch(sc, pmu))
        frame = np.rint(sc.t_s * RATE_HZ).astype(np.int64)
        for w in out:
            first = round((w.start_ns - T0_NS) * RATE_HZ / 1e9)
            last = round((w.end_ns - T0_NS) * RATE_HZ / 1e9)
            rows = (frame >= first) & (frame <= last)
            labels.append(int(np.any(sc.labels[rows, pmu] == LABEL_FAULT_SAG)))
            windows.append(w)
    return Labelled(windows, np.asarray(labels, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class VoltageStep:
    """A sustained voltage step (tap change, capacitor switching): a hard negative.

    Not in the simulator's event set; it follows its ``Event`` protocol and only scales
    the voltage phasors of the affected PMUs from ``start_s`` on.
    """

    start_s: float
    delta_pu: float

    def apply(self, t: npt.NDArray[np.float64], sc: Any, fnom: float) -> None:
        after = t >= self.start_s
        for j, current in enumerate(sc.is_current):
            if not current:
                sc.mag_scale[after, :, j] *= 1.0 + self.delta_pu


def random_scenario(seed: int, *, n_pmus: int = 3, duration_s: float = 4.0) -> Scenario:
    """One training scenario: normal, a fault sag, a frequency excursion or a voltage step.

    Faults vary in depth (0.2-0.8 pu), duration (3-10 cycles), onset, faulted phases
    and which PMUs see them; load fluctuation and measurement noise vary per scenario.
    """
    rng = np.random.default_rng(10_000 + seed)
    # Half faults, 20 % normal, 15 % frequency excursions, 15 % voltage steps (hard
    # negatives). Drawn, not derived from the seed, so the split cannot line up with kind.
    kind = int(np.searchsorted([0.5, 0.7, 0.85], rng.random(), side="right"))
    events: list[Event] = []
    if kind == 0:
        seen = tuple(int(i) for i in np.flatnonzero(rng.random(n_pmus) < 0.7)) or (0,)
        events.append(
            fault_sag(
                float(rng.uniform(1.0, duration_s - 1.0)),
                depth_pu=float(rng.uniform(0.2, 0.8)),
                cycles=float(rng.integers(3, 11)),
                phases=str(rng.choice(["A", "B", "C", "AB", "BC", "CA", "ABC"])),
                angle_jump_deg=float(rng.uniform(-15.0, 5.0)),
                current_pu=float(rng.uniform(1.5, 5.0)),
                freq_dip_hz=float(rng.uniform(0.0, 0.08)),
                pmus=seen,
            )
        )
    elif kind == 2:
        events.append(
            frequency_excursion(
                float(rng.uniform(0.5, 2.0)),
                delta_hz=float(rng.uniform(-0.4, 0.4)),
                ramp_s=float(rng.uniform(0.5, 2.0)),
                hold_s=1.0,
            )
        )
    elif kind == 3:
        size = float(rng.uniform(0.01, 0.06)) * float(rng.choice([-1.0, 1.0]))
        events.append(VoltageStep(float(rng.uniform(1.0, duration_s - 1.0)), size))
    return synthesize(
        n_pmus,
        RATE_HZ,
        duration_s,
        events,
        seed=seed,
        fnom=FNOM,
        tve_max=float(rng.uniform(0.002, 0.01)),
        load_fluctuation=float(rng.uniform(0.01, 0.1)),
    )


def dataset(
    seeds: range | list[int],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Feature rows, labels and the scenario seed of every row, for ``seeds``."""
    xs, ys, groups = [], [], []
    for seed in seeds:
        # Sites configure the nominal voltage or not: train on both per-unit bases.
        known = np.random.default_rng(20_000 + seed).random() < 0.5
        lab = scenario_windows(random_scenario(seed), nominal_v=NOMINAL_V if known else 0.0)
        xs.append(pmu_features(lab.windows))
        ys.append(lab.labels)
        groups.append(np.full(len(lab.labels), seed, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups)
