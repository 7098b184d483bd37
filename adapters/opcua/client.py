"""The async OPC-UA source: one subscription on one server, rebuilt after a lost session.

Monitored items report data changes (OPC 10000-4 clause 5.12); each keeps the channel's
latest value, SourceTimestamp and StatusCode in place (bounded: one slot per channel,
later changes overwrite, ``stats.notifications`` counts them). Once per publishing
interval, if anything changed, one row goes to the sink:

- event time = the newest SourceTimestamp of the changes (``device_time``); a server
  that sends none gets the receipt time and ``Quality.RECEIPT_TIME``;
- a Bad StatusCode makes that channel NaN and flags the row ``DEVICE_ERROR``; Uncertain
  values are kept (OPC 10000-4 clause 7.39: usable with caution);
- a channel not refreshed within ``stale_after_s`` flags the row ``STALE`` once the
  server has shown that it re-stamps that channel's unchanged value (a notification
  with the same value and status as the one before). A server that reports changes only
  (OPC 10000-4 7.22.2 lets the SourceTimestamp stay) leaves a steady value quiet, and so
  does a deadband: such a channel is judged with the whole subscription, which is stale
  only when nothing at all arrives.

Deadband (OPC 10000-4 clause 7.22.2 DataChangeFilter; percent: OPC 10000-8 clause 7.2,
a share of the node's EURange): the filter is requested from the server, and applied
again here against the last value this source accepted ("last cached value"), because
servers differ. asyncua's server (2.1.0, ``monitored_item_service.py``) compares with the
previous *sample* instead, so a drift in steps each under the band is never reported
by it, and it passes every change for a percent deadband ("not implemented"). The
client-side check costs nothing on a conforming server and makes the band hold on one
that ignores it; a drift the server swallowed cannot be recovered by any client.

asyncua does not rebuild a dead session by itself (its ``auto_reconnect`` is off here:
recovery is ours, counted and logged). Its watchdog reads the server state every
``watchdog_s``; when that fails the connection-lost callback fires, and this source
drops the client, builds a new one with backoff and jitter, resolves the nodes again
and recreates the subscription: a restarted server is followed without restarting
edgepipe.
"""

from __future__ import annotations

__all__ = ["OpcuaSource", "OpcuaStats", "connect_client"]

import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.ua.uaerrors import UaError

from adapters.opcua.config import OpcuaConfig
from adapters.opcua.security import POLICIES, TrustList, UntrustedServerError
from edgepipe.core import (
    ChannelInfo,
    ChannelKind,
    Clock,
    Quality,
    SampleBatch,
    Sink,
    SourceStatus,
    StatusKind,
    StreamInfo,
    TransportError,
)

log = structlog.get_logger()
logging.getLogger("asyncua").setLevel(logging.ERROR)  # our events say what matters, once

_NS = 1_000_000_000
CLIENT_URI = "urn:edgepipe:client"


@dataclass(slots=True)
class OpcuaStats:
    sessions: int = 0
    lost: int = 0
    notifications: int = 0
    bad_status: int = 0
    rows: int = 0
    stale_rows: int = 0
    untrusted: int = 0
    deadband_dropped: int = 0  # changes the server sent that were within the band here
    not_numbers: int = 0  # Good values that are no number (a string, an array): NaN


async def connect_client(cfg: OpcuaConfig, watchdog_s: float = 1.0) -> Client:
    """A connected asyncua client with the configured security; ``TransportError``
    (``UntrustedServerError`` for a refused certificate) when that fails."""
    client = Client(cfg.url, timeout=cfg.timeout_s, watchdog_intervall=watchdog_s)
    client.application_uri = CLIENT_URI
    client.name = client.description = "edgepipe"
    if cfg.username:
        client.set_user(cfg.username)
        client.set_password(cfg.password)
    try:
        if cfg.security != "None":
            client.certificate_validator = TrustList(
                cfg.trust_dir or None, cfg.trust_server
            ).validate
            await client.set_security(
                POLICIES[cfg.policy], cfg.certificate, cfg.private_key,
                mode=getattr(ua.MessageSecurityMode, cfg.security),
            )  # fmt: skip
        await client.connect()
    except UntrustedServerError:
        await _close(client)
        raise
    except (OSError, TimeoutError, UaError, ValueError) as exc:
        await _close(client)
        raise TransportError(f"{cfg.url}: {type(exc).__name__}: {exc}") from exc
    return client


async def _close(client: Client) -> None:
    with contextlib.suppress(Exception):
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
        # arrives as the disconnect completes, and the source then never stopped
        async with asyncio.timeout(2.0):
            await client.disconnect()


async def resolve(client: Client, ref: str, namespaces: list[str] | None = None) -> Node:
    """A node from a NodeId string or a browse path ``/Objects/2:DGA/2:H2``.

    A NodeId by namespace URI (``nsu=urn:vendor:dga;s=H2``, OPC 10000-6 clause 5.3.1.10)
    is looked up in the server's NamespaceArray (``namespaces``, read here when not
    given): a namespace index is the server's to assign and may move when it restarts
    or loads another model, a URI does not.
    """
    if not ref.startswith("/"):
        node_id = ua.NodeId.from_string(ref)
        uri = getattr(node_id, "NamespaceUri", None)
        if not uri:
            return client.get_node(node_id)
        if namespaces is None:
            namespaces = await client.get_namespace_array()
        if uri not in namespaces:
            raise UaError(f"namespace {uri!r} is not in the server's NamespaceArray")
        return client.get_node(
            ua.NodeId(node_id.Identifier, ua.Int16(namespaces.index(uri)), node_id.NodeIdType)
        )
    parts = [p for p in ref.split("/") if p]
    if parts and parts[0] in ("Objects", "0:Objects"):
        parts = parts[1:]
    if not parts:  # "/" or "/Objects": the folder itself (an empty relative path is an
        return client.nodes.objects  # error to TranslateBrowsePathsToNodeIds, OPC 10000-4 5.8.4)
    return await client.nodes.objects.get_child(parts)


class OpcuaSource:
    """Subscribes to ``config.nodes`` until cancelled; follows server restarts."""

    def __init__(self, config: OpcuaConfig, clock: Clock, watchdog_s: float = 1.0) -> None:
        self.name = config.name
        self.config = config
        self.clock = clock
        self.watchdog_s = watchdog_s
        self.stats = OpcuaStats()
        n = len(config.nodes)
        self.info = StreamInfo(
            stream=config.stream, source=config.name, asset=config.asset,
            channels=tuple(ChannelInfo(ch, ChannelKind.ANALOG) for ch, _ in config.nodes),
            rate_hz=1000.0 / config.publishing_interval_ms, kind=config.kind, params=config.params,
        )  # fmt: skip
        self._values = np.full(n, np.nan)
        self._source_ns = np.zeros(n, dtype=np.int64)
        self._updated_ns = np.zeros(n, dtype=np.int64)  # receipt time (clock), 0 = never
        self._bad = np.zeros(n, dtype=bool)
        self._changed = np.zeros(n, dtype=bool)  # notified since the last row
        self._restamped = np.zeros(n, dtype=bool)  # the server re-sends unchanged values
        self._not_numbers: set[int] = set()  # channels already logged as no number
        self._clock_warned = False
        self._last_t = 0  # time of the last row
        self._band = np.zeros(n)  # absolute band per channel, engineering units
        self._reported = np.full(n, np.nan)  # last accepted value of this session
        self._codes = np.zeros(n, dtype=np.uint32)  # its StatusCode
        self._dirty = False
        self._handles: dict[Any, int] = {}
        self._sub: Any = None  # the session's asyncua Subscription
        self._lost: asyncio.Event | None = None  # set when the session must end

    async def run(self, sink: Sink) -> None:
        sink.on_stream(self.info)
        attempt = 0
        while True:
            rows = self.stats.rows
            try:
                await self._session(sink)
            except UntrustedServerError as exc:
                self.stats.untrusted += 1
                log.error("opcua_untrusted_server", source=self.name, error=str(exc))
                sink.on_status(self._status(StatusKind.DISCONNECTED, str(exc)))
            except TransportError as exc:
                log.warning("opcua_disconnected", source=self.name, error=str(exc))
                sink.on_status(self._status(StatusKind.DISCONNECTED, str(exc)))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # a cancellation that library code turned into an error or swallowed:
                # stop, as asked (a test run hung here for 120 s, connecting again)
                raise asyncio.CancelledError
            attempt = 0 if self.stats.rows > rows else attempt + 1
            await asyncio.sleep(self.backoff_s(attempt))

    def backoff_s(self, attempt: int) -> float:
        """Exponential from ``reconnect_min_s``, capped, +-20 % jitter."""
        grown = self.config.reconnect_min_s * 2.0 ** max(attempt - 1, 0)
        return min(grown, self.config.reconnect_max_s) * random.uniform(0.8, 1.2)

    async def _session(self, sink: Sink) -> None:
        client = await connect_client(self.config, self.watchdog_s)
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self.stats.lost += 1
            log.warning("opcua_session_lost", source=self.name, error=str(exc))
            lost.set()

        client.connection_lost_callback = on_lost
        self._lost = lost
        try:
            await self._subscribe(client)
            self.stats.sessions += 1
            log.info("opcua_connected", source=self.name, url=self.config.url,
                     security=self.config.security, items=len(self.config.nodes))  # fmt: skip
            sink.on_status(self._status(StatusKind.CONNECTED, self.config.url))
            await self._sample(sink, lost)
        except (OSError, TimeoutError, UaError) as exc:
            raise TransportError(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc
        finally:
            await _close(client)
        raise TransportError(f"{self.config.url}: session lost")

    async def _subscribe(self, client: Client) -> None:
        """Monitor every channel that can be: one unknown node (a typo, a device removed
        from the server) leaves its channel NaN with DEVICE_ERROR, not the others without
        data (CreateMonitoredItems answers per item, OPC 10000-4 5.12.2); retried with
        the next session."""
        cfg = self.config
        usable: list[tuple[int, Node]] = []
        # read once per session: a restarted server may have moved its namespaces
        namespaces = await client.get_namespace_array()
        for i, (channel, ref) in enumerate(cfg.nodes):
            try:
                usable.append((i, await resolve(client, ref, namespaces)))
            except UaError as exc:
                self._unusable(i, channel, exc)
        self._band = await self._bands([n for _, n in usable], [i for i, _ in usable])
        self._reported[:] = np.nan
        sub = self._sub = await client.create_subscription(_subscription_parameters(cfg), self)
        # Without a deadband every new SourceTimestamp is reported (StatusValueTimestamp,
        # OPC 10000-4 clause 7.22.2), so an unchanged value still proves the item alive
        # and staleness is known per channel. With a deadband only value changes come.
        mfilter = ua.DataChangeFilter()
        mfilter.Trigger = ua.DataChangeTrigger.StatusValueTimestamp
        if cfg.deadband > 0:
            mfilter.Trigger = ua.DataChangeTrigger.StatusValue
            percent = cfg.deadband_type == "percent"
            kind = ua.DeadbandType.Percent if percent else ua.DeadbandType.Absolute
            mfilter.DeadbandType = kind.value
            mfilter.DeadbandValue = cfg.deadband
        results = await self._monitor(sub, usable, mfilter)
        refused = [(i, n) for (i, n), r in zip(usable, results, strict=True)
                   if isinstance(r, ua.StatusCode) and r.name in _FILTER_REFUSED]  # fmt: skip
        if refused:
            # The server will not filter: the source applies the deadband itself
            # (datachange_notification), so the items go on without a filter.
            log.info("opcua_deadband_refused", source=self.name, items=len(refused))
            plain = ua.DataChangeFilter()
            plain.Trigger = ua.DataChangeTrigger.StatusValue
            again = dict(zip((i for i, _ in refused),
                             await self._monitor(sub, refused, plain), strict=True))  # fmt: skip
            results = [again.get(i, r) for (i, _), r in zip(usable, results, strict=True)]
        self._handles = {}
        for (i, node), r in zip(usable, results, strict=True):
            if isinstance(r, ua.StatusCode):
                self._unusable(i, cfg.nodes[i][0], r.name)
            else:
                self._handles[node.nodeid] = i
        if not self._handles:
            raise TransportError(f"{cfg.url}: no channel can be monitored")

    async def _monitor(self, sub: Any, items: list[tuple[int, Node]], mfilter: Any) -> list[Any]:
        """CreateMonitoredItems for ``items``, in calls of at most the server's
        MaxMonitoredItemsPerCall; one result (a handle or a bad StatusCode) per item."""
        cfg = self.config
        results: list[Any] = []
        for lo in range(0, len(items), _PER_CALL):
            # ``_subscribe`` is the one asyncua call that takes a filter for many nodes.
            got = await sub._subscribe(
                [n for _, n in items[lo : lo + _PER_CALL]], mfilter=mfilter,
                queuesize=cfg.queue_size, sampling_interval=ua.Double(cfg.sampling_interval_ms),
            )  # fmt: skip
            results += got if isinstance(got, list) else [got]
        return results

    def _unusable(self, i: int, channel: str, why: object) -> None:
        log.warning("opcua_channel_unusable", source=self.name, channel=channel,
                    node=self.config.nodes[i][1], error=str(why))  # fmt: skip
        self._bad[i] = True
        self._values[i] = np.nan
        self._dirty = True

    async def _bands(self, nodes: list[Node], channels: list[int]) -> np.ndarray:
        """The absolute band of each channel (``nodes`` are those of ``channels``); a
        percent one needs the node's EURange (OPC 10000-8 clause 5.3.2.2: without it a
        percent deadband cannot be used)."""
        cfg = self.config
        if cfg.deadband_type != "percent" or cfg.deadband <= 0:
            return np.full(len(cfg.nodes), cfg.deadband)
        bands = np.full(len(cfg.nodes), cfg.deadband)
        for i, node in zip(channels, nodes, strict=True):
            channel = cfg.nodes[i][0]
            try:
                eu = await (await node.get_child("0:EURange")).read_value()
            except UaError as exc:
                raise TransportError(f"{cfg.url}: {channel}: a percent deadband needs an "
                                     f"EURange property: {exc}") from exc  # fmt: skip
            if not isinstance(eu, ua.Range) or not eu.High > eu.Low:
                raise TransportError(f"{cfg.url}: {channel}: unusable EURange {eu!r}")
            bands[i] = cfg.deadband / 100.0 * (eu.High - eu.Low)
        return bands

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        """asyncua's callback: keep the latest value of the channel (in place, bounded)."""
        i = self._handles.get(node.nodeid)
        if i is None:
            return
        self.stats.notifications += 1
        dv = data.monitored_item.Value
        status_bad = dv.StatusCode is not None and dv.StatusCode.is_bad()
        good = not status_bad
        status = dv.StatusCode.value if dv.StatusCode is not None else 0
        value = _number(val) if good else np.nan
        if good and math.isnan(value) and not _is_nan(val):
            # the node holds text, an array or a structure: a wrong node for a channel
            # of numbers; NaN with DEVICE_ERROR, said once per channel
            self.stats.not_numbers += 1
            if i not in self._not_numbers:
                self._not_numbers.add(i)
                log.warning("opcua_not_a_number", source=self.name,
                            channel=self.config.nodes[i][0], value=repr(val)[:80])  # fmt: skip
            good = False
        # Deadband against the last accepted value; a status change always passes
        # (OPC 10000-4 clause 7.22.2). NaN (first value, none yet) compares False.
        band = self._band[i]
        if band > 0 and status == self._codes[i] and abs(value - self._reported[i]) <= band:
            self.stats.deadband_dropped += 1
            return
        if value == self._reported[i] and status == self._codes[i]:
            self._restamped[i] = True  # silence from this channel will mean something
        self._reported[i], self._codes[i] = value, status
        self._bad[i] = not good
        if status_bad:
            self.stats.bad_status += 1
        self._values[i] = value
        ts = dv.SourceTimestamp
        self._source_ns[i] = int(ts.timestamp() * 1e6) * 1000 if ts is not None else 0
        self._updated_ns[i] = self.clock.time_ns()
        self._changed[i] = True
        self._dirty = True

    def status_change_notification(self, status: Any) -> None:
        """asyncua's callback for a StatusChangeNotification (OPC 10000-4 7.25.4): the
        server ended the subscription (BadTimeout, BadSubscriptionIdInvalid, ...); the
        session ends and a new one subscribes again."""
        code = getattr(status, "Status", status)
        log.warning("opcua_subscription_ended", source=self.name, status=str(code))
        self.stats.lost += 1
        if self._lost is not None:
            self._lost.set()

    async def _sample(self, sink: Sink, lost: asyncio.Event) -> None:
        period = round(self.config.publishing_interval_ms * 1e6)
        due = self.clock.monotonic_ns()
        while not lost.is_set():
            # A subscription the server dropped without a word (deleted, or a Publish
            # answered BadNoSubscription) sends neither data nor keep-alives: after two
            # keep-alive periods (asyncua's is_stale) the session ends and subscribes anew.
            if self._sub is not None and self._sub.is_stale(2.0):
                log.warning("opcua_subscription_silent", source=self.name)
                self.stats.lost += 1
                return
            due += period
            now = self.clock.monotonic_ns()
            if due < now:  # late (a long pause): skip ahead on the grid, never drift
                due = now - (now - due) % period + period
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), (due - now) / 1e9)
            if self._dirty:
                self._emit(sink)

    def _emit(self, sink: Sink) -> None:
        self._dirty = False
        now = self.clock.time_ns()
        quality = Quality.GOOD
        # The newest SourceTimestamp of the changes since the last row: a channel that
        # has not changed must not hold the row's time (one stamped 2099 pinned every row)
        changed = self._source_ns[self._changed]
        self._changed[:] = False
        t = int(changed.max()) if changed.size else 0
        if t and abs(t - now) > _CLOCK_TOLERANCE_NS:
            # the server's clock is off: the time of receipt, said once per source
            if not self._clock_warned:
                self._clock_warned = True
                log.warning("opcua_clock_off", source=self.name,
                            offset_s=round((t - now) / 1e9, 1))  # fmt: skip
            t = 0
        if t == 0:
            t, quality = now, Quality.RECEIPT_TIME
        # never back in time: a late change of an older sample joins the newest row time
        t = self._last_t = max(t, self._last_t)
        updated = self._updated_ns
        # A channel the server does not re-stamp (or behind a deadband) is quiet while its
        # value holds: it is as fresh as the newest notification of the subscription.
        quiet = (updated > 0) & (~self._restamped | (self.config.deadband > 0))
        updated = np.where(quiet, updated.max(), updated)
        stale = (updated == 0) | (now - updated > self.config.stale_ns)
        if stale.any():
            quality |= Quality.STALE
            self.stats.stale_rows += 1
        if self._bad.any():
            quality |= Quality.DEVICE_ERROR
        if np.isnan(self._values).all():
            quality |= Quality.INVALID
        self.stats.rows += 1
        batch = SampleBatch(
            self.info.stream,
            np.array([t], dtype=np.int64),
            self._values.copy().reshape(1, -1),
            np.array([int(quality)], dtype=np.uint16),
            device_time=not quality & Quality.RECEIPT_TIME,
        )
        sink.on_batch(batch)

    def _status(self, kind: StatusKind, detail: str) -> SourceStatus:
        return SourceStatus(self.name, self.info.stream, kind, self.clock.time_ns(), detail)


# A SourceTimestamp further than this from the time of receipt is a wrong server clock
_CLOCK_TOLERANCE_NS = 60 * 1_000_000_000
# Monitored items per CreateMonitoredItems call: servers limit it (OperationLimits,
# MaxMonitoredItemsPerCall, OPC 10000-5 6.3.11), small ones to a few dozen.
_PER_CALL = 50
# Item results that mean "not with this filter": the items are monitored again without.
_FILTER_REFUSED = frozenset(
    {
        "BadFilterNotAllowed",
        "BadMonitoredItemFilterUnsupported",
        "BadMonitoredItemFilterInvalid",
        "BadDeadbandFilterInvalid",
    }
)
# A keep-alive at least this often when nothing changes (OPC 10000-4 5.13.1): a silent
# subscription is then noticed within two of them (``OpcuaSource._sample``).
KEEPALIVE_S = 2.0


def _subscription_parameters(cfg: OpcuaConfig) -> ua.CreateSubscriptionParameters:
    """The publishing interval, a keep-alive every ``KEEPALIVE_S`` (asyncua's default
    count, thousands of intervals, left a dropped subscription unnoticed for minutes) and
    a lifetime of ten keep-alives (the spec asks for at least three)."""
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = cfg.publishing_interval_ms
    keepalive = max(1, math.ceil(KEEPALIVE_S * 1000.0 / cfg.publishing_interval_ms))
    params.RequestedMaxKeepAliveCount = keepalive
    params.RequestedLifetimeCount = 10 * keepalive
    params.MaxNotificationsPerPublish = 10000
    params.PublishingEnabled = True
    params.Priority = 0
    return params


def _number(val: Any) -> float:
    """A Variant's value as a float: numbers and Booleans (0/1) and numeric text are
    taken; anything else is NaN."""
    try:
        return float(val)
    except (TypeError, ValueError):
        return np.nan


def _is_nan(val: Any) -> bool:
    """Whether ``val`` is a float NaN the server sent as such (an absent measurement)."""
    return isinstance(val, float) and math.isnan(val)
