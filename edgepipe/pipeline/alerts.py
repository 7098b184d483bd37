"""Scores to alerts: hysteresis, minimum hold, dedup, flap limiting, deterministic ids.

State machine per key ``(asset, kind)``::

    idle --(raise_after consecutive active scores, not rate limited)--> raised  [emit RAISED]
    raised --(clear score, event time >= raise time + min_hold_ns)--> idle     [emit CLEARED]

An active score while raised and a clear score while idle emit nothing (dedup); a score
neither active nor clear holds the state (and breaks a run of active scores). A raise
beyond ``max_raises`` within ``flap_window_ns`` is suppressed: counted in
``statistics()`` and logged, never silent. The engine reads event time only, never the
wall clock, so a replay emits exactly the alerts of the live run.

The alert id is ``uuid5(ALERT_NAMESPACE, f"{site}/{asset}/{kind}/{raise_event_time_ns}")``
(design.md, "Alerts are idempotent"); the CLEARED message repeats the id, so a
subscriber dedupes by ``(id, state)``.
"""

from __future__ import annotations

__all__ = ["ALERT_NAMESPACE", "AlertConfig", "AlertEngine", "AlertStatistics", "alert_id"]

import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import structlog

from edgepipe.core import (
    Alert,
    AlertState,
    Score,
    ScoreBatch,
    Severity,
    SourceStatus,
    StatusKind,
)
from edgepipe.core.tables import check

ALERT_NAMESPACE = uuid.UUID("48810d74-0ff1-4c10-870e-adda67ab8593")
STREAM_QUIET = "stream_quiet"

_log = structlog.get_logger()
_ROW_ORDER = itemgetter(0, 1, 2, 3)  # (due time, stream, item, row): never the Score


def alert_id(site: str, asset: str, kind: str, raise_event_time_ns: int) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{site}/{asset}/{kind}/{raise_event_time_ns}"))


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """``min_hold_ns``: event time a raise stays up at least; ``max_raises`` per
    ``flap_window_ns`` (0 = unlimited) bounds flapping keys."""

    min_hold_ns: int = 1_000_000_000
    raise_after: int = 1
    flap_window_ns: int = 60_000_000_000
    max_raises: int = 5

    def __post_init__(self) -> None:
        check(self.min_hold_ns >= 0, "min_hold_ns", "must be >= 0")
        check(self.raise_after >= 1, "raise_after", "must be >= 1")
        check(self.flap_window_ns >= 0, "flap_window_ns", "must be >= 0")
        check(self.max_raises >= 0, "max_raises", "must be >= 0 (0 = unlimited)")


@dataclass(frozen=True, slots=True)
class AlertStatistics:
    keys: int  # (asset, kind) pairs seen
    active: int  # raised now
    raised: int  # RAISED alerts emitted
    cleared: int  # CLEARED alerts emitted
    suppressed_raises: int  # raises refused by the flap limit
    duplicate_raises: int  # active scores while already raised
    held_clears: int  # clear scores refused by the minimum hold
    suppressed_by_key: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(slots=True)
class _Key:
    alert: Alert | None = None  # the RAISED alert while raised
    run: int = 0  # consecutive active scores
    run_start_ns: int = 0
    suppressing: bool = False  # this active episode was refused by the flap limit
    raises: deque[int] = field(default_factory=deque)  # raise times within the window


class AlertEngine:
    def __init__(self, site: str, config: AlertConfig | None = None) -> None:
        self.site = site
        self.config = config or AlertConfig()
        self._keys: dict[tuple[str, str], _Key] = {}
        self._n = {"raised": 0, "cleared": 0, "suppressed": 0, "dup": 0, "held": 0}
        self._suppressed: dict[tuple[str, str], int] = {}

    def process(self, scores: Iterable[Score]) -> list[Alert]:
        """Alerts caused by ``scores`` (in order; feed scores in event-time order per key)."""
        out: list[Alert] = []
        for s in scores:
            key = (s.asset, s.kind)
            st = self._keys.get(key)
            if st is None:
                st = self._keys[key] = _Key()
            if s.active:
                alert = self._on_active(key, st, s)
            elif s.clear:
                alert = self._on_clear(st, s, self.config.min_hold_ns)
            else:
                st.run = 0
                continue
            if alert is not None:
                out.append(alert)
        return out

    def process_flush(
        self,
        items: Sequence[ScoreBatch | Sequence[Score]],
        due: Mapping[tuple[str, int], int] | None = None,
    ) -> list[Alert]:
        """The alerts of one flush: every detector's scores on the flush's windows, the
        rows of all items merged into event-time order before the engine sees them.

        Rows go in the order ``(due time, stream, item, row)``; ``items`` are in
        detector order, so ties break the same way however the windows were batched.
        A window is due at the event time of the row that completed it: its end, or,
        when its last frame never arrived, the next row's time, given in ``due`` by
        ``(stream, window end)``. That time, not the score's event time (a rule dates
        its score at the crossing inside the window), is what every stream reaches in
        order, live read by read and in replay tick by tick alike. Two streams of one asset score
        the same keys: handed over detector by detector and stream by stream, a key
        would see one stream's whole flush before the other's, and the alerts would
        follow the batching (a live read, a replay tick) instead of the data. Alerts
        come out in this order too.

        A key that is idle before the flush (no raise, no run of active scores, no
        suppressed episode) and has no active row in it stays exactly as it is on a clear
        or a neutral score, so only the rows of the other ("hot") keys become ``Score``
        records. Keys are created item by item (their order is not part of the outcome:
        ``active_alerts`` sorts).
        """
        keys = self._keys
        hot: set[tuple[str, str]] = set()
        for item in items:
            if isinstance(item, ScoreBatch):
                kind = item.kind
                for asset in dict.fromkeys(item.assets):
                    self._note_key((asset, kind), keys, hot)
                if item.active.any():
                    assets = item.assets
                    hot.update((assets[k], kind) for k in np.flatnonzero(item.active).tolist())
            else:
                for s in item:
                    self._note_key((s.asset, s.kind), keys, hot)
                    if s.active:
                        hot.add((s.asset, s.kind))
        if not hot:
            return []
        rows: list[tuple[int, str, int, int, Score]] = []
        for i, item in enumerate(items):
            if isinstance(item, ScoreBatch):
                kind, assets, make = item.kind, item.assets, item.make
                rows.extend(
                    (s.window_end_ns, s.stream, i, k, s)
                    for k in range(len(assets))
                    if (assets[k], kind) in hot
                    for s in (make(k),)
                )
            else:
                rows.extend(
                    (s.window_end_ns, s.stream, i, k, s)
                    for k, s in enumerate(item)
                    if (s.asset, s.kind) in hot
                )
        if due:
            rows = [(due.get((r[1], r[0]), r[0]), *r[1:]) for r in rows]
        rows.sort(key=_ROW_ORDER)
        return self.process(r[4] for r in rows)

    def _note_key(
        self, key: tuple[str, str], keys: dict[tuple[str, str], _Key], hot: set[tuple[str, str]]
    ) -> None:
        st = keys.get(key)
        if st is None:
            keys[key] = _Key()
        elif st.alert is not None or st.run or st.suppressing:
            hot.add(key)

    def stream_status(self, status: SourceStatus, asset: str = "") -> list[Alert]:
        """QUIET raises a ``stream_quiet`` warning for ``asset`` (default: the stream
        name); RESUMED clears it at once (no hold, no flap limit: the source decides)."""
        if status.kind not in (StatusKind.QUIET, StatusKind.RESUMED):
            return []
        asset = asset or status.stream
        quiet = status.kind is StatusKind.QUIET
        score = Score(
            status.stream,
            asset,
            STREAM_QUIET,
            Severity.WARNING,
            1.0 if quiet else 0.0,
            quiet,
            not quiet,
            f"source/{status.source}",
            status.time_ns,
            status.time_ns,
            status.time_ns,
            {"source": status.source, "detail": status.detail},
        )
        key = (asset, STREAM_QUIET)
        st = self._keys.setdefault(key, _Key())
        if quiet:
            if st.alert is not None:
                self._n["dup"] += 1
                return []
            return [self._raise(st, score, status.time_ns)]
        alert = self._on_clear(st, score, 0)
        return [] if alert is None else [alert]

    def _on_active(self, key: tuple[str, str], st: _Key, s: Score) -> Alert | None:
        if st.alert is not None:
            self._n["dup"] += 1
            return None
        st.run += 1
        if st.run == 1:
            st.run_start_ns = s.event_time_ns
        if st.run < self.config.raise_after or st.suppressing:
            return None
        t = st.run_start_ns  # detection delay matters: the onset of the run
        c = self.config
        while st.raises and st.raises[0] <= t - c.flap_window_ns:
            st.raises.popleft()
        if c.max_raises and len(st.raises) >= c.max_raises:
            st.suppressing = True
            self._n["suppressed"] += 1
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            _log.warning(
                "alert_raise_suppressed",
                asset=s.asset,
                kind=s.kind,
                event_time_ns=t,
                raises_in_window=len(st.raises),
            )
            return None
        st.raises.append(t)
        return self._raise(st, s, t)

    def _raise(self, st: _Key, s: Score, t: int) -> Alert:
        alert = Alert(
            id=alert_id(self.site, s.asset, s.kind, t),
            site=self.site,
            asset=s.asset,
            stream=s.stream,
            kind=s.kind,
            severity=s.severity,
            state=AlertState.RAISED,
            event_time_ns=t,
            score=s.score,
            model=s.model,
            window_start_ns=s.window_start_ns,
            window_end_ns=s.window_end_ns,
            evidence=dict(s.evidence),
            raised_time_ns=t,
        )
        st.alert = alert
        st.run = 0
        self._n["raised"] += 1
        return alert

    def _on_clear(self, st: _Key, s: Score, min_hold_ns: int) -> Alert | None:
        st.run = 0
        st.suppressing = False
        raised = st.alert
        if raised is None:
            return None
        if s.event_time_ns - raised.event_time_ns < min_hold_ns:
            self._n["held"] += 1
            return None
        st.alert = None
        self._n["cleared"] += 1
        evidence: dict[str, Any] = dict(s.evidence)
        return Alert(
            id=raised.id,
            site=self.site,
            asset=raised.asset,
            stream=s.stream,
            kind=raised.kind,
            severity=raised.severity,
            state=AlertState.CLEARED,
            event_time_ns=s.event_time_ns,
            score=s.score,
            model=s.model,
            window_start_ns=s.window_start_ns,
            window_end_ns=s.window_end_ns,
            evidence=evidence,
            raised_time_ns=raised.event_time_ns,
        )

    def active_alerts(self) -> list[Alert]:
        """The RAISED alerts standing now (e.g. to republish after a restart), by raise
        time, asset and kind: not by when a key was first seen, which follows batching."""
        raised = [st.alert for st in self._keys.values() if st.alert is not None]
        return sorted(raised, key=lambda a: (a.event_time_ns, a.asset, a.kind))

    def statistics(self) -> AlertStatistics:
        n = self._n
        return AlertStatistics(
            keys=len(self._keys),
            active=sum(1 for st in self._keys.values() if st.alert is not None),
            raised=n["raised"],
            cleared=n["cleared"],
            suppressed_raises=n["suppressed"],
            duplicate_raises=n["dup"],
            held_clears=n["held"],
            suppressed_by_key=dict(self._suppressed),
        )
