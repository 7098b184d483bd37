"""Phasor trajectories shared by the PMU simulator and the model-training recipes.

Pure numpy (polars only to read/write files): no sockets, no clock, no logging.

A ``Scenario`` holds, for ``n`` instants and ``p`` PMUs, the magnitude and angle of ``k``
phasors per PMU, the frequency, the ROCOF and a per-sample event label. It comes from
``synthesize`` (balanced three-phase system with load fluctuation, measurement noise and
scripted events) or from a CSV/Parquet file written by hand (``Scenario.from_file``).

File format (wide, one row per instant and PMU)::

    t_s, pmu, va_mag, va_ang_deg, vb_mag, vb_ang_deg, ..., freq_hz [, rocof_hz_s] [, label]

``t_s`` seconds from the start (ascending per PMU), ``pmu`` an integer 0..p-1 (optional:
absent means one PMU), every ``<name>_mag`` (V or A, RMS) needs its ``<name>_ang_deg``;
names starting with ``i`` are currents. Between rows values are linearly interpolated
(angles unwrapped first); ``rocof_hz_s`` defaults to the derivative of ``freq_hz``.
"""

from __future__ import annotations

__all__ = [
    "LABEL_FAULT_SAG",
    "LABEL_FREQ_EXCURSION",
    "LABEL_NORMAL",
    "Event",
    "FaultSag",
    "FrequencyExcursion",
    "Scenario",
    "fault_sag",
    "frequency_excursion",
    "synthesize",
]

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

LABEL_NORMAL = 0
LABEL_FAULT_SAG = 1
LABEL_FREQ_EXCURSION = 2

_THREE_PHASE = ("VA", "VB", "VC", "IA", "IB", "IC")
_PHASE_SHIFT_DEG = {"A": 0.0, "B": -120.0, "C": 120.0}


@dataclass(frozen=True, slots=True)
class Scenario:
    """Trajectories: ``mag``/``ang_rad`` (n, p, k), ``freq_hz``/``rocof``/``labels`` (n, p)."""

    t_s: F64
    phasor_names: tuple[str, ...]
    is_current: tuple[bool, ...]
    mag: F64
    ang_rad: F64
    freq_hz: F64
    rocof: F64
    labels: I8
    loop: bool = False

    def __post_init__(self) -> None:
        n, k = self.t_s.shape[0], len(self.phasor_names)
        if self.mag.ndim != 3 or self.mag.shape[0] != n or self.mag.shape[2] != k:
            raise ValueError("Scenario: mag must be (n, p, k)")
        p = self.mag.shape[1]
        if self.ang_rad.shape != self.mag.shape:
            raise ValueError("Scenario: ang_rad must match mag")
        for arr in (self.freq_hz, self.rocof, self.labels):
            if arr.shape != (n, p):
                raise ValueError("Scenario: freq_hz, rocof and labels must be (n, p)")
        if len(self.is_current) != k:
            raise ValueError("Scenario: is_current must name every phasor")
        if n == 0 or np.any(np.diff(self.t_s) <= 0):
            raise ValueError("Scenario: t_s must be non-empty and strictly increasing")

    @property
    def n_pmus(self) -> int:
        return int(self.mag.shape[1])

    @property
    def duration_s(self) -> float:
        """Length of one pass; a looped scenario repeats with this period."""
        if self.t_s.shape[0] < 2:
            return 0.0
        step = float(self.t_s[-1] - self.t_s[-2])
        return float(self.t_s[-1] - self.t_s[0]) + step

    def phasors(self) -> npt.NDArray[np.complex128]:
        """Complex phasors (n, p, k), RMS magnitude."""
        out: npt.NDArray[np.complex128] = self.mag * np.exp(1j * self.ang_rad)
        return out

    def sample(self, t_s: F64) -> Scenario:
        """Values at times ``t_s`` (seconds from start), interpolated, looped or held."""
        t = np.asarray(t_s, dtype=np.float64) - self.t_s[0]
        if self.loop and self.duration_s > 0:
            t = np.mod(t, self.duration_s)
        t = t + self.t_s[0]
        src = self.t_s
        ang = np.unwrap(self.ang_rad, axis=0)

        def interp(a: F64) -> F64:
            flat = a.reshape(a.shape[0], -1)
            out = np.empty((t.shape[0], flat.shape[1]), dtype=np.float64)
            for j in range(flat.shape[1]):
                out[:, j] = np.interp(t, src, flat[:, j])
            return out.reshape((t.shape[0], *a.shape[1:]))

        # Labels are categorical: take the value of the last row at or before t.
        idx = np.clip(np.searchsorted(src, t, side="right") - 1, 0, src.shape[0] - 1)
        return replace(
            self,
            t_s=np.asarray(t_s, dtype=np.float64),
            mag=interp(self.mag),
            ang_rad=_wrap(interp(ang)),
            freq_hz=interp(self.freq_hz),
            rocof=interp(self.rocof),
            labels=self.labels[idx],
        )

    @classmethod
    def from_file(cls, path: str | Path, *, loop: bool = False) -> Scenario:
        """Read the wide CSV/Parquet format described in the module docstring."""
        import polars as pl  # noqa: PLC0415 - optional (train extra); only file I/O needs it

        path = Path(path)
        df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
        if "pmu" not in df.columns:
            df = df.with_columns(pl.lit(0).alias("pmu"))
        for col in ("t_s", "freq_hz"):
            if col not in df.columns:
                raise ValueError(f"scenario {path}: missing column {col!r}")
        names = [c[: -len("_mag")] for c in df.columns if c.endswith("_mag")]
        if not names:
            raise ValueError(f"scenario {path}: no <name>_mag columns")
        for name in names:
            if f"{name}_ang_deg" not in df.columns:
                raise ValueError(f"scenario {path}: {name}_mag needs {name}_ang_deg")
        df = df.sort(["pmu", "t_s"])
        pmus = df["pmu"].unique().sort().to_list()
        if pmus != list(range(len(pmus))):
            raise ValueError(f"scenario {path}: pmu must number 0..p-1")
        per_pmu = [df.filter(pl.col("pmu") == i) for i in pmus]
        t = per_pmu[0]["t_s"].to_numpy().astype(np.float64)
        if any(not np.array_equal(d["t_s"].to_numpy(), t) for d in per_pmu):
            raise ValueError(f"scenario {path}: every PMU needs the same t_s rows")

        def stack(col: str) -> F64:
            return np.stack([d[col].to_numpy().astype(np.float64) for d in per_pmu], axis=1)

        mag = np.stack([stack(f"{n}_mag") for n in names], axis=2)
        ang = np.deg2rad(np.stack([stack(f"{n}_ang_deg") for n in names], axis=2))
        freq = stack("freq_hz")
        if "rocof_hz_s" in df.columns:
            rocof = stack("rocof_hz_s")
        else:
            rocof = np.gradient(freq, t, axis=0) if t.shape[0] > 1 else np.zeros_like(freq)
        labels = stack("label").astype(np.int8) if "label" in df.columns else None
        return cls(
            t_s=t,
            phasor_names=tuple(n.upper() for n in names),
            is_current=tuple(n.lower().startswith("i") for n in names),
            mag=mag,
            ang_rad=_wrap(ang),
            freq_hz=freq,
            rocof=rocof,
            labels=labels if labels is not None else np.zeros(freq.shape, dtype=np.int8),
            loop=loop,
        )

    def write(self, path: str | Path) -> None:
        """Write the wide format (CSV, or Parquet when the suffix is ``.parquet``)."""
        import polars as pl  # noqa: PLC0415 - optional (train extra); only file I/O needs it

        n, p = self.freq_hz.shape
        cols: dict[str, npt.NDArray[np.generic]] = {
            "t_s": np.repeat(self.t_s[None, :], p, axis=0).reshape(-1),
            "pmu": np.repeat(np.arange(p), n),
        }
        for j, name in enumerate(self.phasor_names):
            cols[f"{name.lower()}_mag"] = self.mag[:, :, j].T.reshape(-1)
            cols[f"{name.lower()}_ang_deg"] = np.rad2deg(self.ang_rad[:, :, j]).T.reshape(-1)
        cols["freq_hz"] = self.freq_hz.T.reshape(-1)
        cols["rocof_hz_s"] = self.rocof.T.reshape(-1)
        cols["label"] = self.labels.T.reshape(-1)
        df = pl.DataFrame(cols)
        path = Path(path)
        if path.suffix == ".parquet":
            df.write_parquet(path)
        else:
            df.write_csv(path)


class Event(Protocol):
    """A scripted disturbance applied to clean trajectories before noise is added."""

    def apply(self, t: F64, sc: _Work, fnom: float) -> None: ...


@dataclass(slots=True)
class _Work:
    """Mutable per-unit working arrays ``synthesize`` hands to events."""

    names: tuple[str, ...]
    is_current: tuple[bool, ...]
    mag_scale: F64  # (n, p, k) multiplier on the pre-event magnitude
    ang_offset: F64  # (n, p, k) radians added to the angle
    freq_dev: F64  # (n, p) Hz added to the frequency
    labels: I8  # (n, p)


def _pmu_mask(p: int, pmus: tuple[int, ...] | None) -> npt.NDArray[np.bool_]:
    mask = np.zeros(p, dtype=bool)
    mask[list(range(p)) if pmus is None else [i for i in pmus if 0 <= i < p]] = True
    return mask


@dataclass(frozen=True, slots=True)
class FaultSag:
    """A fault-induced voltage sag: the faulted phases drop to ``depth_pu`` for ``cycles``
    cycles of FNOM, currents rise to ``current_pu``, the voltage angles jump by
    ``angle_jump_deg``, and the frequency dips by ``freq_dip_hz`` and recovers
    exponentially (time constant ``freq_tau_s``)."""

    start_s: float
    cycles: float = 6.0
    depth_pu: float = 0.5
    phases: str = "ABC"
    angle_jump_deg: float = -8.0
    current_pu: float = 3.0
    freq_dip_hz: float = 0.05
    freq_tau_s: float = 1.0
    pmus: tuple[int, ...] | None = None

    def apply(self, t: F64, sc: _Work, fnom: float) -> None:
        end = self.start_s + self.cycles / fnom
        during = (t >= self.start_s) & (t < end)
        rows = np.ix_(during, _pmu_mask(sc.labels.shape[1], self.pmus))
        for j, name in enumerate(sc.names):
            phase = _phase_of(name)
            if not phase or phase not in self.phases.upper():
                continue
            scale = self.current_pu if sc.is_current[j] else self.depth_pu
            sc.mag_scale[:, :, j][rows] *= scale
            sc.ang_offset[:, :, j][rows] += math.radians(self.angle_jump_deg)
        after = t >= self.start_s
        dip = -self.freq_dip_hz * np.exp(-(t - self.start_s) / self.freq_tau_s) * after
        cols = _pmu_mask(sc.labels.shape[1], self.pmus)
        sc.freq_dev[:, cols] += dip[:, None]
        sc.labels[rows] = LABEL_FAULT_SAG


@dataclass(frozen=True, slots=True)
class FrequencyExcursion:
    """A trapezoidal frequency excursion of ``delta_hz``: ramp, hold, ramp back."""

    start_s: float
    delta_hz: float = -0.3
    ramp_s: float = 2.0
    hold_s: float = 5.0
    pmus: tuple[int, ...] | None = None

    def apply(self, t: F64, sc: _Work, fnom: float) -> None:
        x = t - self.start_s
        up = np.clip(x / self.ramp_s, 0.0, 1.0)
        down = np.clip((x - self.ramp_s - self.hold_s) / self.ramp_s, 0.0, 1.0)
        shape = up - down
        cols = _pmu_mask(sc.labels.shape[1], self.pmus)
        sc.freq_dev[:, cols] += (self.delta_hz * shape)[:, None]
        active = (shape > 0)[:, None] & cols[None, :]
        sc.labels[active & (sc.labels == LABEL_NORMAL)] = LABEL_FREQ_EXCURSION


def fault_sag(start_s: float, **kwargs: object) -> FaultSag:
    """Scripted 3-phase fault: 0.5 pu for 6 cycles by default (see ``FaultSag``)."""
    return FaultSag(start_s, **kwargs)  # type: ignore[arg-type]


def frequency_excursion(start_s: float, **kwargs: object) -> FrequencyExcursion:
    """Scripted frequency excursion, -0.3 Hz by default (see ``FrequencyExcursion``)."""
    return FrequencyExcursion(start_s, **kwargs)  # type: ignore[arg-type]


def synthesize(  # noqa: PLR0917 - positional order is the contract with tools/ training
    n_pmus: int,
    rate_hz: float,
    duration_s: float,
    events: Sequence[Event] = (),
    seed: int = 0,
    nominal_v: float = 230e3,
    fnom: float = 60.0,
    *,
    nominal_i: float = 500.0,
    tve_max: float = 0.01,
    load_fluctuation: float = 0.05,
    loop: bool = False,
) -> Scenario:
    """A balanced three-phase system (VA VB VC IA IB IC per PMU), deterministic per seed.

    ``nominal_v`` is the line-to-line RMS voltage: phase phasors are line-to-neutral
    (``nominal_v / sqrt(3)``). Load varies slowly by about ``load_fluctuation`` (periodic
    over ``duration_s`` so a looped scenario has no seam). Measurement noise has a total
    vector error (IEEE C37.118.1, 4.3) uniformly distributed in ``[0, tve_max]``.
    """
    rng = np.random.default_rng(seed)
    n = max(1, round(duration_s * rate_hz))
    t = np.arange(n, dtype=np.float64) / rate_hz
    p, names = n_pmus, _THREE_PHASE
    is_current = tuple(nm.startswith("I") for nm in names)
    period = n / rate_hz

    # Slow periodic load variation: a few sinusoids with whole cycles over the period.
    load = np.ones((n, p))
    volt = np.ones((n, p))
    for h in (1, 2, 3):
        w = 2 * math.pi * h / period
        ph = rng.uniform(0, 2 * math.pi, size=(2, p))
        load += load_fluctuation / h * np.sin(w * t[:, None] + ph[0])
        volt += load_fluctuation / (10 * h) * np.sin(w * t[:, None] + ph[1])
    freq_dev = np.zeros((n, p))
    w1 = 2 * math.pi / period
    common = 0.01 * np.sin(w1 * t + rng.uniform(0, 2 * math.pi))  # system-wide drift
    freq_dev += common[:, None]

    bus_v = rng.uniform(0.97, 1.03, size=p)
    bus_ang = np.deg2rad(rng.uniform(-30.0, 10.0, size=p))
    load_pu = rng.uniform(0.3, 0.9, size=p)
    pf_ang = np.deg2rad(rng.uniform(-30.0, -10.0, size=p))  # current lags voltage
    v_ln = nominal_v / math.sqrt(3)

    work = _Work(
        names=names,
        is_current=is_current,
        mag_scale=np.ones((n, p, len(names))),
        ang_offset=np.zeros((n, p, len(names))),
        freq_dev=freq_dev,
        labels=np.zeros((n, p), dtype=np.int8),
    )
    for ev in events:
        ev.apply(t, work, fnom)

    # Angle follows the integral of the frequency deviation (phasor rotation, C37.118.1 4.2).
    rot = 2 * math.pi * np.cumsum(work.freq_dev, axis=0) / rate_hz
    mag = np.empty((n, p, len(names)))
    ang = np.empty((n, p, len(names)))
    for j, name in enumerate(names):
        shift = math.radians(_PHASE_SHIFT_DEG[_phase_of(name)])
        if is_current[j]:
            base_mag = nominal_i * load_pu[None, :] * load
            base_ang = bus_ang + pf_ang + shift
        else:
            base_mag = v_ln * bus_v[None, :] * volt
            base_ang = bus_ang + shift
        mag[:, :, j] = base_mag * work.mag_scale[:, :, j]
        ang[:, :, j] = base_ang[None, :] + rot + work.ang_offset[:, :, j]

    true = mag * np.exp(1j * ang)
    radius = tve_max * rng.uniform(0.0, 1.0, size=true.shape) * np.abs(true)
    noisy = true + radius * np.exp(1j * rng.uniform(0, 2 * math.pi, size=true.shape))
    freq = fnom + work.freq_dev
    rocof = np.gradient(work.freq_dev, t, axis=0) if n > 1 else np.zeros((n, p))
    freq = freq + rng.normal(0.0, 0.0005, size=freq.shape)
    rocof = rocof + rng.normal(0.0, 0.005, size=rocof.shape)
    return Scenario(
        t_s=t,
        phasor_names=names,
        is_current=is_current,
        mag=np.abs(noisy),
        ang_rad=np.angle(noisy),
        freq_hz=freq,
        rocof=rocof,
        labels=work.labels,
        loop=loop,
    )


def _phase_of(name: str) -> str:
    last = name.strip().upper()[-1:]
    return last if last in "ABC" else ""


def _wrap(a: F64) -> F64:
    """Angles into (-pi, pi]."""
    return np.asarray(np.pi - np.mod(np.pi - a, 2 * np.pi), dtype=np.float64)
