"""The outbox file: grouped commits, order, bounds with the drop policy, corruption."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import structlog

from edgepipe.core import ConfigError, DeliveryError, VirtualClock
from edgepipe.core.tables import from_mapping
from edgepipe.delivery.outbox import ROW_OVERHEAD, DropReport, NewMessage, Outbox, Priority
from edgepipe.delivery.outbox_config import OutboxConfig, default_outbox_path

T0 = 1_795_694_400_000_000_000
NS = 1_000_000_000
PAYLOAD = b"x" * 400


def msg(n: int, prio: Priority = Priority.CRITICAL, t: int = T0, size: int = 400) -> NewMessage:
    return NewMessage(f"edgepipe/s/alerts/A{n % 3}/k", b"x" * size, prio, t + n, True, f"id-{n}")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


def outbox(tmp_path: Path, clock: VirtualClock, **kw: object) -> Outbox:
    cfg = from_mapping(OutboxConfig, {"path": str(tmp_path / "o.sqlite"), **kw}, "outbox")
    return Outbox(cfg, clock).open()


def test_append_is_one_commit_in_order_and_survives_reopen(
    tmp_path: Path, clock: VirtualClock
) -> None:
    ob = outbox(tmp_path, clock)
    rows = ob.append([msg(n) for n in range(1000)])
    assert ob.stats.commits == 1
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    ob.delete([r.seq for r in rows[:10]])
    ob.close()
    again = outbox(tmp_path, clock)
    assert again.depth == 990
    got = again.read(0, 5)
    assert [r.seq for r in got] == [r.seq for r in rows[10:15]]
    assert got[0].payload == PAYLOAD and got[0].retain and got[0].priority is Priority.CRITICAL
    assert again.read(rows[-2].seq, 10) == [rows[-1]]
    assert again.oldest_created_ns() == T0 + 10
    assert again.topics(rows[11].seq) == {"edgepipe/s/alerts/A1/k", "edgepipe/s/alerts/A2/k"}


def test_seq_is_never_reused_after_everything_was_delivered(
    tmp_path: Path, clock: VirtualClock
) -> None:
    ob = outbox(tmp_path, clock)
    first = ob.append([msg(1)])[0].seq
    ob.delete([first])
    ob.close()
    assert outbox(tmp_path, clock).append([msg(2)])[0].seq > first


def test_soft_cap_drops_info_then_warning_oldest_first_never_critical(
    tmp_path: Path, clock: VirtualClock
) -> None:
    row = ROW_OVERHEAD + len(msg(0).topic) + 400
    ob = outbox(tmp_path, clock, max_bytes=100_000)
    ob.append([msg(n, Priority.CRITICAL) for n in range(100)])
    ob.append([msg(n, Priority.WARNING) for n in range(100, 180)])
    ob.append([msg(n, Priority.INFO) for n in range(180, 230)])
    over = 230 * row - 100_000
    assert ob.stats.dropped == {"info": -(-over // row), "warning": 0, "critical": 0}
    ob.append([msg(n, Priority.CRITICAL) for n in range(230, 330)])
    assert ob.stats.dropped["info"] == 50  # every info row went first
    assert ob.stats.dropped["critical"] == 0
    assert ob.bytes <= 100_000
    left = ob.read(0, 10_000)
    assert sum(r.priority is Priority.CRITICAL for r in left) == 200
    warnings = [r.created_ns - T0 for r in left if r.priority is Priority.WARNING]
    assert warnings == list(range(180 - len(warnings), 180))  # the oldest went first


def test_critical_rows_stay_past_the_soft_cap_until_the_hard_cap(
    tmp_path: Path, clock: VirtualClock
) -> None:
    ob = outbox(tmp_path, clock, max_bytes=65_536, hard_max_bytes=1_000_000)
    ob.append([msg(n, Priority.INFO) for n in range(10)])
    for k in range(10):  # 1,000 critical rows of ~1 KiB: beyond the hard cap
        ob.append([msg(k * 100 + n, Priority.CRITICAL, size=1000) for n in range(100)])
    assert ob.stats.dropped["info"] == 10
    assert ob.stats.full_retries > 0
    assert 0 < ob.stats.dropped["critical"] < 1000
    assert ob.depth > 500
    newest = ob.read(0, 10_000)[-1]
    assert newest.created_ns == T0 + 999  # the newest critical alert is kept
    assert (tmp_path / "o.sqlite").stat().st_size <= 1_000_000


def test_age_cap_drops_old_non_critical_rows_only(tmp_path: Path, clock: VirtualClock) -> None:
    ob = outbox(tmp_path, clock, max_age_s=60.0)
    ob.append([msg(0, Priority.INFO), msg(1, Priority.WARNING), msg(2, Priority.CRITICAL)])
    clock.advance(61 * NS)
    ob.append([msg(3, Priority.INFO, t=clock.time_ns())])
    assert ob.stats.dropped == {"info": 1, "warning": 1, "critical": 0}
    assert [r.priority for r in ob.read(0, 10)] == [Priority.CRITICAL, Priority.INFO]


def test_drops_survive_a_restart_and_are_reported_once(tmp_path: Path, clock: VirtualClock) -> None:
    ob = outbox(tmp_path, clock, max_age_s=1.0)
    ob.append([msg(0, Priority.INFO), msg(1, Priority.WARNING)])
    clock.advance(2 * NS)
    ob.append([msg(2, Priority.CRITICAL, t=clock.time_ns())])
    ob.close()
    ob = outbox(tmp_path, clock)
    assert ob.has_drops

    seen: list[DropReport] = []

    def build(report: DropReport) -> NewMessage:
        seen.append(report)
        body = json.dumps(report.dropped).encode()
        return NewMessage("edgepipe/s/health/outbox_drops", body, Priority.INFO, T0, False)

    row = ob.append_drop_report(build)
    assert row is not None and json.loads(row.payload) == {"info": 1, "warning": 1}
    assert seen[0].first_ns == T0 and seen[0].last_ns == T0 + 1
    assert ob.append_drop_report(build) is None
    ob.close()
    assert outbox(tmp_path, clock).append_drop_report(build) is None


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path, clock: VirtualClock) -> None:
    (tmp_path / "o.sqlite").write_bytes(b"this is no database " * 500)
    with structlog.testing.capture_logs() as logs:
        ob = outbox(tmp_path, clock)
    assert ob.depth == 0 and ob.stats.corrupt_recoveries == 1
    ob.append([msg(1)])
    moved = list(tmp_path.glob("o.sqlite.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"this is no database")
    event = next(e for e in logs if e["event"] == "outbox_corrupt")
    assert event["log_level"] == "error" and event["moved_to"] == str(moved[0])


def test_a_damaged_database_is_found_at_open_and_moved_aside(
    tmp_path: Path, clock: VirtualClock
) -> None:
    ob = outbox(tmp_path, clock, synchronous="normal")
    ob.append([msg(n) for n in range(2000)])
    ob.close()
    path = tmp_path / "o.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 3 : page * 40] = b"\xa5" * (page * 37)  # btree pages overwritten
    path.write_bytes(bytes(data))
    ob = outbox(tmp_path, clock)  # quick_check finds it at open
    assert ob.stats.corrupt_recoveries == 1
    assert ob.append([msg(1)])[0].seq == 1


def test_a_second_process_cannot_open_the_same_outbox(tmp_path: Path, clock: VirtualClock) -> None:
    ob = outbox(tmp_path, clock)
    ob.append([msg(1)])
    with pytest.raises(DeliveryError, match=r"cannot open outbox .*locked"):
        outbox(tmp_path, clock).append([msg(2)])


def test_config_names_the_bad_key_and_defaults_to_the_state_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=r"outbox\.hard_max_bytes"):
        from_mapping(OutboxConfig, {"max_bytes": 10_000_000, "hard_max_bytes": 1}, "outbox")
    with pytest.raises(ConfigError, match=r"outbox\.synchronous"):
        from_mapping(OutboxConfig, {"synchronous": "off"}, "outbox")
    with pytest.raises(ConfigError, match=r"outbox\.fsync: unknown key"):
        from_mapping(OutboxConfig, {"fsync": True}, "outbox")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/edgepipe:/other")
    assert default_outbox_path() == "/var/lib/edgepipe/outbox.sqlite"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")
    assert default_outbox_path() == "/home/u/.state/edgepipe/outbox.sqlite"


def test_acknowledged_rows_go_in_the_same_commit_as_new_ones(
    tmp_path: Path, clock: VirtualClock
) -> None:
    ob = outbox(tmp_path, clock)
    first = ob.append([msg(n) for n in range(10)])
    commits = ob.stats.commits
    ob.append([msg(10)], acked=[r.seq for r in first[:4]])
    assert ob.stats.commits == commits + 1
    assert ob.depth == 7 and ob.stats.deleted == 4
    assert ob.read(0, 1)[0].seq == first[4].seq
    ob.append([], acked=[r.seq for r in first[4:]])
    assert ob.depth == 1
