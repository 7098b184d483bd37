"""What one scenario is: grid case, event kind, where, how big, when (no ANDES here).

Drawn from a seed so that ``make models`` regenerates exactly the same set. Event times
fall half-way between two 60 frames/s frames, so every frame is a clean pre- or
post-event sample of the simulation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RATE_HZ = 60.0
FNOM = 60.0
KINDS = ("normal", "fault", "line_trip", "gen_trip", "load_step", "oscillation")
CASES = {  # short name -> ANDES case file shipped with the package
    "ieee14": "ieee14/ieee14_full.xlsx",
    "ieee39": "ieee39/ieee39_full.xlsx",
    "kundur": "kundur/kundur_full.xlsx",
    "npcc": "npcc/npcc.xlsx",
    "wecc": "wecc/wecc_full.xlsx",
    "wscc9": "wscc9/wscc9.xlsx",  # + machine dynamics (scenarios/wscc9.py)
}
# Largest share of the system's generation (load) that one event may take out (change),
# and how many elements may go at once: a plant's units, a double-circuit line, a block
# of feeders. Small grids reach large shares with one element, big grids need several,
# so every grid sees events from a few percent up to these caps.
MAX_GEN_SHARE = 0.4
MAX_LOAD_SHARE = 0.3
MAX_ELEMENTS = {"gen_trip": (0.5, 0.3, 0.2), "load_step": (0.4, 0.3, 0.2, 0.1),
                "line_trip": (0.7, 0.3), "oscillation": (0.5, 0.3, 0.2)}  # fmt: skip
EVENT_DURATION_S = 6.0
NORMAL_DURATION_S = 30.0


@dataclass(frozen=True, slots=True)
class Devices:
    """Device names of one case, read once from ANDES (``andes_sim.devices``)."""

    buses: tuple[int, ...]
    lines: tuple[Any, ...]  # ANDES idx values: str or int depending on the case file
    gens: tuple[Any, ...]
    loads: tuple[Any, ...]
    gen_p: tuple[float, ...] = ()  # each generator's dispatch, pu (same order as gens)
    load_p: tuple[float, ...] = ()  # each load's active power, pu


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    sid: str
    case: str
    kind: str
    seed: int
    duration_s: float
    loading: float  # every load and generator scaled by this before the power flow
    start_s: float  # event start (NaN for normal)
    end_s: float  # event end (fault clearing, end of oscillation; = start for steps)
    params: dict[str, Any] = field(default_factory=dict)
    tve_max: float = 0.01  # PMU noise: total vector error up to this fraction
    drop_prob: float = 0.002  # chance that a frame is lost

    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True)


def _half_frame(t: float) -> float:
    return (np.floor(t * RATE_HZ) + 0.5) / RATE_HZ


def _pick(rng: np.random.Generator, items: tuple[Any, ...]) -> Any:
    item = items[int(rng.integers(len(items)))]
    return int(item) if isinstance(item, int | np.integer) else str(item)


def _several(
    rng: np.random.Generator,
    kind: str,
    items: tuple[Any, ...],
    share: tuple[float, ...],
    *,
    cap: float,
    keep: int,
) -> list[Any]:
    """1..k distinct random elements (k drawn from ``MAX_ELEMENTS``), at most all but
    ``keep`` of them, dropping the last picks while their share of the total is over
    ``cap`` (the first pick always stays, whatever its size)."""
    probs = MAX_ELEMENTS[kind]
    n = min(int(rng.choice(len(probs), p=probs)) + 1, max(1, len(items) - keep))
    order = rng.permutation(len(items))[:n].tolist()
    total = sum(share) if share else 0.0
    while len(order) > 1 and total > 0 and sum(share[i] for i in order) > cap * total:
        order.pop()
    return [int(items[i]) if isinstance(items[i], int | np.integer) else str(items[i])
            for i in order]  # fmt: skip


def _fluctuation(rng: np.random.Generator, dev: Devices, duration: float) -> list[Any]:
    """Load fluctuation: every 0.5 s one random load moves by up to +-2 % (random walk).

    The step shrinks on cases with few loads (kundur has two, each half the system), so
    that one step moves the whole system's load by a similar share on every case.
    """
    amp = 0.02 * min(1.0, float(np.sqrt(len(dev.loads) / 11)))
    steps = []
    for k in range(1, int(duration * 2)):
        load = _pick(rng, dev.loads)
        steps.append([load, round(k * 0.5 + 0.25 / RATE_HZ, 6), float(rng.uniform(-amp, amp)) + 1])
    return steps


def draw(case: str, kind: str, seed: int, dev: Devices) -> ScenarioSpec:
    """One random scenario of ``kind`` on ``case``; ``seed`` fixes every choice."""
    rng = np.random.default_rng([seed, KINDS.index(kind), list(CASES).index(case)])
    normal = kind == "normal"
    duration = NORMAL_DURATION_S if normal else EVENT_DURATION_S
    start = float("nan") if normal else _half_frame(rng.uniform(1.5, 2.5))
    end = start
    p: dict[str, Any] = {"fluctuation": _fluctuation(rng, dev, duration)}
    if kind == "fault":
        cycles = int(rng.integers(3, 11))
        end = start + cycles / RATE_HZ
        p |= {
            "bus": _pick(rng, dev.buses),
            "cycles": cycles,
            "rf": float(rng.uniform(0.0, 0.02)),
            "xf": float(10 ** rng.uniform(-3, -1.3)),
        }
    elif kind == "line_trip":
        p["lines"] = _several(rng, kind, dev.lines, (), cap=1.0, keep=1)
    elif kind == "gen_trip":
        p["gens"] = _several(rng, kind, dev.gens, dev.gen_p, cap=MAX_GEN_SHARE, keep=2)
    elif kind == "load_step":
        up = rng.random() < 0.5
        factor = float(rng.uniform(1.1, 1.5) if up else rng.uniform(0.5, 0.9))
        cap = MAX_LOAD_SHARE / abs(factor - 1)
        p |= {
            "loads": _several(rng, kind, dev.loads, dev.load_p, cap=cap, keep=0),
            "factor": factor,
        }
    elif kind == "oscillation":
        freq = float(rng.uniform(0.3, 2.0))
        end = _half_frame(start + rng.uniform(2.0, 3.0))
        amplitude = float(rng.uniform(0.05, 0.25))
        p |= {
            "loads": _several(
                rng, kind, dev.loads, dev.load_p, cap=MAX_LOAD_SHARE / 2 / amplitude, keep=0
            ),
            "freq_hz": freq,
            "amplitude": amplitude,
            "damping": float(rng.uniform(0.0, 0.05)),  # damping ratio of the envelope
        }
    return ScenarioSpec(
        sid=f"{case}-{kind}-{seed}",
        case=case,
        kind=kind,
        seed=seed,
        duration_s=duration,
        loading=float(rng.uniform(0.85, 1.1)),
        start_s=start,
        end_s=end,
        params=p,
        tve_max=float(rng.uniform(0.002, 0.01)),
        drop_prob=float(rng.uniform(0.0, 0.004)),
    )
