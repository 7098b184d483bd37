"""The ``[health]`` section: asset-health settings of the whole site.

```toml
[health]
publish_interval_s = 60.0      # health index per asset, at most this often (event time)
hot_spot_limit_c = 140.0       # transformer defaults; a stream's [params] overrides them
aging_raise = 2.0
residual_raise_k = 5.0

[health.weights]               # health index factor weights (any subset)
dga = 4.0

[health.dga_typical_ppm]       # IEC 60599 typical concentrations (any subset of gases)
c2h2 = 3.0

[health.dga_typical_rate_ppm_year]   # IEC 60599 typical rates of increase, ppm/year
c2h2 = 2.0
```

Every key is checked; a problem is reported at its dotted path (``health.weights.dgaa``).
Omitted keys keep the defaults of ``index.DEFAULT_WEIGHTS`` and ``dga.GasLimits``.
"""

from __future__ import annotations

__all__ = ["TRANSFORMER_DEFAULTS", "HealthConfig"]

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgepipe.core import ConfigError, ConfigIssue
from edgepipe.pipeline.health.dga import GASES, GasLimits
from edgepipe.pipeline.health.index import DEFAULT_WEIGHTS

#: Stream params the transformer detector reads, and their defaults (transformer.py).
TRANSFORMER_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {"hot_spot_limit_c": 140.0, "aging_raise": 2.0, "residual_raise_k": 5.0}
)
_SCALARS = {"publish_interval_s": 60.0, **TRANSFORMER_DEFAULTS}
_TABLES = ("weights", "dga_typical_ppm", "dga_typical_rate_ppm_year")
_DAYS_PER_YEAR = 365.0


def _frozen(m: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True, slots=True)
class HealthConfig:
    publish_interval_s: float = 60.0
    transformer: Mapping[str, float] = field(default_factory=lambda: TRANSFORMER_DEFAULTS)
    weights: Mapping[str, float] = field(default_factory=lambda: _frozen(DEFAULT_WEIGHTS))
    gas_limits: GasLimits = field(default_factory=GasLimits)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], prefix: str = "health") -> HealthConfig:
        issues = [ConfigIssue(f"{prefix}.{k}", "unknown key") for k in table
                  if k not in _SCALARS and k not in _TABLES]  # fmt: skip
        scalars = {k: _positive(table.get(k, d), f"{prefix}.{k}", issues)
                   for k, d in _SCALARS.items()}  # fmt: skip
        defaults = GasLimits()
        per_year = {g: v * _DAYS_PER_YEAR for g, v in defaults.rates.items()}
        weights = _table(table, "weights", DEFAULT_WEIGHTS, prefix, issues)
        levels = _table(table, "dga_typical_ppm", defaults.levels, prefix, issues)
        rates = _table(table, "dga_typical_rate_ppm_year", per_year, prefix, issues)
        if issues:
            raise ConfigError(issues)
        return cls(
            publish_interval_s=scalars.pop("publish_interval_s"),
            transformer=_frozen(scalars),
            weights=_frozen(weights),
            gas_limits=GasLimits(levels=_frozen(levels),
                                 rates=_frozen({g: v / _DAYS_PER_YEAR for g, v in rates.items()})),
        )  # fmt: skip


def _positive(value: object, key: str, issues: list[ConfigIssue]) -> float:
    """A finite number > 0 (a zero weight or typical value would divide by zero)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        issues.append(ConfigIssue(key, f"expected a number > 0, got {value!r}"))
        return math.nan
    return float(value)


def _table(
    table: Mapping[str, Any], name: str, defaults: Mapping[str, float], prefix: str,
    issues: list[ConfigIssue],
) -> dict[str, float]:  # fmt: skip
    out = dict(defaults)
    sub = table.get(name, {})
    key = f"{prefix}.{name}"
    if not isinstance(sub, Mapping):
        issues.append(ConfigIssue(key, "expected a table"))
        return out
    known = defaults if name == "weights" else GASES
    for k, v in sub.items():
        if k not in known:
            issues.append(ConfigIssue(f"{key}.{k}", f"unknown (known: {', '.join(known)})"))
        else:
            out[k] = _positive(v, f"{key}.{k}", issues)
    return out
