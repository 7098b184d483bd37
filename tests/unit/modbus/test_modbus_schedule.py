"""Poll scheduling on virtual time: no drift, overruns counted, devices served fairly."""

from __future__ import annotations

from adapters.modbus.schedule import DeviceSchedule, Scheduler

S = 1_000_000_000


def _run(sched: Scheduler, read_ns: int, until_ns: int) -> list[tuple[int, int]]:
    """Drive the scheduler like the poller does; each read takes ``read_ns``."""
    now = 0
    sched.start(now)
    log: list[tuple[int, int]] = []
    while now < until_ns:
        sched.tick(now)
        nxt = sched.next_read()
        if nxt is None:
            now = sched.wake_ns()
            continue
        now += read_ns
        log.append((nxt[0], now))
        sched.done(nxt[0])
    return log


def test_cycles_stay_on_the_grid_without_drift() -> None:
    dev = DeviceSchedule(S, reads=3)
    sched = Scheduler([dev])
    _run(sched, read_ns=7_000_000, until_ns=3600 * S)
    # 3600 cycles in an hour: the 21 ms each cycle takes never shifts the grid.
    assert dev.cycles in (3600, 3601)
    assert dev.overruns == 0
    assert dev.next_due_ns % S == 0


def test_overruns_are_counted_and_skipped() -> None:
    dev = DeviceSchedule(S, reads=5)
    sched = Scheduler([dev])
    _run(sched, read_ns=300_000_000, until_ns=60 * S)  # a cycle takes 1.5 s
    assert dev.cycles == 30
    assert dev.overruns == 30
    assert dev.next_due_ns % S == 0


def test_devices_take_turns() -> None:
    big, small = DeviceSchedule(S, reads=10), DeviceSchedule(S, reads=1)
    sched = Scheduler([big, small])
    log = _run(sched, read_ns=10_000_000, until_ns=S // 2)
    first = [d for d, _ in log[:3]]
    assert first == [0, 1, 0]  # the one-read device is not stuck behind ten reads
    assert big.cycles == small.cycles == 1
