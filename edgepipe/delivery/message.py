"""The alert message: a public JSON contract (``edgepipe/schemas/alert.schema.json``).

Sans-IO: records in, bytes out, and back. The encoding is deterministic (fixed key order,
evidence keys sorted, compact separators, UTF-8) so that a replay of a capture produces
byte-identical messages to the live run, and a retry of one alert is byte-identical too.

Times are RFC 3339 (§5.6) in UTC with a ``Z`` suffix; the fraction is trimmed to the
shortest of 0, 3, 6 or 9 digits that loses nothing, and the exact integer nanoseconds
travel beside each text time.

Subscribers deduplicate by ``(id, state)``: the raise and the clear of one episode share
the id, which is derived from (site, asset, kind, raise time).
"""

from __future__ import annotations

__all__ = [
    "CONTENT_TYPE",
    "SCHEMA_VERSION",
    "alert_from_dict",
    "alert_from_json",
    "alert_schema",
    "alert_to_dict",
    "alert_to_json",
    "format_rfc3339_ns",
    "parse_rfc3339_ns",
    "status_to_json",
    "health_to_json",
]

import enum
import functools
import importlib.resources
import json
import math
import re
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from edgepipe.core import Alert, AlertState, ProtocolError, Severity

SCHEMA_VERSION = "1.0"
CONTENT_TYPE = "application/json"

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


@functools.lru_cache(maxsize=1024)
def _seconds_text(sec: int) -> str:
    # Cached: an alert carries four times, mostly within the same second, and the
    # calendar arithmetic is most of the cost of encoding an alert.
    dt = _EPOCH + timedelta(seconds=sec)
    # strftime("%Y") does not zero-pad years below 1000 on every libc.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )


def format_rfc3339_ns(t_ns: int) -> str:
    """``2026-11-26T12:00:00.016666667Z``: UTC, fraction trimmed to 0/3/6/9 digits."""
    sec, frac = divmod(int(t_ns), _NS)
    text = _seconds_text(sec)
    if frac == 0:
        return text + "Z"
    if frac % 1_000_000 == 0:
        return f"{text}.{frac // 1_000_000:03d}Z"
    if frac % 1_000 == 0:
        return f"{text}.{frac // 1_000:06d}Z"
    return f"{text}.{frac:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 date-time (any offset, <= 9 digits)."""
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    # RFC 3339 §5.6 allows a leap second (60); POSIX time folds it into the next second.
    leap = second == 60
    dt = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=UTC)
    frac = int((m.group(7) or "").ljust(9, "0"))
    offset = m.group(8)
    offset_s = 0
    if offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        offset_s = sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    whole = (dt - _EPOCH) // timedelta(seconds=1) + (1 if leap else 0) - offset_s
    return whole * _NS + frac


def _finite_score(score: float) -> tuple[float, str | None]:
    """A JSON-safe score and, when it had to be changed, the original spelled out."""
    value = float(score)
    if math.isfinite(value):
        return value, None
    if math.isnan(value):
        return 0.0, "NaN"
    # Clamp: the sign and "beyond any threshold" survive, and the output stays a number.
    return math.copysign(sys.float_info.max, value), "Infinity" if value > 0 else "-Infinity"


def _jsonable(value: Any) -> Any:  # noqa: PLR0911  (one return per JSON type is clearest)
    """Plain JSON types for evidence: numpy -> Python, NaN/inf -> null, keys sorted."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum/IntFlag members become plain numbers
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        # Sort by key alone: keys 1 and "1" both become "1" and their values may not compare.
        items = ((str(k), _jsonable(v)) for k, v in value.items())
        return dict(sorted(items, key=_key))
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=repr)
    # Never lose an alert over an odd evidence value: its text is still evidence.
    return str(value)


def _key(item: tuple[str, Any]) -> str:
    return item[0]


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """The alert as plain JSON types, keys in the schema's order."""
    score, raw_score = _finite_score(alert.score)
    evidence: dict[str, Any] = _jsonable(dict(alert.evidence))
    if raw_score is not None:
        evidence = dict(sorted({**evidence, "score_nonfinite": raw_score}.items(), key=_key))
    # 0 means "not filled in": a raise is its own raise time; for a clear it is unknown.
    raised_ns: int | None = alert.raised_time_ns or None
    if raised_ns is None and alert.state == AlertState.RAISED:
        raised_ns = alert.event_time_ns
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": alert.id,
        "site": alert.site,
        "asset": alert.asset,
        "stream": alert.stream,
        "kind": alert.kind,
        "severity": str(Severity(alert.severity)),
        "state": str(AlertState(alert.state)),
        "event_time": format_rfc3339_ns(alert.event_time_ns),
        "event_time_ns": int(alert.event_time_ns),
        "score": score,
        "model": alert.model,
        "window": {
            "start": format_rfc3339_ns(alert.window_start_ns),
            "end": format_rfc3339_ns(alert.window_end_ns),
            "start_ns": int(alert.window_start_ns),
            "end_ns": int(alert.window_end_ns),
        },
        "evidence": evidence,
    }
    if raised_ns is not None:
        # Optional fields go after the required ones; the key order stays fixed.
        body["raised_time"] = format_rfc3339_ns(raised_ns)
        body["raised_time_ns"] = int(raised_ns)
    return body


def _dumps(obj: Mapping[str, Any]) -> bytes:
    # allow_nan=False: a NaN that slipped through is a bug here, not invalid JSON on the wire.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def alert_to_json(alert: Alert) -> bytes:
    """Compact UTF-8 JSON of the alert; identical alerts give identical bytes."""
    return _dumps(alert_to_dict(alert))


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"alert message: field {key!r} missing or not {kind}")
    return value


def alert_from_dict(data: Mapping[str, Any]) -> Alert:
    """Inverse of :func:`alert_to_dict`. Raises ``ProtocolError`` on a malformed message."""
    version = _field(data, "schema_version", str)
    if version.partition(".")[0] != SCHEMA_VERSION.partition(".")[0]:
        raise ProtocolError(f"alert message: unsupported schema_version {version!r}")
    window = _field(data, "window", dict)
    try:
        return Alert(
            id=_field(data, "id", str),
            site=_field(data, "site", str),
            asset=_field(data, "asset", str),
            stream=_field(data, "stream", str),
            kind=_field(data, "kind", str),
            severity=Severity(_field(data, "severity", str)),
            state=AlertState(_field(data, "state", str)),
            event_time_ns=_field(data, "event_time_ns", int),
            score=float(_field(data, "score", (int, float))),
            model=_field(data, "model", str),
            window_start_ns=_field(window, "start_ns", int),
            window_end_ns=_field(window, "end_ns", int),
            evidence=dict(_field(data, "evidence", dict)),
            raised_time_ns=int(data.get("raised_time_ns", 0)),
        )
    except ValueError as exc:  # an unknown severity or state
        raise ProtocolError(f"alert message: {exc}") from exc


def alert_from_json(payload: bytes) -> Alert:
    """Decode one alert message (for tests and Python subscribers)."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"alert message is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("alert message: top level is not an object")
    return alert_from_dict(data)


def status_to_json(
    site: str,
    state: str,
    client_id: str,
    time_ns: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> bytes:
    """The retained status payload: ``{"schema_version", "site", "state", "client_id", ...}``.

    ``time_ns`` is left out of the Last Will: the broker sends it long after it was built.
    """
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "site": site,
        "state": state,
        "client_id": client_id,
    }
    if time_ns is not None:
        body["time"] = format_rfc3339_ns(time_ns)
        body["time_ns"] = int(time_ns)
    if detail:
        body["detail"] = _jsonable(dict(detail))
    return _dumps(body)


def health_to_json(site: str, kind: str, time_ns: int, detail: Mapping[str, Any]) -> bytes:
    """A health event: ``{"schema_version", "id", "site", "kind", "time", "time_ns", "detail"}``.

    The id is derived from (site, kind, time) like an alert's, so a re-delivery after a
    failure is recognisable.
    """
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"edgepipe:{site}:health:{kind}:{time_ns}")),
        "site": site,
        "kind": kind,
        "time": format_rfc3339_ns(time_ns),
        "time_ns": int(time_ns),
        "detail": _jsonable(dict(detail)),
    }
    return _dumps(body)


@functools.cache
def alert_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every alert message validates against."""
    text = importlib.resources.files("edgepipe").joinpath("schemas/alert.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema
