"""Deterministic threshold rules and the data-quality detector.

Each rule watches one feature with a raise and a clear threshold (hysteresis: e.g.
under-voltage raises below 0.9 pu and clears only above 0.95 pu; in between the alert
engine keeps the state). A window with too much bad or missing data gives no fault
verdict at all (``active`` and ``clear`` both False, evidence says why) and the
``DataQualityDetector`` raises kind ``"data_quality"`` instead (design.md, "Quality").
Default thresholds follow common grid-code practice (EN 50160 +-10 % voltage band;
IEEE 1547-2018 clause 6.5 frequency trip bands are site settings, so these are only
starting points meant to be overridden from the config file).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_RULES",
    "DataQualityDetector",
    "QualityConfig",
    "RuleConfig",
    "RulesConfig",
    "ThresholdRule",
    "build_rules",
]

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepipe.core import (
    BAD_QUALITY,
    ConfigError,
    ConfigIssue,
    Score,
    ScoreBatch,
    Severity,
    Window,
)
from edgepipe.core.tables import check, from_mapping
from edgepipe.pipeline.detectors import Detector
from edgepipe.pipeline.features import FEATURE_INDEX, row_signals, window_assets

_BAD = np.uint16(BAD_QUALITY)


class Direction(enum.StrEnum):
    BELOW = "below"  # raise when the feature drops below raise_threshold
    ABOVE = "above"


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One threshold rule. ``signal`` names the ``row_signals`` series used to find the
    first crossing row (its absolute value when ``signal_abs``); "" = window end."""

    kind: str
    feature: str
    direction: Direction
    raise_threshold: float
    clear_threshold: float
    severity: Severity = Severity.WARNING
    unit: str = ""
    signal: str = ""
    signal_abs: bool = False
    enabled: bool = True

    def __post_init__(self) -> None:
        check(bool(self.kind), "kind", "must not be empty")
        check(self.feature in FEATURE_INDEX, "feature", f"unknown feature {self.feature!r}")
        finite = np.isfinite(self.raise_threshold) and np.isfinite(self.clear_threshold)
        check(bool(finite), "raise_threshold", "thresholds must be finite")
        below = self.direction is Direction.BELOW
        ok = (
            self.clear_threshold >= self.raise_threshold
            if below
            else (self.clear_threshold <= self.raise_threshold)
        )
        check(ok, "clear_threshold", "must lie on the healthy side of raise_threshold")


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Fraction of bad-quality or missing rows above which a window is unusable."""

    raise_fraction: float = 0.2
    clear_fraction: float = 0.05
    severity: Severity = Severity.WARNING
    enabled: bool = True

    def __post_init__(self) -> None:
        check(0.0 <= self.raise_fraction <= 1.0, "raise_fraction", "must be in [0, 1]")
        check(
            0.0 <= self.clear_fraction <= self.raise_fraction,
            "clear_fraction",
            "must be in [0, raise_fraction]",
        )


_B, _A, _W = Direction.BELOW, Direction.ABOVE, Severity.WARNING
DEFAULT_RULES: tuple[RuleConfig, ...] = (
    RuleConfig("undervoltage", "v_pu_min", _B, 0.9, 0.95, Severity.CRITICAL, "pu", "v_pu"),
    RuleConfig("overvoltage", "v_pu_max", _A, 1.1, 1.05, Severity.CRITICAL, "pu", "v_pu"),
    RuleConfig("underfrequency", "freq_dev_min_hz", _B, -0.5, -0.2, _W, "Hz", "freq_dev_hz"),
    RuleConfig("overfrequency", "freq_dev_max_hz", _A, 0.5, 0.2, _W, "Hz", "freq_dev_hz"),
    RuleConfig("rocof", "rocof_abs_max_hz_s", _A, 1.0, 0.5, _W, "Hz/s", "rocof_hz_s", True),
    RuleConfig("angle_jump", "angle_jump_deg", _A, 10.0, 5.0, _W, "deg", "angle_jump_deg"),
)


@dataclass(frozen=True, slots=True)
class RulesConfig:
    rules: tuple[RuleConfig, ...] = DEFAULT_RULES
    quality: QualityConfig = field(default_factory=QualityConfig)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], prefix: str = "rules") -> RulesConfig:
        """``[rules.quality]`` and ``[rules.<kind>]`` tables; a known kind's table overrides
        the default's fields, a new kind must give ``feature``, ``direction``, thresholds."""
        quality = from_mapping(QualityConfig, table.get("quality", {}), f"{prefix}.quality")
        rules = {r.kind: r for r in DEFAULT_RULES}
        for kind, sub in table.items():
            if kind == "quality":
                continue
            key = f"{prefix}.{kind}"
            if not isinstance(sub, Mapping):
                raise ConfigError(ConfigIssue(key, "expected a table"))
            merged = {**_as_table(rules.get(kind)), **sub, "kind": kind}
            for req in ("feature", "direction", "raise_threshold", "clear_threshold"):
                if req not in merged:
                    raise ConfigError(ConfigIssue(f"{key}.{req}", "required for a new rule"))
            rules[kind] = from_mapping(RuleConfig, merged, key)
        return cls(tuple(rules.values()), quality)


def _as_table(rule: RuleConfig | None) -> dict[str, Any]:
    return {} if rule is None else {f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)}


def _json(x: float) -> float | None:
    """Evidence travels as JSON, which has no NaN."""
    return None if math.isnan(x) else x


def _quality_fraction(features: np.ndarray) -> np.ndarray:
    bad = features[:, FEATURE_INDEX["bad_quality_frac"]]
    missing = features[:, FEATURE_INDEX["missing_frac"]]
    out: np.ndarray = np.fmax(bad, missing)
    return out


class ThresholdRule:
    """One ``RuleConfig`` as a ``Detector``; ``score`` is the feature value (0 if NaN)."""

    def __init__(self, config: RuleConfig, quality: QualityConfig | None = None) -> None:
        self.config = config
        self.name = config.kind
        self.model = f"rules/{config.kind}"
        self._col = FEATURE_INDEX[config.feature]
        self._max_bad = (quality or QualityConfig()).raise_fraction
        self._static = {
            "feature": config.feature,
            "unit": config.unit,
            "raise_threshold": config.raise_threshold,
            "clear_threshold": config.clear_threshold,
        }

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]:
        return self.evaluate_batch(windows, features).scores() if windows else []

    def evaluate_batch(self, windows: Sequence[Window], features: np.ndarray) -> ScoreBatch:
        """The verdicts in columns; a ``Score`` is built only for the rows asked for."""
        c = self.config
        value = features[:, self._col]
        usable = _quality_fraction(features) <= self._max_bad  # NaN -> not usable
        with np.errstate(invalid="ignore"):
            if c.direction is Direction.BELOW:
                active, clear = value < c.raise_threshold, value >= c.clear_threshold
            else:
                active, clear = value > c.raise_threshold, value <= c.clear_threshold
        active &= usable
        clear &= usable
        # Crossings now, while the row signals of this feature pass are at hand.
        crossing: dict[int, tuple[int, dict[str, Any]]] = {}
        for k in np.flatnonzero(active).tolist():
            extra: dict[str, Any] = {}
            crossing[k] = (self._first_crossing(windows[k], extra), extra)
        static = self._static
        kind, sev, model = c.kind, c.severity, self.model

        def make(k: int) -> Score:
            w = windows[k]
            v = float(value[k])
            finite = not math.isnan(v)
            evidence: dict[str, Any] = {**static, "value": v if finite else None}
            if not usable[k]:
                evidence["reason"] = "data_quality"
            elif not finite:
                evidence["reason"] = "feature_nan"
            hit = crossing.get(k)
            t = w.end_ns
            if hit is not None:
                t = hit[0]
                evidence.update(hit[1])
            info = w.info
            return Score(info.stream, info.asset, kind, sev, v if finite else 0.0,
                         bool(active[k]), bool(clear[k]), model, t, w.start_ns, w.end_ns,
                         evidence)  # fmt: skip

        return ScoreBatch(kind, model, window_assets(windows), active, make)

    def _first_crossing(self, window: Window, evidence: dict[str, Any]) -> int:
        c = self.config
        if not c.signal:
            return window.end_ns
        sig = row_signals(window).get(c.signal)
        if sig is None:
            return window.end_ns
        sig = np.abs(sig) if c.signal_abs else sig
        with np.errstate(invalid="ignore"):
            hit = (
                sig < c.raise_threshold
                if c.direction is Direction.BELOW
                else sig > c.raise_threshold
            )
        rows = np.flatnonzero(hit)
        if rows.size == 0:
            return window.end_ns
        first = int(rows[0])
        evidence["crossing_value"] = float(sig[first])
        evidence["crossing_row"] = first
        return int(window.times_ns[first])


class DataQualityDetector:
    """Kind ``"data_quality"``: too many bad-quality or missing (gap) rows in a window."""

    name = "data_quality"
    model = "rules/data_quality"

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def evaluate(self, windows: Sequence[Window], features: np.ndarray) -> list[Score]:
        return self.evaluate_batch(windows, features).scores() if windows else []

    def evaluate_batch(self, windows: Sequence[Window], features: np.ndarray) -> ScoreBatch:
        """The verdicts in columns; a ``Score`` is built only for the rows asked for."""
        c = self.config
        frac = _quality_fraction(features)
        with np.errstate(invalid="ignore"):
            active, clear = frac > c.raise_fraction, frac <= c.clear_fraction
        bad_col = features[:, FEATURE_INDEX["bad_quality_frac"]]
        miss_col = features[:, FEATURE_INDEX["missing_frac"]]
        nan_col = features[:, FEATURE_INDEX["nan_frac"]]

        def make(k: int) -> Score:
            w = windows[k]
            v = float(frac[k])
            finite = not math.isnan(v)
            evidence: dict[str, Any] = {
                "bad_quality_frac": _json(float(bad_col[k])),
                "missing_frac": _json(float(miss_col[k])),
                "nan_frac": _json(float(nan_col[k])),
                "raise_fraction": c.raise_fraction,
                "clear_fraction": c.clear_fraction,
            }
            t = w.end_ns
            if active[k]:
                bad_rows = ((w.quality & _BAD) != 0) | np.isnan(w.values).all(axis=1)
                rows = np.flatnonzero(bad_rows)
                t = int(w.times_ns[rows[0]]) if rows.size else t
            return Score(w.info.stream, w.info.asset, "data_quality", c.severity,
                         v if finite else 0.0, bool(active[k]), bool(clear[k]), self.model, t,
                         w.start_ns, w.end_ns, evidence)  # fmt: skip

        return ScoreBatch("data_quality", self.model, window_assets(windows), active, make)


def build_rules(config: RulesConfig | None = None) -> list[Detector]:
    """The enabled rules of ``config`` (defaults if None) plus the data-quality detector."""
    config = config or RulesConfig()
    out: list[Detector] = [ThresholdRule(r, config.quality) for r in config.rules if r.enabled]
    if config.quality.enabled:
        out.append(DataQualityDetector(config.quality))
    return out
