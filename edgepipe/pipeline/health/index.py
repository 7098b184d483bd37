"""Health index of an asset, 0 (act now) to 100 (as new), with its contributing factors.

Each factor maps one indicator to a condition in [0, 1] (1 = worst) and carries a
weight; the index is ``100 * (1 - sum(w * c) / sum(w))`` over the factors present, so
an asset monitored only by Modbus gets an index from its thermal factors alone. The
mapping is a transparent, documented scoring in the spirit of the CIGRE TB 761
condition-scoring approach, not a standardised formula; weights are configurable.

- ``hot_spot``: 0 at 98 C (C57.91 reference for normal aging minus the 12 C margin),
  1 at the hot-spot limit.
- ``aging``: 0 at F_AA <= 1, 1 at F_AA >= 8 (log scale: three doublings).
- ``loss_of_life``: 0 at none, 1 at 1 % of normal life consumed since start.
- ``cooling``: 0 at no top-oil residual, 1 at twice the cooling-failure threshold.
- ``dga``: 0 when every gas is typical, 1 at five times a typical level or rate; a
  discharge diagnosis (D1, D2, DT) counts at least 0.8.
- ``anomaly``: the anomaly model's score, clipped to [0, 1].
"""

from __future__ import annotations

__all__ = ["DEFAULT_WEIGHTS", "Factor", "HealthIndex", "health_index"]

import math
from collections.abc import Mapping
from dataclasses import dataclass


def _clip(x: float) -> float:
    return 0.0 if not math.isfinite(x) else min(max(x, 0.0), 1.0)


DEFAULT_WEIGHTS: dict[str, float] = {
    "hot_spot": 3.0, "aging": 2.0, "loss_of_life": 1.0, "cooling": 2.0, "dga": 4.0,
    "anomaly": 1.0,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    condition: float  # 0 good .. 1 bad
    weight: float
    value: float | str  # the indicator behind it, for the operator


@dataclass(frozen=True, slots=True)
class HealthIndex:
    asset: str
    index: float
    factors: tuple[Factor, ...]
    time_ns: int

    def to_dict(self) -> dict[str, object]:
        return {
            "asset": self.asset,
            "index": round(self.index, 1),
            "factors": {
                f.name: {"condition": round(f.condition, 3), "weight": f.weight,
                         "value": round(f.value, 4) if isinstance(f.value, float) else f.value}
                for f in self.factors
            },
        }  # fmt: skip


def _thermal(t: Mapping[str, float], w: Mapping[str, float]) -> list[Factor]:
    hot, limit = t["hot_spot_c"], t["hot_spot_limit_c"]
    res, res_k = t["top_oil_residual_k"], t["residual_raise_k"]
    f_aa = t["f_aa"]
    return [
        Factor("hot_spot", _clip((hot - 98.0) / (limit - 98.0)), w["hot_spot"], hot),
        Factor("aging", _clip(math.log2(max(f_aa, 1e-12)) / 3.0), w["aging"], f_aa),
        Factor("loss_of_life", _clip(t["loss_of_life_pct"]), w["loss_of_life"],
               t["loss_of_life_pct"]),
        Factor("cooling", _clip(res / (2.0 * res_k)), w["cooling"], res),
    ]  # fmt: skip


def _dga(d: Mapping[str, float | str], w: Mapping[str, float]) -> Factor:
    ratio = float(d["worst_ratio"])
    cond = _clip((ratio - 1.0) / 4.0) if ratio > 1.0 else 0.0
    if d["zone"] in ("D1", "D2", "DT"):
        cond = max(cond, 0.8)
    return Factor("dga", cond, w["dga"], str(d["zone"]))


def health_index(
    asset: str,
    time_ns: int,
    *,
    thermal: Mapping[str, float] | None = None,
    dga: Mapping[str, float | str] | None = None,
    anomaly: float | None = None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> HealthIndex | None:
    """The index from whatever indicators the asset has; None when it has none."""
    factors: list[Factor] = []
    if thermal:
        factors += _thermal(thermal, weights)
    if dga:
        factors.append(_dga(dga, weights))
    if anomaly is not None and math.isfinite(anomaly):
        factors.append(Factor("anomaly", _clip(anomaly), weights["anomaly"], anomaly))
    if not factors:
        return None
    total = sum(f.weight for f in factors)
    bad = sum(f.weight * f.condition for f in factors) / total
    return HealthIndex(asset, 100.0 * (1.0 - bad), tuple(factors), time_ns)
