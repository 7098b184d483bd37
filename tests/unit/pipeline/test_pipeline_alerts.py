"""Alert engine: hysteresis, hold, raise_after, dedup, flap limit, ids, stream status."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepipe.core import AlertState, Score, Severity, SourceStatus, StatusKind
from edgepipe.pipeline import ALERT_NAMESPACE, AlertConfig, AlertEngine, alert_id

MS = 1_000_000


def score(
    t_ms: int,
    active: bool = False,
    clear: bool = False,
    kind: str = "undervoltage",
    asset: str = "bus1",
) -> Score:
    t = t_ms * MS
    return Score(
        "pmu1",
        asset,
        kind,
        Severity.CRITICAL,
        0.5,
        active,
        clear,
        "rules/x",
        t,
        t - 500 * MS,
        t,
        {"value": t_ms},
    )


def states(engine: AlertEngine, scores: list[Score]) -> list[tuple[str, int]]:
    return [(a.state.value, a.event_time_ns // MS) for a in engine.process(scores)]


def test_raise_then_hold_in_band_then_clear() -> None:
    e = AlertEngine("s1", AlertConfig(min_hold_ns=0))
    seq = [
        score(0, clear=True),
        score(10, active=True),
        score(20),
        score(30, active=True),
        score(40),
        score(50, clear=True),
        score(60, clear=True),
    ]
    assert states(e, seq) == [("raised", 10), ("cleared", 50)]
    st_ = e.statistics()
    assert (st_.raised, st_.cleared, st_.duplicate_raises, st_.active) == (1, 1, 1, 0)


def test_minimum_hold_defers_the_clear() -> None:
    e = AlertEngine("s1", AlertConfig(min_hold_ns=1000 * MS))
    out = states(
        e,
        [
            score(0, active=True),
            score(300, clear=True),
            score(999, clear=True),
            score(1000, clear=True),
        ],
    )
    assert out == [("raised", 0), ("cleared", 1000)]
    assert e.statistics().held_clears == 2


def test_raise_after_needs_consecutive_active_windows_and_keeps_the_onset() -> None:
    e = AlertEngine("s1", AlertConfig(raise_after=3, min_hold_ns=0))
    assert states(e, [score(0, active=True), score(10, active=True), score(20)]) == []
    assert states(e, [score(30, active=True), score(40, active=True)]) == []
    assert states(e, [score(50, active=True)]) == [("raised", 30)]


def test_alert_ids_are_deterministic_and_shared_by_raise_and_clear() -> None:
    seq = [score(5, active=True), score(2000, clear=True)]
    a = AlertEngine("s1").process(seq)
    b = AlertEngine("s1").process(seq)
    assert [x.id for x in a] == [x.id for x in b] and a[0].id == a[1].id
    expected = uuid.uuid5(ALERT_NAMESPACE, f"s1/bus1/undervoltage/{5 * MS}")
    assert a[0].id == str(expected) == alert_id("s1", "bus1", "undervoltage", 5 * MS)
    assert a[1].state is AlertState.CLEARED and a[1].raised_time_ns == 5 * MS
    later = AlertEngine("s1").process([score(6, active=True)])
    other_site = AlertEngine("s2").process([score(5, active=True)])
    assert later[0].id != a[0].id and other_site[0].id != a[0].id


def test_keys_are_independent_per_asset_and_kind() -> None:
    e = AlertEngine("s1", AlertConfig(min_hold_ns=0))
    out = e.process(
        [
            score(0, active=True),
            score(0, active=True, kind="rocof"),
            score(0, active=True, asset="bus2"),
            score(10, clear=True, kind="rocof"),
        ]
    )
    assert [(a.asset, a.kind, a.state.value) for a in out] == [
        ("bus1", "undervoltage", "raised"),
        ("bus1", "rocof", "raised"),
        ("bus2", "undervoltage", "raised"),
        ("bus1", "rocof", "cleared"),
    ]
    assert {(a.asset, a.kind) for a in e.active_alerts()} == {
        ("bus1", "undervoltage"),
        ("bus2", "undervoltage"),
    }


def test_flapping_key_is_rate_limited_and_counted() -> None:
    e = AlertEngine("s1", AlertConfig(min_hold_ns=0, max_raises=2, flap_window_ns=10_000 * MS))
    seq = []
    for k in range(5):  # five raise/clear cycles within 10 s
        seq += [
            score(1000 * k, active=True),
            score(1000 * k + 100, active=True),
            score(1000 * k + 500, clear=True),
        ]
    out = states(e, seq)
    assert out == [("raised", 0), ("cleared", 500), ("raised", 1000), ("cleared", 1500)]
    st_ = e.statistics()
    assert st_.suppressed_raises == 3  # one per refused episode, not per window
    assert st_.suppressed_by_key == {("bus1", "undervoltage"): 3}
    assert states(e, [score(10_000 + 1000, active=True)]) == [("raised", 11_000)]  # window moved


def test_quiet_stream_raises_a_warning_and_resumed_clears_it() -> None:
    e = AlertEngine("s1", AlertConfig(min_hold_ns=10_000 * MS))
    quiet = SourceStatus("pmu-src", "pmu1", StatusKind.QUIET, 7 * MS, "no data for 3 periods")
    up = e.stream_status(quiet, asset="bus1")
    assert [(a.kind, a.severity, a.state) for a in up] == [
        ("stream_quiet", Severity.WARNING, AlertState.RAISED)
    ]
    assert up[0].id == alert_id("s1", "bus1", "stream_quiet", 7 * MS)
    assert e.stream_status(quiet, asset="bus1") == []  # deduplicated
    assert e.stream_status(SourceStatus("pmu-src", "pmu1", StatusKind.CONNECTED, 8 * MS)) == []
    down = e.stream_status(
        SourceStatus("pmu-src", "pmu1", StatusKind.RESUMED, 9 * MS), asset="bus1"
    )
    assert [(a.id, a.state) for a in down] == [(up[0].id, AlertState.CLEARED)]


@st.composite
def score_streams(draw: st.DrawFn) -> list[Score]:
    n = draw(st.integers(0, 60))
    out, t = [], 0
    for _ in range(n):
        t += draw(st.integers(0, 400))
        verdict = draw(st.sampled_from(["active", "clear", "hold"]))
        kind = draw(st.sampled_from(["undervoltage", "rocof"]))
        out.append(score(t, active=verdict == "active", clear=verdict == "clear", kind=kind))
    return out


@settings(max_examples=300, deadline=None)
@given(
    scores=score_streams(),
    raise_after=st.integers(1, 3),
    hold_ms=st.sampled_from([0, 200, 1000]),
    max_raises=st.integers(0, 3),
)
def test_alert_state_machine_properties(
    scores: list[Score], raise_after: int, hold_ms: int, max_raises: int
) -> None:
    cfg = AlertConfig(
        min_hold_ns=hold_ms * MS,
        raise_after=raise_after,
        max_raises=max_raises,
        flap_window_ns=2000 * MS,
    )
    alerts = AlertEngine("site", cfg).process(scores)
    open_ids: dict[str, str] = {}
    for a in alerts:
        if a.state is AlertState.RAISED:
            assert a.kind not in open_ids, "two raises without a clear"
            assert a.id == alert_id("site", a.asset, a.kind, a.event_time_ns)
            open_ids[a.kind] = a.id
        else:
            assert open_ids.pop(a.kind) == a.id, "a clear must follow its raise, same id"
            assert a.event_time_ns - a.raised_time_ns >= cfg.min_hold_ns
    # Replaying the same scores gives the very same alerts (ids included).
    again = AlertEngine("site", cfg).process(scores)
    assert again == alerts
    stats = AlertEngine("site", cfg)
    stats.process(scores)
    assert stats.statistics().raised == sum(a.state is AlertState.RAISED for a in alerts)


def test_alert_config_rejects_bad_values_by_key() -> None:
    from edgepipe.core import ConfigError
    from edgepipe.core.tables import from_mapping

    with pytest.raises(ConfigError, match=r"alerts\.raise_after"):
        from_mapping(AlertConfig, {"raise_after": 0}, "alerts")
