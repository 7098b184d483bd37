"""The resend window: acknowledged rows are held, sent again after a failure or a
restart, and deleted once past the window."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepipe.core import ConfigError, VirtualClock
from edgepipe.core.tables import from_mapping
from edgepipe.delivery._resend import ResendWindow
from edgepipe.delivery.outbox import NewMessage, Outbox, Priority
from edgepipe.delivery.outbox_config import OutboxConfig

T0 = 1_795_694_400_000_000_000
NS = 1_000_000_000


def msg(n: int) -> NewMessage:
    return NewMessage(f"edgepipe/s/alerts/A{n % 3}/k", b"x" * 100, Priority.INFO, T0 + n)


def outbox(tmp_path: Path, clock: VirtualClock, **kw: object) -> Outbox:
    cfg = from_mapping(OutboxConfig, {"path": str(tmp_path / "o.sqlite"), **kw}, "outbox")
    return Outbox(cfg, clock).open()


def test_held_rows_are_not_pending_and_unack_makes_them_pending_again(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    ob = outbox(tmp_path, clock)
    rows = ob.append([msg(n) for n in range(6)])
    bytes_before = ob.bytes
    ob.append([msg(6)], held=[(r.seq, T0) for r in rows[:4]])
    assert ob.depth == 3 and ob.bytes > bytes_before  # held rows still take space
    assert [r.seq for r in ob.read(0, 10)] == [rows[4].seq, rows[5].seq, rows[5].seq + 1]
    assert ob.topics(rows[3].seq) == set()  # held rows do not hold back live ones
    assert ob.oldest_created_ns() == rows[4].created_ns
    assert ob.unack([rows[1].seq, rows[2].seq, 999]) == 2
    assert ob.depth == 5
    assert [r.seq for r in ob.read(0, 2)] == [rows[1].seq, rows[2].seq]
    ob.delete([rows[0].seq, rows[3].seq])  # expired held rows: depth unchanged
    assert ob.depth == 5 and ob.stats.deleted == 2


def test_a_restart_sends_again_what_was_acknowledged_within_the_window(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    ob = outbox(tmp_path, clock, resend_window_s=5.0)
    rows = ob.append([msg(n) for n in range(4)])
    ob.delete([], held=[(rows[0].seq, T0), (rows[1].seq, T0 + 4 * NS)])
    ob.close()
    clock.advance(int(6.0 * NS))
    again = outbox(tmp_path, clock, resend_window_s=5.0)
    # rows[0] was acknowledged 6 s ago: gone; rows[1] 2 s ago: pending again.
    assert [r.seq for r in again.read(0, 10)] == [r.seq for r in rows[1:]]
    assert again.depth == 3 and again.stats.resent_after_restart == 1


def test_over_the_soft_cap_held_rows_go_first_and_are_not_drops(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    ob = outbox(tmp_path, clock, max_bytes=64 * 1024, hard_max_bytes=64 * 1024 * 8)
    rows = ob.append([msg(n) for n in range(300)])
    ob.delete([], held=[(r.seq, T0) for r in rows])
    ob.append([msg(n) for n in range(300, 600)])
    assert ob.depth == 300 and sum(ob.stats.dropped.values()) == 0
    assert ob.read(0, 1)[0].seq == rows[-1].seq + 1


def test_window_resends_what_the_new_connection_has_not_acknowledged() -> None:
    clock = VirtualClock(T0)
    w = ResendWindow(2.0, clock, lambda _d, _c: True)
    w.add(1, dest=0, conn=1)
    w.add(2, dest=1, conn=1)
    w.add(3, dest=0, conn=2)
    assert w.take_resend(0, 2) == [1, 2]  # only the current connection's acks count
    assert w.held == [(3, T0)]
    assert w.take_resend(0, 2) == []  # already on their way
    clock.advance(int(3.0 * NS))
    assert w.due()
    held, expired = w.take_commit()
    assert held == [(3, T0)] and expired == [1, 2, 3] and len(w) == 0


def test_a_row_stays_until_a_living_connection_held_it_for_the_window() -> None:
    clock = VirtualClock(T0)
    up = {(0, 1): False, (1, 1): True}
    w = ResendWindow(2.0, clock, lambda d, c: up[(d, c)])
    w.add(1, dest=0, conn=1)  # its broker dies afterwards
    assert w.take_resend(1, 1) == [1]
    clock.advance(int(1.5 * NS))
    w.add(1, dest=1, conn=1)
    clock.advance(int(1.0 * NS))
    assert w.take_commit()[1] == []  # 1 s after the living ack: still held
    clock.advance(int(1.5 * NS))
    assert w.take_commit()[1] == [1]


def test_resend_window_is_checked() -> None:
    with pytest.raises(ConfigError, match="resend_window_s"):
        from_mapping(OutboxConfig, {"resend_window_s": -1}, "outbox")
