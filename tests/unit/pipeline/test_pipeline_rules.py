"""Threshold rules, hysteresis bands, the data-quality path, config from TOML tables."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.core import AlertState, ConfigError, Quality, SampleBatch, Window
from edgepipe.pipeline import (
    AlertConfig,
    AlertEngine,
    RulesConfig,
    WindowConfig,
    Windower,
    build_rules,
    evaluate_all,
)
from edgepipe.pipeline.testing import V_BASE, pmu_batch, pmu_info

INFO = pmu_info(rate_hz=60.0)


def window(batch: SampleBatch) -> Window:
    return Window(INFO, batch.times_ns, batch.values, batch.quality)


def by_kind(w: Window) -> dict[str, object]:
    return {s.kind: s for s in evaluate_all(build_rules(), [w])}


def sag(depth: float, start: int = 20, n: int = 40) -> np.ndarray:
    return np.where(np.arange(n) >= start, depth, 1.0)


def test_undervoltage_event_time_is_the_first_crossing_row() -> None:
    b = pmu_batch(INFO, 40, v_pu=sag(0.7, start=23))
    s = by_kind(window(b))["undervoltage"]
    assert s.active and not s.clear  # type: ignore[attr-defined]
    assert s.event_time_ns == int(b.times_ns[23])  # type: ignore[attr-defined]
    assert s.window_end_ns == int(b.times_ns[-1])  # type: ignore[attr-defined]
    ev = s.evidence  # type: ignore[attr-defined]
    assert ev["value"] == pytest.approx(0.7) and ev["raise_threshold"] == 0.9
    assert ev["unit"] == "pu" and ev["crossing_row"] == 23


@pytest.mark.parametrize(
    ("depth", "active", "clear"),
    [(0.85, True, False), (0.92, False, False), (0.97, False, True)],
    ids=["below-raise", "inside-band", "above-clear"],
)
def test_undervoltage_hysteresis_band(depth: float, active: bool, clear: bool) -> None:
    s = by_kind(window(pmu_batch(INFO, 40, v_pu=sag(depth))))["undervoltage"]
    assert (s.active, s.clear) == (active, clear)  # type: ignore[attr-defined]


def test_frequency_rocof_and_angle_rules_fire_on_their_signals() -> None:
    t = np.arange(40) / 60.0
    under = by_kind(window(pmu_batch(INFO, 40, f_hz=60.0 - 0.8 * np.minimum(t * 4, 1))))
    assert under["underfrequency"].active and under["rocof"].active  # type: ignore[attr-defined]
    assert not under["overfrequency"].active  # type: ignore[attr-defined]
    step = np.where(np.arange(40) >= 30, np.radians(20.0), 0.0)
    jump = by_kind(window(pmu_batch(INFO, 40, angle_step_rad=step)))
    assert jump["angle_jump"].active  # type: ignore[attr-defined]
    assert jump["angle_jump"].evidence["value"] == pytest.approx(20.0)  # type: ignore[attr-defined]
    assert not jump["undervoltage"].active  # type: ignore[attr-defined]


def test_bad_data_gives_a_data_quality_score_not_a_fault() -> None:
    b = pmu_batch(INFO, 40)
    b.values[5:15, :6] = 1.0  # a 0 pu "sag" the PMU flagged invalid
    b.quality[5:15] = Quality.INVALID | Quality.DEVICE_ERROR
    scores = by_kind(window(b))
    dq = scores["data_quality"]
    assert dq.active and dq.evidence["bad_quality_frac"] == 0.25  # type: ignore[attr-defined]
    assert dq.event_time_ns == int(b.times_ns[5])  # type: ignore[attr-defined]
    for kind in ("undervoltage", "angle_jump", "rocof"):
        s = scores[kind]
        assert not s.active and not s.clear  # type: ignore[attr-defined]
        assert s.evidence["reason"] == "data_quality"  # type: ignore[attr-defined]


def test_missing_frames_raise_a_data_quality_alert_end_to_end() -> None:
    b = pmu_batch(INFO, 200)
    keep = np.ones(200, dtype=bool)
    keep[100:112] = False  # 12 frames lost on the wire
    w = Windower(INFO, WindowConfig(length=30, hop=10))
    engine = AlertEngine("site", AlertConfig(min_hold_ns=0))
    alerts = []
    for i in np.flatnonzero(keep):
        for win in w.push(
            SampleBatch(b.stream, b.times_ns[i : i + 1], b.values[i : i + 1], b.quality[i : i + 1])
        ):
            alerts += engine.process(evaluate_all(build_rules(), [win]))
    assert [(a.kind, a.state) for a in alerts] == [
        ("data_quality", AlertState.RAISED),
        ("data_quality", AlertState.CLEARED),
    ]
    assert alerts[0].event_time_ns == int(b.times_ns[100])
    # The raising window (frames 81..110) is the first with more than 20 % missing rows.
    assert alerts[0].evidence["missing_frac"] == pytest.approx(11 / 30)


def test_sag_end_to_end_raises_once_and_clears_once() -> None:
    n = 600
    v = np.where((np.arange(n) >= 200) & (np.arange(n) < 260), 0.6, 1.0)
    info = pmu_info(rate_hz=60.0, v_nominal=V_BASE)  # absolute per unit needs the nominal
    b = pmu_batch(info, n, v_pu=v)
    w = Windower(info, WindowConfig(length=30, hop=1))
    engine = AlertEngine("site")
    alerts = []
    for i in range(0, n, 7):  # batches of 7 rows, windows of every frame
        wins = w.push(
            SampleBatch(b.stream, b.times_ns[i : i + 7], b.values[i : i + 7], b.quality[i : i + 7])
        )
        alerts += engine.process(evaluate_all(build_rules(), wins))
    assert {a.kind for a in alerts} == {"undervoltage"}  # no swell on recovery
    uv = [a for a in alerts if a.kind == "undervoltage"]
    assert [a.state for a in uv] == [AlertState.RAISED, AlertState.CLEARED]
    assert uv[0].event_time_ns == int(b.times_ns[200]) and uv[0].id == uv[1].id
    assert uv[1].event_time_ns >= int(b.times_ns[260])


def test_rules_config_from_toml_tables() -> None:
    cfg = RulesConfig.from_mapping(
        {
            "undervoltage": {"raise_threshold": 0.85, "severity": "warning"},
            "quality": {"raise_fraction": 0.5},
            "v_unbalance": {
                "feature": "v_unbalance_pct",
                "direction": "above",
                "raise_threshold": 2.0,
                "clear_threshold": 1.5,
                "unit": "%",
            },
            "angle_jump": {"enabled": False},
        }
    )
    kinds = {r.kind: r for r in cfg.rules}
    assert kinds["undervoltage"].raise_threshold == 0.85
    assert kinds["undervoltage"].clear_threshold == 0.95  # default kept
    assert cfg.quality.raise_fraction == 0.5
    names = [d.name for d in build_rules(cfg)]
    assert "v_unbalance" in names and "angle_jump" not in names and names[-1] == "data_quality"
    s = {
        x.kind: x for x in evaluate_all(build_rules(cfg), [window(pmu_batch(INFO, 40, v2_pu=0.03))])
    }
    assert s["v_unbalance"].active


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"undervoltage": {"clear_threshold": 0.8}}, "rules.undervoltage.clear_threshold"),
        ({"undervoltage": {"raise_treshold": 0.8}}, "rules.undervoltage.raise_treshold"),
        ({"undervoltage": {"severity": "fatal"}}, "rules.undervoltage.severity"),
        ({"new_rule": {"feature": "v_pu_min"}}, "rules.new_rule.direction"),
        (
            {
                "x": {
                    "feature": "nope",
                    "direction": "above",
                    "raise_threshold": 1,
                    "clear_threshold": 0,
                }
            },
            "rules.x.feature",
        ),
        ({"quality": {"raise_fraction": 2}}, "rules.quality.raise_fraction"),
        ({"overvoltage": 3}, "rules.overvoltage"),
    ],
)
def test_bad_rule_config_names_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        RulesConfig.from_mapping(table)  # type: ignore[arg-type]
    assert err.value.issues[0].key == key
