"""What the PMUs at each bus report of a simulated trajectory: noise, frequency, drops.

Per bus: the positive-sequence voltage phasor with complex noise of TVE up to
``tve_max`` (IEEE C37.118.1-2011 4.3: TVE = |error| / |phasor|), frequency and ROCOF
from the angle's rate of change (C37.118.1-2011 4.2, plus noise of a few mHz), and each
frame lost with probability ``drop_prob`` (the row is absent from the file).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from scenarios.spec import FNOM, RATE_HZ, ScenarioSpec

F64 = npt.NDArray[np.float64]
# The event is visible at a PMU when its clean voltage moves by 1 % of the pre-event
# value, its frequency by 10 mHz or its angle steps by 0.5 deg within the event and the
# half second after it; otherwise that PMU's windows are left out of training/metrics.
VISIBLE_DV, VISIBLE_DF_HZ, VISIBLE_DANG_DEG = 0.01, 0.010, 0.5


def frequency(t: F64, ang: F64) -> F64:
    """Bus frequency from the angle (rad, rotating frame at ``FNOM``): backward difference,
    as a PMU's estimate follows the phasor's rotation since the previous frame."""
    f = np.empty_like(ang)
    f[1:] = FNOM + np.diff(ang, axis=0) / np.diff(t)[:, None] / (2 * np.pi)
    f[0] = f[1]
    return f


def visible(spec: ScenarioSpec, t: F64, v: F64, ang: F64, f: F64) -> npt.NDArray[np.bool_]:
    if spec.kind == "normal":
        return np.zeros(v.shape[1], dtype=bool)
    pre = t < spec.start_s
    span = (t > spec.start_s) & (t <= spec.end_s + 0.5)
    v0, f0 = v[pre][-1], f[pre][-1]
    dv = np.abs(v[span] / v0 - 1).max(axis=0)
    df = np.abs(f[span] - f0).max(axis=0)
    dang = np.degrees(np.abs(np.diff(ang[pre.sum() - 1 : pre.sum() + span.sum()], axis=0)))
    return (dv > VISIBLE_DV) | (df > VISIBLE_DF_HZ) | (dang.max(axis=0) > VISIBLE_DANG_DEG)


def measure(
    spec: ScenarioSpec,
    *,
    t: F64,
    v: F64,
    ang: F64,
    buses: tuple[int, ...],
    vn_kv: tuple[float, ...],
) -> pl.DataFrame:
    """The scenario's rows as stored (schema: docs/scenarios.md)."""
    rng = np.random.default_rng([spec.seed, 7, len(spec.sid)])
    n_t, n_b = v.shape
    f = frequency(t, ang)
    seen = visible(spec, t, v, ang, f)
    tve = rng.uniform(0, spec.tve_max, (n_t, n_b))
    phi = rng.uniform(0, 2 * np.pi, (n_t, n_b))
    ph = v * np.exp(1j * ang) * (1 + tve * np.exp(1j * phi))
    f_noise = f + rng.normal(0, 0.002, (n_t, n_b))
    rocof = np.zeros_like(f_noise)
    rocof[1:] = np.diff(f_noise, axis=0) * RATE_HZ
    keep = rng.random((n_t, n_b)) >= spec.drop_prob
    frame = np.broadcast_to(np.arange(n_t)[:, None], (n_t, n_b))
    pmu = np.broadcast_to(np.arange(n_b)[None, :], (n_t, n_b))
    sel = keep.T.ravel()  # bus-major: each PMU's rows together, in time order

    def col(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return np.ascontiguousarray(a.T).ravel()[sel]

    n = int(sel.sum())
    return pl.DataFrame(
        {
            "scenario": pl.Series([spec.sid] * n, dtype=pl.Utf8),
            "case": [spec.case] * n,
            "kind": [spec.kind] * n,
            "seed": pl.Series([spec.seed] * n, dtype=pl.Int64),
            "pmu": pl.Series(col(pmu), dtype=pl.Int32),
            "bus": pl.Series(col(np.array(buses)[pmu]), dtype=pl.Int32),
            "vn_kv": col(np.array(vn_kv)[pmu]),
            "frame": pl.Series(col(frame), dtype=pl.Int32),
            "t_s": col(np.broadcast_to(t[:, None], (n_t, n_b))),
            "v_mag_pu": col(np.abs(ph)),
            "v_ang_rad": col(np.angle(ph)),
            "freq_hz": col(f_noise),
            "rocof_hz_s": col(rocof),
            "event_start_s": [spec.start_s] * n,
            "event_end_s": [spec.end_s] * n,
            "visible": col(np.broadcast_to(seen[None, :], (n_t, n_b))),
            "loading": [spec.loading] * n,
            "params": [spec.params_json()] * n,
        }
    )
