from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgepipe.core import Alert, AlertState, ProtocolError, Severity
from edgepipe.delivery.message import (
    SCHEMA_VERSION,
    alert_from_json,
    alert_schema,
    alert_to_dict,
    alert_to_json,
    format_rfc3339_ns,
    parse_rfc3339_ns,
    status_to_json,
)

T0 = 1_795_694_400_000_000_000  # 2026-11-26T12:00:00Z
VALIDATOR = jsonschema.Draft202012Validator(
    alert_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
INT64 = st.integers(-(2**63), 2**63 - 1)


def make_alert(**over: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "a1b2c3",
        "site": "north",
        "asset": "T1",
        "stream": "pmu-7",
        "kind": "voltage_sag",
        "severity": Severity.CRITICAL,
        "state": AlertState.RAISED,
        "event_time_ns": T0 + 16_666_667,
        "score": 0.93,
        "model": "sag-detector@1.2.0",
        "window_start_ns": T0 - 1_000_000_000,
        "window_end_ns": T0 + 16_666_667,
        "evidence": {"v_pu": 0.71, "samples": 60},
        "raised_time_ns": T0 + 16_666_667,
    }
    fields.update(over)
    return Alert(**fields)


@pytest.mark.parametrize(
    ("t_ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (T0, "2026-11-26T12:00:00Z"),
        (T0 + 16_000_000, "2026-11-26T12:00:00.016Z"),
        (T0 + 16_666_000, "2026-11-26T12:00:00.016666Z"),
        (T0 + 16_666_667, "2026-11-26T12:00:00.016666667Z"),
        (T0 + 1, "2026-11-26T12:00:00.000000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (2**63 - 1, "2262-04-11T23:47:16.854775807Z"),
    ],
    ids=["epoch", "whole", "ms", "us", "ns", "one-ns", "before-epoch", "int64-max"],
)
def test_rfc3339_is_utc_with_trimmed_fraction(t_ns: int, text: str) -> None:
    assert format_rfc3339_ns(t_ns) == text
    assert parse_rfc3339_ns(text) == t_ns


def test_rfc3339_matches_the_standard_library() -> None:
    dt = datetime.fromisoformat(format_rfc3339_ns(T0 + 123_000))
    assert dt == datetime(2026, 11, 26, 12, 0, 0, 123, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "t_ns"),
    [
        ("2026-11-26T13:00:00+01:00", T0),
        ("2026-11-26t12:00:00.5z", T0 + 500_000_000),
        ("2016-12-31T23:59:60Z", 1_483_228_800 * 10**9),
    ],
    ids=["offset", "lowercase", "leap-second"],
)
def test_parse_accepts_rfc3339_variants(text: str, t_ns: int) -> None:
    assert parse_rfc3339_ns(text) == t_ns


@given(INT64)
def test_rfc3339_round_trips_every_int64(t_ns: int) -> None:
    assert parse_rfc3339_ns(format_rfc3339_ns(t_ns)) == t_ns


def test_message_fields_and_order() -> None:
    body = alert_to_dict(make_alert())
    assert list(body) == [
        "schema_version",
        "id",
        "site",
        "asset",
        "stream",
        "kind",
        "severity",
        "state",
        "event_time",
        "event_time_ns",
        "score",
        "model",
        "window",
        "evidence",
        "raised_time",
        "raised_time_ns",
    ]
    assert body["event_time"] == "2026-11-26T12:00:00.016666667Z"
    assert body["window"] == {
        "start": "2026-11-26T11:59:59Z",
        "end": "2026-11-26T12:00:00.016666667Z",
        "start_ns": T0 - 1_000_000_000,
        "end_ns": T0 + 16_666_667,
    }
    assert (body["severity"], body["state"]) == ("critical", "raised")
    assert body["schema_version"] == SCHEMA_VERSION


def test_json_is_compact_utf8_and_deterministic() -> None:
    a = make_alert(asset="Trafo Süd", evidence={"b": 1, "a": 2})
    b = make_alert(asset="Trafo Süd", evidence={"a": 2, "b": 1})
    raw = alert_to_json(a)
    assert raw == alert_to_json(b)
    assert b" " not in raw.replace("Trafo Süd".encode(), b"")
    assert "Trafo Süd".encode() in raw  # not \u-escaped
    assert raw.index(b'"a":2') < raw.index(b'"b":1')


def test_raise_and_clear_share_the_id() -> None:
    raised = alert_to_dict(make_alert())
    cleared = alert_to_dict(make_alert(state=AlertState.CLEARED, event_time_ns=T0 + 5 * 10**9))
    assert raised["id"] == cleared["id"]
    assert cleared["raised_time_ns"] == raised["event_time_ns"]
    assert (raised["state"], cleared["state"]) == ("raised", "cleared")


def test_numpy_and_non_finite_evidence_become_valid_json() -> None:
    evidence = {
        "v": np.float64(0.5),
        "n": np.int32(7),
        "flag": np.bool_(True),
        "nan": float("nan"),
        "inf": np.float32("inf"),
        "arr": np.array([1.0, np.nan, -np.inf]),
        "nested": {"x": (np.uint16(3), None)},
        "f32": np.float32(0.25),
    }
    raw = alert_to_json(make_alert(evidence=evidence))
    parsed = json.loads(raw, parse_constant=lambda c: pytest.fail(f"invalid JSON {c}"))
    assert parsed["evidence"] == {
        "arr": [1.0, None, None],
        "f32": 0.25,
        "flag": True,
        "inf": None,
        "n": 7,
        "nan": None,
        "nested": {"x": [3, None]},
        "v": 0.5,
    }
    VALIDATOR.validate(parsed)


@pytest.mark.parametrize(
    ("score", "sent", "note"),
    [
        (float("nan"), 0.0, "NaN"),
        (float("inf"), 1.7976931348623157e308, "Infinity"),
        (float("-inf"), -1.7976931348623157e308, "-Infinity"),
    ],
    ids=["nan", "inf", "-inf"],
)
def test_non_finite_score_is_a_finite_number_with_a_note(
    score: float, sent: float, note: str
) -> None:
    parsed = json.loads(alert_to_json(make_alert(score=score)))
    assert parsed["score"] == sent
    assert parsed["evidence"]["score_nonfinite"] == note
    VALIDATOR.validate(parsed)


def test_round_trip() -> None:
    alert = make_alert(evidence={"v_pu": 0.71, "phases": ["A", "B"]})
    assert alert_from_json(alert_to_json(alert)) == alert


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[1]",
        b'{"schema_version":"2.0"}',
        alert_to_json(make_alert()).replace(b'"critical"', b'"fatal"'),
        alert_to_json(make_alert()).replace(b'"event_time_ns":', b'"event_time_ns":"1",  "x":'),
    ],
    ids=["text", "bad-utf8", "array", "future-major", "bad-severity", "ns-as-string"],
)
def test_malformed_message_raises_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        alert_from_json(payload)


def test_status_payload() -> None:
    raw = status_to_json("north", "online", "edgepipe-north", T0)
    assert json.loads(raw) == {
        "schema_version": SCHEMA_VERSION,
        "site": "north",
        "state": "online",
        "client_id": "edgepipe-north",
        "time": "2026-11-26T12:00:00Z",
        "time_ns": T0,
    }


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.int64, INT64),
)
evidence_st = st.dictionaries(
    st.text(max_size=10) | st.integers(0, 3),  # 1 and "1" collide once made JSON keys
    st.recursive(
        json_leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    ),
    max_size=5,
)

alerts_st = st.builds(
    Alert,
    id=st.text(min_size=1, max_size=40),
    site=st.text(max_size=20),
    asset=st.text(max_size=20),
    stream=st.text(max_size=20),
    kind=st.text(min_size=1, max_size=20),
    severity=st.sampled_from(Severity),
    state=st.sampled_from(AlertState),
    event_time_ns=INT64,
    score=st.floats(),
    model=st.text(min_size=1, max_size=20),
    window_start_ns=INT64,
    window_end_ns=INT64,
    evidence=evidence_st,
    raised_time_ns=INT64,
)


@given(alerts_st)
def test_every_generated_message_validates_against_the_schema(alert: Alert) -> None:
    raw = alert_to_json(alert)
    parsed = json.loads(raw, parse_constant=lambda c: pytest.fail(f"invalid JSON {c}"))
    VALIDATOR.validate(parsed)
    back = alert_from_json(raw)
    assert back.id == alert.id
    assert back.event_time_ns == alert.event_time_ns
    assert parse_rfc3339_ns(parsed["event_time"]) == alert.event_time_ns
    if math.isfinite(alert.score):
        assert back.score == alert.score


def test_schema_rejects_what_it_should() -> None:
    body = alert_to_dict(make_alert())
    for key, bad in [("severity", "fatal"), ("score", None), ("event_time", "yesterday")]:
        broken = {**body, key: bad}
        assert not VALIDATOR.is_valid(broken), key
    assert not VALIDATOR.is_valid({k: v for k, v in body.items() if k != "id"})
    assert "(id, state)" in alert_schema()["description"]
