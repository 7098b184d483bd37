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
}
EVENT_DURATION_S = 6.0
NORMAL_DURATION_S = 30.0


@dataclass(frozen=True, slots=True)
class Devices:
    """Device names of one case, read once from ANDES (``andes_sim.devices``)."""

    buses: tuple[int, ...]
    lines: tuple[Any, ...]  # ANDES idx values: str or int depending on the case file
    gens: tuple[Any, ...]
    loads: tuple[Any, ...]


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
        p["line"] = _pick(rng, dev.lines)
    elif kind == "gen_trip":
        p["gen"] = _pick(rng, dev.gens)
    elif kind == "load_step":
        up = rng.random() < 0.5
        p |= {
            "load": _pick(rng, dev.loads),
            "factor": float(rng.uniform(1.1, 1.5) if up else rng.uniform(0.5, 0.9)),
        }
    elif kind == "oscillation":
        freq = float(rng.uniform(0.3, 2.0))
        end = _half_frame(start + rng.uniform(2.0, 3.0))
        p |= {
            "load": _pick(rng, dev.loads),
            "freq_hz": freq,
            "amplitude": float(rng.uniform(0.05, 0.25)),
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
