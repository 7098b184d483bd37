"""The client's command state machine: order, retry, gap, quiet, config changes."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.c37118.constants import Command
from adapters.c37118.session import Session, SessionSettings

MS = 1_000_000
S = SessionSettings(timeout_ns=2000 * MS, gap_ns=100 * MS, quiet_periods=5)


def test_startup_asks_config_then_turns_on() -> None:
    s = Session(S)
    s.start(0)
    assert s.poll(0).commands == (Command.SEND_CFG2,)
    assert s.poll(50 * MS).commands == ()
    s.on_config(50.0, 60 * MS)
    assert s.poll(60 * MS).commands == ()  # too soon after the last command
    assert s.next_deadline() == 100 * MS
    assert s.poll(100 * MS).commands == (Command.TURN_ON,)
    s.on_data(False, 120 * MS)
    assert s.pending is None
    assert s.poll(150 * MS).commands == ()  # answered: nothing to resend


def test_unanswered_command_is_retried_after_the_timeout() -> None:
    s = Session(S)
    s.start(0)
    assert s.poll(0).commands == (Command.SEND_CFG2,)
    assert s.poll(1999 * MS).commands == ()
    assert s.poll(2000 * MS).commands == (Command.SEND_CFG2,)
    assert s.poll(4000 * MS).commands == (Command.SEND_CFG2,)
    assert s.retries == 2


def test_cfg3_when_configured() -> None:
    s = Session(SessionSettings(config_command=Command.SEND_CFG3))
    s.start(0)
    assert s.poll(0).commands == (Command.SEND_CFG3,)


def test_cfg3_unanswered_falls_back_to_cfg2() -> None:
    s = Session(SessionSettings(config_command=Command.SEND_CFG3, timeout_ns=100 * MS))
    s.start(0)
    sent = [s.poll(t * 100 * MS).commands for t in range(5)]
    assert sent == [(Command.SEND_CFG3,)] * 3 + [(Command.SEND_CFG2,)] * 2
    assert s.config_command == Command.SEND_CFG2
    s.on_config(50.0, 500 * MS)
    s.on_data(True, 600 * MS)  # a later config change asks for CFG-2 too
    assert Command.SEND_CFG2 in s.poll(700 * MS).commands + s.poll(800 * MS).commands


def test_cfg3_answered_late_is_kept() -> None:
    s = Session(SessionSettings(config_command=Command.SEND_CFG3, timeout_ns=100 * MS))
    s.start(0)
    assert s.poll(0).commands == (Command.SEND_CFG3,)
    s.on_config(50.0, 150 * MS)
    assert s.poll(200 * MS).commands == (Command.TURN_ON,)
    s.on_data(True, 300 * MS)
    s.poll(400 * MS)
    assert s.config_command == Command.SEND_CFG3 and s.pending == Command.SEND_CFG3


def test_quiet_after_periods_then_resumed_and_turn_on_again() -> None:
    s = Session(S)
    s.start(0)
    s.poll(0)
    s.on_config(50.0, 10 * MS)
    s.poll(100 * MS)
    s.on_data(False, 200 * MS)
    assert not s.poll(299 * MS).went_quiet  # 5 periods of 20 ms = 100 ms
    r = s.poll(300 * MS)
    assert r.went_quiet and s.quiet and r.commands == (Command.TURN_ON,)
    assert not s.poll(400 * MS).went_quiet  # reported once
    assert s.on_data(False, 500 * MS) is True
    assert s.on_data(False, 520 * MS) is False


def test_config_changed_bit_asks_on_its_rise_and_on_its_fall() -> None:
    # 2005: the change comes with the rise; 2011: with the fall ("when change effected").
    s = Session(SessionSettings(timeout_ns=2000 * MS, gap_ns=100 * MS, quiet_periods=50))
    s.start(0)
    s.poll(0)
    s.on_config(50.0, 0)
    s.poll(100 * MS)
    s.on_data(False, 110 * MS)
    assert not s.config_due(110 * MS)
    s.on_data(True, 130 * MS)
    assert s.config_due(130 * MS)  # data may be laid out by a config not yet seen
    assert s.poll(230 * MS).commands == (Command.SEND_CFG2,)
    s.on_config(50.0, 240 * MS)
    assert not s.config_due(240 * MS)
    s.on_data(True, 250 * MS)  # bit still set: no new request
    assert s.poll(400 * MS).commands == ()
    s.on_data(False, 410 * MS)  # the fall
    assert s.config_due(410 * MS)
    assert s.poll(600 * MS).commands == (Command.SEND_CFG2,)
    assert s.config_due(2409 * MS) and not s.config_due(2410 * MS)  # one timeout at most
    s.on_data(False, 2420 * MS)
    assert s.poll(2700 * MS).commands == (Command.SEND_CFG2,)  # unanswered: sent again


def test_config_changed_bit_changes_nothing_for_a_spontaneous_stream() -> None:
    s = Session(SessionSettings(spontaneous=True))
    s.start(0)
    s.on_config(50.0, 0)
    s.on_data(True, 10 * MS)
    s.on_data(False, 20 * MS)
    assert not s.config_due(20 * MS) and s.poll(30 * MS).commands == ()


def test_data_without_config_asks_for_it() -> None:
    s = Session(S)
    s.start(0)
    s.on_config(50.0, 0)  # pretend the first answer came, stream is on
    s.poll(0)
    s.on_data(False, 10 * MS)
    s.on_unknown_config(20 * MS)
    assert s.poll(200 * MS).commands == (Command.SEND_CFG2,)


_inputs = st.lists(
    st.tuples(
        st.sampled_from(["config", "data", "data_changed", "unknown", "poll", "start"]),
        st.integers(min_value=0, max_value=500 * MS),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_inputs, st.booleans())
def test_any_input_sequence_keeps_the_invariants(steps: list[tuple[str, int]], spont: bool) -> None:
    s = Session(SessionSettings(timeout_ns=300 * MS, gap_ns=50 * MS, spontaneous=spont))
    now = 0
    s.start(now)
    sent_at: list[int] = []
    for what, dt in steps:
        now += dt
        if what == "config":
            s.on_config(30.0, now)
        elif what in ("data", "data_changed"):
            s.on_data(what == "data_changed", now)
        elif what == "unknown":
            s.on_unknown_config(now)
        elif what == "start":
            s.start(now)
        r = s.poll(now)
        assert len(r.commands) <= 1
        sent_at += [now] * len(r.commands)
        deadline = s.next_deadline()
        assert deadline is None or deadline > now or s.pending is not None
    if spont:
        assert sent_at == []
    # Consecutive commands are at least the gap apart (some PMUs drop them otherwise).
    assert all(b - a >= 50 * MS for a, b in itertools.pairwise(sent_at))
