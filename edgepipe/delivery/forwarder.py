"""Store-and-forward: outbox -> the preferred MQTT destination that is up.

Destinations are tried in priority order (the box's own broker first, then regional
ones). Each message goes to the first destination that is connected and not held down;
when a preferred one comes back, the next message goes to it. A destination is held
down for ``down_hold_s`` (doubling, at most 30 s) when it misses a PUBACK deadline
(``ack_timeout_s``: a broker that accepts connections but no longer acknowledges is as
good as dead) or rejects a message.

Ordering. Messages go out in outbox order on one connection, many in flight
(MQTT 5.0 §4.6 keeps that order per connection). Any failure "rewinds": the in-flight
window is forgotten and delivery resumes from the oldest unacknowledged row, so a
message can arrive twice, only after a failure, with the same id. What was pending
when the rewind (or a restart, or a stall with no destination) happened is the
*backlog*; it is read back from the file and paced at ``drain_rate``. Messages committed
after that are *live* and go first, unless their topic (an alert key, whose retained
message is the key's current state) still has a backlog row: those wait their turn, so
per topic the order always holds.

Acknowledged rows are held for ``resend_window_s`` and sent again when delivery moves
to another connection (``_resend.py``): a broker killed after its PUBACK loses them.

Drops made by the outbox are reported as one ``outbox_drops`` health message after the
next successful delivery.
"""

from __future__ import annotations

__all__ = ["Forwarder", "ForwarderStats"]

import asyncio
import concurrent.futures
import contextlib
import functools
import sqlite3
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import structlog

from edgepipe.core import Alert, Clock, DeliveryError
from edgepipe.delivery._backlog import Backlog
from edgepipe.delivery._forwarder_records import Flight, ForwarderStats, drop_message
from edgepipe.delivery._resend import ResendWindow
from edgepipe.delivery.chain import Destination, DestinationChain
from edgepipe.delivery.message import alert_to_json, health_to_json
from edgepipe.delivery.outbox import DropReport, NewMessage, Outbox, OutboxMessage, Priority
from edgepipe.delivery.outbox_config import OutboxConfig
from edgepipe.delivery.topics import alert_topic, health_topic

_log = structlog.get_logger()
T = TypeVar("T")
_NS = 1_000_000_000
_READ_BATCH = 1024
#: Pause before retrying after the outbox file failed to read or write.
RETRY_S = 0.5


class Forwarder:
    """Accept alerts synchronously, commit them in groups, deliver them as described above."""

    def __init__(
        self,
        outbox: Outbox,
        destinations: Sequence[Destination],
        config: OutboxConfig,
        site: str,
        clock: Clock,
        *,
        max_pending: int = 100_000,
        on_commit: Callable[[Sequence[OutboxMessage]], None] | None = None,
        on_delivered: Callable[[OutboxMessage, str], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.chain = DestinationChain(destinations, clock, config.down_hold_s)
        self.destinations = self.chain.destinations
        self.config = config
        self.site = site
        self._clock = clock
        self._max_pending = max_pending
        self._on_commit = on_commit  # hooks for tests and tools: rows committed,
        self._on_delivered = on_delivered  # and (row, destination) acknowledged
        self.stats = ForwarderStats()
        self.last_status: dict[str, Any] | None = None  # the last retained status sent
        self._db_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._buffer: deque[NewMessage] = deque()
        self._window = ResendWindow(config.resend_window_s, clock, self._alive)
        self._live: deque[OutboxMessage] = deque()
        self._inflight: dict[int, Flight] = {}
        self._done: dict[int, bool] = {}  # acked seq -> deletion committed
        self._gen = 0
        self._backlog = Backlog(config.drain_rate, clock)
        self._stalled = False
        self._want_report = False
        self._active: int | None = None
        self._conn: tuple[int, int] | None = None  # (destination, its connects) in use
        self._commit_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- the pipeline's side --------------------------------------------------------------
    def submit_alert(self, alert: Alert) -> None:
        """Queue ``alert`` for the next grouped commit (synchronous, never blocks)."""
        topic = alert_topic(alert.site, alert.asset, alert.kind)
        prio = Priority.of(alert.severity)
        self._queue(
            NewMessage(topic, alert_to_json(alert), prio, self._clock.time_ns(), True, alert.id)
        )

    def submit_health(self, kind: str, detail: Mapping[str, Any]) -> None:
        """Queue a health event (``edgepipe/<site>/health/<kind>``, priority info)."""
        now = self._clock.time_ns()
        payload = health_to_json(self.site, kind, now, detail)
        self._queue(
            NewMessage(health_topic(self.site, kind), payload, Priority.INFO, now, False, kind)
        )

    def submit_retained(self, topic: str, payload: bytes, key: str) -> None:
        """Queue a retained info message on the caller's topic (an asset's health index:
        its retained message is the asset's current state)."""
        now = self._clock.time_ns()
        self._queue(NewMessage(topic, payload, Priority.INFO, now, True, key))

    def _queue(self, message: NewMessage) -> None:
        if len(self._buffer) >= self._max_pending:
            # Only when the disk stalls for seconds: counted and logged, never silent.
            lost = self._buffer.popleft()
            self.stats.dropped_unbuffered += 1
            _log.error("alert_dropped", id=lost.key, reason="outbox commit stalled",
                       max_pending=self._max_pending)  # fmt: skip
        self._buffer.append(message)
        self.stats.submitted += 1
        self._idle.clear()
        self._commit_wake.set()

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Open the outbox, connect every destination, deliver until cancelled."""
        await self._db(self.outbox.open)
        if self.outbox.depth:
            self._enter_backlog("restart")
        self._tasks = [
            asyncio.create_task(self.chain.connect_all(), name="outbox-connect"),
            asyncio.create_task(self._committer(), name="outbox-commit"),
            asyncio.create_task(self._sender(), name="outbox-send"),
            asyncio.create_task(self._sweeper(), name="outbox-sweep"),
            asyncio.create_task(self._status_loop(), name="outbox-status"),
        ]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until nothing is pending (used at a clean stop)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.pending:
                    self._idle.clear()  # set by the committer once nothing is pending
                    await self._idle.wait()
        return self.pending == 0

    @property
    def pending(self) -> int:
        return len(self._buffer) + self.outbox.depth

    async def close(self) -> None:
        """Close every connection ("offline" status) and the outbox file."""
        await self.chain.close()
        held, expired = self._window.take_commit()
        await self._db(self.outbox.delete, expired, held)
        await self._db(self.outbox.close)
        self._db_exec.shutdown(wait=True)

    def statistics(self) -> dict[str, Any]:
        return {
            **asdict(self.stats),
            "depth": self.pending,
            "inflight": len(self._inflight),
            "held": len(self._window),
            "backlog": self._backlog.active,
            "active": None if self._active is None else self.destinations[self._active].name,
            "dropped": dict(self.outbox.stats.dropped),
        }

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the outbox thread; a failing disk becomes ``DeliveryError``."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._db_exec, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise DeliveryError(f"outbox {self.outbox.path}: {exc}") from exc

    # -- committing ------------------------------------------------------------------------
    async def _committer(self) -> None:
        while True:
            await self._commit_wake.wait()
            self._commit_wake.clear()
            while self._buffer or self._window.held or self._window.due() or self._want_report:
                take = min(len(self._buffer), self.config.batch_max)
                batch = [self._buffer.popleft() for _ in range(take)]
                held, dels = self._window.take_commit()
                report, self._want_report = self._want_report, False
                try:
                    rows, extra = await self._db(self._commit, batch, dels, held, report)
                except DeliveryError as exc:
                    # An I/O error of the disk: keep everything in memory (bounded by
                    # max_pending) and try again; the service keeps running.
                    self._buffer.extendleft(reversed(batch))
                    self._window.restore(held, dels)
                    self._want_report = self._want_report or report
                    _log.error("outbox_write_failed", error=str(exc), retry_s=RETRY_S,
                               buffered=len(self._buffer))  # fmt: skip
                    await asyncio.sleep(RETRY_S)
                    continue
                self._after_commit(rows + extra, [seq for seq, _ns in held])

    def _commit(
        self, batch: list[NewMessage], dels: list[int], held: list[tuple[int, int]], report: bool
    ) -> tuple[list[OutboxMessage], list[OutboxMessage]]:
        """In the outbox thread: append new rows, mark acknowledged ones and forget those
        past the resend window (one transaction), then report drops."""
        rows = self.outbox.append(batch, dels, held)
        extra = []
        if report:
            row = self.outbox.append_drop_report(self._drop_message)
            extra = [row] if row is not None else []
        return rows, extra

    def _drop_message(self, report: DropReport) -> NewMessage:
        return drop_message(self.site, self._clock.time_ns(), report)

    def _after_commit(self, rows: list[OutboxMessage], dels: list[int]) -> None:
        for seq in dels:
            if seq in self._done:
                self._done[seq] = True
        self._prune_done()
        if rows:
            self.stats.committed += len(rows)
            if self._on_commit is not None:
                self._on_commit(rows)
            if len(self._live) + len(rows) > self.config.max_live:
                self._enter_backlog("live queue full")
            elif not self._backlog.active or self._backlog.started:
                self._live.extend(rows)
            self._send_wake.set()
        if not self.pending and not self._inflight:
            self._idle.set()

    def _prune_done(self) -> None:
        floor = min(self._backlog.floor(), self._live[0].seq if self._live else 1 << 62)
        for seq in [s for s, deleted in self._done.items() if deleted and s < floor]:
            del self._done[seq]

    # -- sending ---------------------------------------------------------------------------
    def _enter_backlog(self, reason: str) -> None:
        """Everything pending is read back from the file from the oldest row on."""
        self._backlog.enter()
        self._live.clear()
        _log.info("outbox_backlog", reason=reason, depth=self.pending)

    def _rewind(self, reason: str, dest: int | None, hold: bool = False) -> None:
        self.stats.rewinds += 1
        if dest is not None and hold:
            self.chain.hold(dest, reason)
            for f in self._inflight.values():
                if f.dest == dest:
                    # Never coming: free the publisher's table.
                    self.destinations[dest].publisher.forget(f.mid)
        self._gen += 1
        self._inflight.clear()
        self._enter_backlog(reason)
        self._send_wake.set()

    async def _sender(self) -> None:
        while True:
            if self.chain.changed.is_set():
                self.chain.changed.clear()
                self._send_wake.set()
            dest = self.chain.pick()
            if dest is None:
                self._stalled = True
                await self._wait_send(0.05)
                continue
            if dest != self._active:
                _log.info("destination_active", destination=self.destinations[dest].name)
                self._active = dest
            if self._stalled:
                self._stalled = False
                if self.pending:
                    self._enter_backlog("destination available")
            try:
                await self._resend_if_moved(dest)
                if self._backlog.active and not self._backlog.started:
                    await self._start_backlog()
                    continue
                sent = self._send_some(dest)
                if self._backlog.started and not self._backlog.rows:
                    await self._read_backlog()
                    continue
            except DeliveryError as exc:
                _log.error("outbox_read_failed", error=str(exc), retry_s=RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            if sent == 0:
                await self._wait_send(0.01 if self._backlog.active else 0.25)
            else:
                await asyncio.sleep(0)

    async def _wait_send(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._send_wake.wait()
        self._send_wake.clear()

    def _alive(self, dest: int, conn: int) -> bool:
        """Connection ``conn`` of ``dest`` is still up (it has not failed since)."""
        pub = self.destinations[dest].publisher
        return pub.connects == conn and pub.connected

    async def _resend_if_moved(self, dest: int) -> None:
        """On a new destination or connection, send again what others acknowledged
        within the resend window (their broker may have died with it)."""
        conn = (dest, self.destinations[dest].publisher.connects)
        if conn == self._conn:
            return
        self._conn = conn
        seqs = self._window.take_resend(*conn)
        if not seqs:
            return
        for seq in seqs:
            self._done.pop(seq, None)
        await self._db(self.outbox.unack, seqs)
        self.stats.resent += len(seqs)
        _log.info("outbox_resend", destination=self.destinations[dest].name, rows=len(seqs))
        self._rewind("resend window", None)
        self._backlog.grant(len(seqs))

    async def _start_backlog(self) -> None:
        gen = self._gen
        end = await self._db(self.outbox.max_seq)
        # Topics of every row in the file, also those committed after ``end`` while
        # ``_live`` was not being filled: a live row must not overtake any of them.
        topics = await self._db(self.outbox.topics, 1 << 62)
        if gen == self._gen and self._backlog.active:
            self._backlog.start(end, topics)

    async def _read_backlog(self) -> None:
        gen = self._gen
        rows = await self._db(self.outbox.read, self._backlog.cursor, _READ_BATCH)
        if gen != self._gen or not self._backlog.started:
            return  # rewound while reading: start over from the top
        if not self._backlog.feed(rows):
            _log.info("outbox_backlog_done", depth=self.pending)

    def _send_some(self, dest: int) -> int:
        """Send live rows, then paced backlog rows, while the window has room."""
        sent = 0
        limit = min(self.config.max_inflight, self.destinations[dest].publisher.config.max_inflight)
        room = limit - len(self._inflight)
        while room > 0 and self._live:
            row = self._live.popleft()
            if self._is_sent(row.seq) or not self._backlog.is_live(row):
                continue  # the backlog reader will reach it (it is in the file)
            if not self._send(dest, row):
                return sent
            sent += 1
            room -= 1
        while room > 0 and self._backlog.may_send():
            row = self._backlog.rows.popleft()
            if self._is_sent(row.seq):
                continue
            if not self._send(dest, row):
                return sent
            self._backlog.spend()
            sent += 1
            room -= 1
        return sent

    def _is_sent(self, seq: int) -> bool:
        return seq in self._inflight or seq in self._done

    def _send(self, dest: int, row: OutboxMessage) -> bool:
        pub = self.destinations[dest].publisher
        done = functools.partial(self._acked, row, self._gen, dest)
        try:
            mid = pub.publish_then(row.topic, row.payload, retain=row.retain, done=done)
        except DeliveryError as exc:
            self._failed(row.seq, self._gen, dest, exc)
            return False
        deadline = self._clock.monotonic_ns() + int(pub.config.ack_timeout_s * _NS)
        self._inflight[row.seq] = Flight(dest, deadline, self._gen, mid)
        self.stats.sent += 1
        return True

    def _acked(self, row: OutboxMessage, gen: int, dest: int, exc: DeliveryError | None) -> None:
        seq = row.seq
        if exc is not None:
            self._failed(seq, gen, dest, exc)
            return
        conn = self.destinations[dest].publisher.connects
        if gen != self._gen and (dest, conn) != self._conn:
            # Rewound since, to another connection: the row goes there again (counting
            # this PUBACK would leave that one without it, and a later resend would put
            # it behind newer rows of its topic).
            return
        self._inflight.pop(seq, None)
        if seq not in self._done:
            self._done[seq] = False
            self._window.add(seq, dest, conn)
            self.stats.delivered += 1
            if self._on_delivered is not None:
                self._on_delivered(row, self.destinations[dest].name)
        self.chain.healthy(dest)
        if self.outbox.has_drops:
            self._want_report = True
        self._commit_wake.set()
        self._send_wake.set()

    def _failed(self, seq: int, gen: int, dest: int, exc: BaseException) -> None:
        if gen != self._gen:
            return  # already rewound past this one
        self.stats.failures += 1
        rejected = "rejected" in str(exc)
        _log.warning("alert_delivery_failed", destination=self.destinations[dest].name,
                     seq=seq, error=str(exc))  # fmt: skip
        self._rewind(str(exc), dest, hold=rejected)

    # -- watching --------------------------------------------------------------------------
    async def _sweeper(self) -> None:
        """A destination whose oldest message missed its PUBACK deadline is down."""
        while True:
            await asyncio.sleep(0.05)
            if self._window.due():
                self._commit_wake.set()  # rows past the resend window are deleted
            now = self._clock.monotonic_ns()
            for seq, f in self._inflight.items():
                if f.deadline_ns <= now:
                    self.stats.ack_timeouts += 1
                    name = self.destinations[f.dest].name
                    self._rewind(f"no PUBACK from {name} for seq {seq}", f.dest, hold=True)
                break  # sent in order: the first one has the earliest deadline

    async def _status_loop(self) -> None:
        """Retained status on every connected destination: outbox depth and oldest age."""
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            try:
                oldest = await self._db(self.outbox.oldest_created_ns)
            except DeliveryError as exc:
                _log.error("outbox_read_failed", error=str(exc))
                oldest = None
            age = 0.0 if oldest is None else max(0, self._clock.time_ns() - oldest) / _NS
            detail = {
                "outbox_depth": self.pending,
                "oldest_age_s": round(age, 3),
                "active": None if self._active is None else self.destinations[self._active].name,
                "dropped": dict(self.outbox.stats.dropped),
            }
            self.last_status = detail  # for /metrics, which must not touch the database
            await self.chain.publish_status(detail)
