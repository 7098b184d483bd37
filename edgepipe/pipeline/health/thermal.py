"""Transformer thermal model and insulation aging after IEEE Std C57.91-2011.

Top-oil rise and hot-spot rise follow the exponential model of clause 7 (equations 11-18):

- ultimate top-oil rise  ``dTO_U = dTO_R * ((K^2 R + 1) / (R + 1)) ** n``   (eq. 15)
- ultimate hot-spot rise ``dH_U  = dH_R * K ** (2 m)``                       (eq. 18)
- both approach their ultimate value exponentially, with time constants ``tau_TO``
  (oil) and ``tau_w`` (winding)                                              (eq. 11, 16)
- ``theta_H = theta_A + dTO + dH``                                            (eq. 10)

``K`` is the load in per unit of the rating of the active cooling stage, ``R`` the ratio
of load losses at rated load to no-load losses, ``n`` and ``m`` the oil and winding
exponents of the cooling mode (clause 7, Table 4: ONAN 0.8/0.8, ONAF 0.9/0.8, OFAF
0.9/0.8, ODAF 1.0/1.0).

Aging (clause 5, for 65 C rise thermally upgraded paper, reference hot spot 110 C):

- ``F_AA = exp(15000/383 - 15000/(theta_H + 273))``                          (eq. 2)
- ``F_EQA = sum(F_AA dt) / sum(dt)``                                          (eq. 3)
- ``%LOL = F_EQA * t * 100 / normal life``, normal life 180 000 h (Table 2)   (eq. 4)

Inputs are held constant over each step, so the exponential update is exact for a
piecewise-constant load: stepping 1 s or 1 h gives the same answer.
"""

from __future__ import annotations

__all__ = [
    "NORMAL_LIFE_H",
    "CoolingMode",
    "ThermalParams",
    "ThermalState",
    "aging_factor",
    "loss_of_life_pct",
    "steady_state",
    "step",
]

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Normal insulation life, hours (C57.91-2011 Table 2: 180 000 h, 20.55 years).
NORMAL_LIFE_H = 180_000.0
_REF_K = 383.0  # 110 C in kelvin: F_AA = 1 at the reference hot spot
_B = 15_000.0  # aging rate constant of eq. 2


@dataclass(frozen=True, slots=True)
class CoolingMode:
    """Rated values of one cooling stage (from the nameplate / heat-run test)."""

    name: str
    rating_pu: float  # this stage's rating in per unit of the base current
    dto_rated_k: float  # top-oil rise over ambient at rated load, K
    dh_rated_k: float  # hot-spot rise over top oil at rated load, K
    n: float  # oil exponent
    m: float  # winding exponent
    tau_to_min: float  # oil time constant, minutes
    tau_w_min: float  # winding time constant, minutes


@dataclass(frozen=True, slots=True)
class ThermalParams:
    """The transformer: loss ratio ``r`` and one ``CoolingMode`` per cooling stage."""

    r: float
    modes: tuple[CoolingMode, ...]

    def mode(self, stage: float) -> CoolingMode:
        """The mode of a cooling stage number; out-of-range stages clamp to the ends."""
        if not math.isfinite(stage):
            return self.modes[0]
        return self.modes[min(max(round(stage), 0), len(self.modes) - 1)]

    @classmethod
    def from_params(cls, p: Mapping[str, float]) -> ThermalParams:
        """From profile ``[params]``: ``loss_ratio`` and per stage ``<s>_rating_pu``,
        ``<s>_dto_k``, ``<s>_dh_k``, ``<s>_n``, ``<s>_m``, ``<s>_tau_to_min``,
        ``<s>_tau_w_min`` with ``s`` in ``stage0``, ``stage1``...; defaults are a typical
        ONAN/ONAF/OFAF unit (C57.91 Table 4 exponents)."""
        modes = []
        for i, d in enumerate(DEFAULT_MODES):
            s = f"stage{i}"
            modes.append(
                CoolingMode(
                    d.name,
                    p.get(f"{s}_rating_pu", d.rating_pu),
                    p.get(f"{s}_dto_k", d.dto_rated_k),
                    p.get(f"{s}_dh_k", d.dh_rated_k),
                    p.get(f"{s}_n", d.n),
                    p.get(f"{s}_m", d.m),
                    p.get(f"{s}_tau_to_min", d.tau_to_min),
                    p.get(f"{s}_tau_w_min", d.tau_w_min),
                )
            )
        return cls(r=p.get("loss_ratio", 4.5), modes=tuple(modes))


DEFAULT_MODES = (
    CoolingMode("ONAN", 0.6, 55.0, 25.0, 0.8, 0.8, 180.0, 7.0),
    CoolingMode("ONAF", 0.8, 55.0, 25.0, 0.9, 0.8, 150.0, 7.0),
    CoolingMode("OFAF", 1.0, 55.0, 25.0, 0.9, 0.8, 90.0, 7.0),
)


@dataclass(frozen=True, slots=True)
class ThermalState:
    """Top-oil rise over ambient and hot-spot rise over top oil, K."""

    dto: float
    dh: float

    def top_oil(self, ambient: float) -> float:
        return ambient + self.dto

    def hot_spot(self, ambient: float) -> float:
        return ambient + self.dto + self.dh


def _ultimate(params: ThermalParams, load_pu: float, stage: float) -> tuple[float, float]:
    mode = params.mode(stage)
    k = max(load_pu, 0.0) / mode.rating_pu
    dto_u = mode.dto_rated_k * ((k * k * params.r + 1.0) / (params.r + 1.0)) ** mode.n
    dh_u = mode.dh_rated_k * k ** (2.0 * mode.m)
    return dto_u, dh_u


def steady_state(params: ThermalParams, load_pu: float, stage: float) -> ThermalState:
    """The ultimate rises for a constant load (eq. 15 and 18)."""
    return ThermalState(*_ultimate(params, load_pu, stage))


def step(
    params: ThermalParams, state: ThermalState, load_pu: float, stage: float, dt_s: float
) -> ThermalState:
    """Advance ``dt_s`` seconds at constant load and cooling stage (eq. 11 and 16)."""
    mode = params.mode(stage)
    dto_u, dh_u = _ultimate(params, load_pu, stage)
    a_to = math.exp(-dt_s / (60.0 * mode.tau_to_min))
    a_w = math.exp(-dt_s / (60.0 * mode.tau_w_min))
    return ThermalState(dto_u + (state.dto - dto_u) * a_to, dh_u + (state.dh - dh_u) * a_w)


def aging_factor(hot_spot_c: float) -> float:
    """Aging acceleration factor F_AA at a hot-spot temperature (eq. 2)."""
    return math.exp(_B / _REF_K - _B / (hot_spot_c + 273.0))


def loss_of_life_pct(f_eqa: float, hours: float) -> float:
    """Percent loss of life over ``hours`` at equivalent aging ``f_eqa`` (eq. 4)."""
    return f_eqa * hours * 100.0 / NORMAL_LIFE_H
