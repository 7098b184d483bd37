"""Simulated plants for the device simulators: a transformer and its DGA monitor.

The transformer runs the same IEEE C57.91 model (``thermal``) the detectors use, so a
scenario is physically coherent: a cooling failure is the *plant* switching to ONAN
exponents and time constants while the monitor still reports the fans' stage.
``time_scale`` is model seconds per real second, so a daily load cycle fits a demo.

Scenarios:

- transformer: ``normal`` (daily load cycle), ``overload`` (1.4 pu from ``event_at_s``),
  ``cooling_failure`` (fans fail at ``event_at_s``; the reported stage stays);
- DGA: ``normal``, ``thermal`` (a developing thermal fault, T2/T3 gases), ``arcing``
  (C2H2 and H2 rise fast: D1/D2).
"""

from __future__ import annotations

__all__ = ["DgaPlant", "TransformerPlant"]

import math
import random
from dataclasses import dataclass, field

from edgepipe.pipeline.health.thermal import ThermalParams, ThermalState, steady_state, step

_DAY = 86_400.0


@dataclass(slots=True)
class TransformerPlant:
    """Load, ambient, temperatures and cooling stage of one transformer over time."""

    params: ThermalParams
    rated_current_a: float = 1000.0
    scenario: str = "normal"
    time_scale: float = 1.0
    event_at_s: float = 0.0  # model seconds after start
    seed: int = 0
    _t: float = 0.0
    _state: ThermalState | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.scenario not in ("normal", "overload", "cooling_failure"):
            raise ValueError(f"unknown transformer scenario {self.scenario!r}")
        self._rng.seed(self.seed)

    def load_pu(self, t: float) -> float:
        """Daily cycle: trough 0.45 pu at 04:00, peak 0.85 pu at 16:00."""
        base = 0.65 + 0.2 * math.sin(2 * math.pi * (t / _DAY - 10 / 24))
        if self.scenario == "overload" and t >= self.event_at_s:
            return 1.4
        return base

    @staticmethod
    def ambient(t: float) -> float:
        return 25.0 + 6.0 * math.sin(2 * math.pi * (t / _DAY - 9 / 24))

    @staticmethod
    def stage_for(load: float) -> float:
        """The cooling control: fans above 0.5 pu, pumps above 0.9 pu."""
        return 2.0 if load > 0.9 else 1.0 if load > 0.5 else 0.0

    def actual_stage(self, t: float, commanded: float) -> float:
        failed = self.scenario == "cooling_failure" and t >= self.event_at_s
        return 0.0 if failed else commanded

    def values(self, t_real_s: float) -> dict[str, float]:
        """The monitor's readings at ``t_real_s`` seconds after start."""
        t = t_real_s * self.time_scale
        if self._state is None:
            load = self.load_pu(t)
            self._state = steady_state(self.params, load, self.stage_for(load))
        elif t > self._t:
            load = self.load_pu(self._t)
            stage = self.actual_stage(self._t, self.stage_for(load))
            self._state = step(self.params, self._state, load, stage, t - self._t)
        self._t = max(self._t, t)
        load = self.load_pu(t)
        amb = self.ambient(t)
        noise = self._rng.gauss
        amps = [load * self.rated_current_a * f * (1 + noise(0, 0.002)) for f in (1.0, 1.02, 0.98)]
        return {
            "load_a": amps[0], "load_b": amps[1], "load_c": amps[2],
            "ambient_c": amb, "top_oil_c": self._state.top_oil(amb) + noise(0, 0.05),
            "winding_c": self._state.hot_spot(amb) + noise(0, 0.05),
            "cooling_stage": self.stage_for(load), "tap_position": 9.0 + round(4 * (load - 0.65)),
        }  # fmt: skip


#: Baseline ppm of a healthy unit, and the growth of each fault in ppm per model day.
_BASE = {"h2": 20.0, "ch4": 10.0, "c2h2": 0.3, "c2h4": 8.0, "c2h6": 15.0, "co": 250.0,
         "co2": 2500.0, "moisture": 10.0}  # fmt: skip
_GROWTH = {
    "normal": {"co": 0.5, "co2": 5.0},
    "thermal": {"h2": 30.0, "ch4": 100.0, "c2h4": 90.0, "c2h6": 40.0, "c2h2": 0.5,
                "co": 2.0, "co2": 20.0},
    "arcing": {"h2": 400.0, "ch4": 60.0, "c2h2": 200.0, "c2h4": 150.0, "c2h6": 10.0},
}  # fmt: skip


@dataclass(slots=True)
class DgaPlant:
    """Dissolved gases (ppm) and moisture of one transformer's oil over time."""

    scenario: str = "normal"
    time_scale: float = 1.0
    event_at_s: float = 0.0
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.scenario not in _GROWTH:
            raise ValueError(f"unknown DGA scenario {self.scenario!r}")
        self._rng.seed(self.seed)

    def values(self, t_real_s: float) -> dict[str, float]:
        t = t_real_s * self.time_scale
        days = max(t - self.event_at_s, 0.0) / _DAY
        growth = _GROWTH[self.scenario]
        out = {}
        for gas, base in _BASE.items():
            v = base + growth.get(gas, 0.0) * days
            out[gas] = max(v * (1 + self._rng.gauss(0, 0.005)), 0.0)
        return out
