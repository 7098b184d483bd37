"""Run one ``ScenarioSpec`` in ANDES; the only module of the project that imports ``andes``.

Loads are constant impedance in the dynamic simulation (ANDES default ``pq2z``), so a
load change is an ``Alter`` of the load's ``Req``/``Xeq``. Despite their names these are
admittances: ANDES's PQ draws ``P = Req v^2`` and ``Q = Xeq v^2``, so a factor f on both is
a factor f on the load's power. Returns the bus voltage magnitudes (pu of the bus base) and
angles (rad, in the frame rotating at nominal frequency) sampled at 60 frames/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import andes
import numpy as np
import numpy.typing as npt

from scenarios import wscc9
from scenarios.spec import CASES, RATE_HZ, Devices, ScenarioSpec

andes.config_logger(stream_level=50)
F64 = npt.NDArray[np.float64]


class SimulationFailedError(RuntimeError):
    """ANDES stopped early (divergence or loss of synchronism): the scenario is skipped."""


@dataclass(frozen=True, slots=True)
class Trajectory:
    t_s: F64  # (T,) frame times
    v_pu: F64  # (T, buses)
    ang_rad: F64  # (T, buses)
    buses: tuple[int, ...]
    vn_kv: tuple[float, ...]


def _load(case: str) -> Any:
    ss = andes.load(andes.get_case(CASES[case]), setup=False, no_output=True, default_config=True)
    if case == "wscc9":  # shipped as a power flow only
        for model, params in wscc9.dynamics():
            ss.add(model, params)
    return ss


@cache
def devices(case: str) -> Devices:
    ss = _load(case)
    ss.setup()
    dispatch = {
        i: float(p) for m in (ss.PV, ss.Slack) for i, p in zip(m.idx.v, m.p0.v, strict=True)
    }
    return Devices(
        buses=tuple(int(b) for b in ss.Bus.idx.v),
        lines=tuple(ss.Line.idx.v),
        gens=tuple(ss.GENROU.idx.v),
        loads=tuple(ss.PQ.idx.v),
        gen_p=tuple(max(dispatch.get(g, 0.0), 0.0) for g in ss.GENROU.gen.v),
        load_p=tuple(max(float(x), 0.0) for x in ss.PQ.p0.v),
    )


def _alter(ss: Any, load: str, t: float, factor: float) -> None:
    # P = Req v^2 and Q = Xeq v^2 (andes/models/static/pq.py): both multiplied by the
    # factor. Until 2026-11-27 they were divided, so every load change went the other way
    # (a "1.49" step dropped a third of the load) and load increases were up to twice
    # MAX_LOAD_SHARE; docs/scenarios.md, "Load changes the right way round".
    for src in ("Req", "Xeq"):
        ss.add(
            "Alter",
            {
                "model": "PQ",
                "dev": load,
                "src": src,
                "attr": "v",
                "t": t,
                "method": "*",
                "amount": factor,
            },
        )


def _oscillation(ss: Any, spec: ScenarioSpec) -> None:
    """A load modulated as a decaying sine (a new level every frame): a forced, poorly damped
    oscillation of the grid around it."""
    p = spec.params
    w = 2 * np.pi * p["freq_hz"]
    # One level per frame: a smooth sine at the PMU, not a staircase. Whole frames only,
    # so that no level lands a rounding error before the closing step at ``end_s`` (two
    # events 1e-15 s apart stop ANDES).
    times = spec.start_s + np.arange(round((spec.end_s - spec.start_s) * RATE_HZ)) / RATE_HZ
    tau = times - spec.start_s
    level = 1 + p["amplitude"] * np.exp(-p["damping"] * w * tau) * np.sin(w * tau)
    level = np.append(level, 1.0)  # back to the base load at the end
    times = np.append(times, spec.end_s)
    prev = 1.0
    for t, lv in zip(times, level, strict=True):
        for load in p["loads"]:
            _alter(ss, load, float(t), float(lv / prev))
        prev = float(lv)


def _add_event(ss: Any, spec: ScenarioSpec) -> None:
    p = spec.params
    for load, t, factor in p["fluctuation"]:
        if not spec.start_s - 1.0 < t < spec.end_s + 1.0:  # keep the event itself clean
            _alter(ss, load, t, factor)
    if spec.kind == "fault":
        ss.add(
            "Fault",
            {"bus": p["bus"], "tf": spec.start_s, "tc": spec.end_s, "rf": p["rf"], "xf": p["xf"]},
        )
    elif spec.kind == "line_trip":
        for line in p["lines"]:
            ss.add("Toggle", {"model": "Line", "dev": line, "t": spec.start_s})
    elif spec.kind == "gen_trip":
        for gen in p["gens"]:
            ss.add("Toggle", {"model": "GENROU", "dev": gen, "t": spec.start_s})
    elif spec.kind == "load_step":
        for load in p["loads"]:
            _alter(ss, load, spec.start_s, p["factor"])
    elif spec.kind == "oscillation":
        _oscillation(ss, spec)


def simulate(spec: ScenarioSpec) -> Trajectory:
    """Time-domain simulation of ``spec``; raises ``SimulationFailed`` if it stops early."""
    ss = _load(spec.case)
    if ss.Toggle.n:  # the cases ship with a scripted trip of their own: disable it
        ss.Toggle.u.v[:] = [0] * ss.Toggle.n
    _add_event(ss, spec)
    ss.setup()
    for model in (ss.PQ, ss.PV):
        for attr in ("p0", "q0") if model is ss.PQ else ("p0",):
            getattr(model, attr).v[:] *= spec.loading
    if not ss.PFlow.run() or not ss.PFlow.converged:
        raise SimulationFailedError(f"{spec.sid}: power flow did not converge")
    # Two frames past the end: ANDES's last step is a partial one that lands on ``tf``, and
    # a frame sampled from it would span a longer time than 1/60 s (a false frequency at
    # the last frame of every run, up to 0.9 Hz after a generator trip).
    ss.TDS.config.tf = spec.duration_s + 2 / RATE_HZ
    ss.TDS.config.tstep = 1 / RATE_HZ
    ss.TDS.config.no_tqdm = 1
    ss.TDS.config.criteria = 0  # keep going through large angle swings (gen trips)
    ss.TDS.run()
    t = np.asarray(ss.dae.ts.t)
    if t[-1] < ss.TDS.config.tf - 1e-6:
        raise SimulationFailedError(f"{spec.sid}: TDS stopped at {t[-1]:.3f} s")
    frames = np.arange(round(spec.duration_s * RATE_HZ) + 1) / RATE_HZ
    y = np.asarray(ss.dae.ts.y)
    # Events fall between frames, so each frame time has one value: take the last sample
    # at or before it (the ANDES grid steps by 1/60 s from the start and from each event,
    # so that sample is less than a frame old and never from across an event).
    idx = np.searchsorted(t, frames + 1e-9, side="right") - 1
    v = y[idx][:, ss.Bus.v.a]
    a = np.unwrap(y[idx][:, ss.Bus.a.a], axis=0)
    if not (np.isfinite(v).all() and np.isfinite(a).all()):
        raise SimulationFailedError(f"{spec.sid}: non-finite result")
    return Trajectory(
        frames, v, a, tuple(int(b) for b in ss.Bus.idx.v), tuple(float(x) for x in ss.Bus.Vn.v)
    )
