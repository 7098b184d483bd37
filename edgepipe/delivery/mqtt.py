"""MQTT v5 publisher of alerts (paho-mqtt 2.x, QoS 1).

The publisher hands over one message and reports its acknowledgement; it never queues
or retries. Store-and-forward (the durable outbox) and broker failover live above it and
call :meth:`MqttPublisher.publish_alert` until it returns. A retry may deliver a message
twice, which the alert contract allows: subscribers deduplicate by (id, state).

paho keeps unacknowledged QoS 1 messages in memory only, and ``wait_for_publish()`` raises
at once while disconnected, so acknowledgements are tracked here: one future per packet
identifier (mid), resolved from ``on_publish`` (PUBACK, MQTT 5.0 §3.4) and failed on
disconnect or timeout, removed in ``finally``.
"""

from __future__ import annotations

__all__ = ["BrokerConfig", "MqttPublisher", "TlsConfig"]

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgepipe.core import Alert, Clock, DeliveryError
from edgepipe.delivery._paho import PahoConnection
from edgepipe.delivery.config import BrokerConfig, TlsConfig
from edgepipe.delivery.message import CONTENT_TYPE, SCHEMA_VERSION, alert_to_json, status_to_json
from edgepipe.delivery.topics import (
    REPLAY_ROOT,
    ROOT,
    alert_topic,
    sanitize_segment,
    status_topic,
)

_log = structlog.get_logger()

QOS_AT_LEAST_ONCE = 1


class _FixedProperties(Properties):
    """Properties that never change once built, packed once.

    paho packs the properties of every PUBLISH anew, and building and packing them costs
    more than the rest of a publish; every message of ours carries the same ones.
    """

    _packed: bytes | None = None

    def pack(self) -> bytes:
        if self._packed is None:
            object.__setattr__(self, "_packed", super().pack())  # type: ignore[no-untyped-call]
        assert self._packed is not None
        return self._packed


@functools.cache
def _properties(packet: int) -> Properties:
    """PUBLISH/Will properties (MQTT 5.0 §3.3.2.3): UTF-8 JSON, schema version.

    No Message Expiry Interval: a retained alert state must outlive any outage. Shared by
    every message: paho only reads them.
    """
    props = _FixedProperties(packet)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
    props.PayloadFormatIndicator = 1  # §3.3.2.3.2: the payload is UTF-8
    props.ContentType = CONTENT_TYPE
    props.UserProperty = [("schema_version", SCHEMA_VERSION)]
    return props


# packed with its length prefix (paho leaves pack() unannotated)
_PUBLISH_PROPERTIES = len(_properties(PacketTypes.PUBLISH).pack())  # type: ignore[no-untyped-call]


def _packet_size(topic: str, payload: bytes) -> int:
    """Bytes of a QoS 1 PUBLISH of ``payload`` to ``topic`` with our properties (MQTT 5.0
    §3.3): fixed header (1 + up to 4 length bytes), topic, packet id, properties."""
    rest = 2 + len(topic.encode()) + 2 + _PUBLISH_PROPERTIES + len(payload)
    length_bytes = 1 if rest < 128 else 2 if rest < 16_384 else 3 if rest < 2_097_152 else 4
    return 1 + length_bytes + rest


#: Called with None on PUBACK, or with the error that ended the wait.
AckCallback = Callable[[DeliveryError | None], None]


def _settle(fut: asyncio.Future[None], error: DeliveryError | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


class MqttPublisher(PahoConnection):
    """Publishes a site's alerts and its retained online/offline status to one broker."""

    def __init__(
        self, config: BrokerConfig, site: str, clock: Clock, *, replay: bool = False
    ) -> None:
        client_id = config.client_id or f"edgepipe-{sanitize_segment(site)}"
        if replay:
            # its own session: the live service's id would knock it off the broker
            # (MQTT 5.0 §3.1.4: a second connection with one client id ends the first)
            client_id = f"{client_id}-replay-{os.getpid()}"
        super().__init__(config, client_id)
        self.site = site
        self.root = REPLAY_ROOT if replay else ROOT
        self.status_topic = status_topic(site, self.root)
        self._clock = clock
        self._pending: dict[int, AckCallback] = {}
        # PUBACKs cross from paho's thread in batches: one loop wake-up per batch, not per
        # message, is what lets a backlog drain at thousands of messages per second.
        self._acks: list[tuple[int, bool, str]] = []
        self._acks_lock = threading.Lock()
        self._acks_scheduled = False
        self.published = 0  # PUBACKs received for alerts and status
        self.failed = 0  # publishes that raised DeliveryError

    async def start(self) -> None:
        """Connect and wait for CONNACK (``DeliveryError`` on refusal or timeout).

        The Will is "offline" retained; after every CONNACK the publisher sends a retained
        "online" birth. paho reconnects on its own after a connection loss.
        """
        await self._open()

    async def close(self) -> None:
        """Publish "offline" retained, then disconnect normally (the Will is discarded)."""
        if self.connected:
            try:
                await self.publish_status("offline")
            except DeliveryError as exc:
                _log.warning("mqtt.offline_status_failed", broker=self.where, error=str(exc))
        await self._close()

    async def __aenter__(self) -> MqttPublisher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def publish_alert(self, alert: Alert) -> None:
        """Publish retained at QoS 1; return when the broker's PUBACK arrives.

        Raises ``DeliveryError`` when not connected, on disconnect before the PUBACK, on a
        PUBACK reason code >= 0x80, or after ``ack_timeout_s``.
        """
        topic = alert_topic(alert.site, alert.asset, alert.kind, self.root)
        await self._publish(topic, alert_to_json(alert), retain=True)

    async def publish_status(self, state: str, detail: Mapping[str, Any] | None = None) -> None:
        """Publish the retained status of this site ("online", "offline", "degraded"...)."""
        payload = status_to_json(self.site, state, self.client_id, self._clock.time_ns(), detail)
        await self._publish(self.status_topic, payload, retain=True)

    # -- internals ------------------------------------------------------------------
    def _configure(self, client: mqtt.Client) -> None:
        # MQTT 5.0 §3.1.2.5: the broker publishes the Will when the connection drops
        # without a DISCONNECT (crash, SIGKILL, power or network loss).
        will = status_to_json(self.site, "offline", self.client_id, detail={"reason": "lost"})
        client.will_set(
            self.status_topic,
            will,
            qos=QOS_AT_LEAST_ONCE,
            retain=True,
            properties=_properties(PacketTypes.WILLMESSAGE),
        )
        client.on_publish = self._paho_on_publish

    def _on_connect_thread(self, client: mqtt.Client) -> None:
        # After a crash the broker has retained "offline" (the Will): say "online" again on
        # every (re)connect. Sent from paho's thread so it precedes any queued alert.
        payload = status_to_json(self.site, "online", self.client_id, self._clock.time_ns())
        client.publish(
            self.status_topic,
            payload,
            qos=QOS_AT_LEAST_ONCE,
            retain=True,
            properties=_properties(PacketTypes.PUBLISH),
        )

    def _paho_on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _props: Properties,
    ) -> None:
        failure = reason.is_failure
        with self._acks_lock:
            self._acks.append((mid, failure, str(reason) if failure else ""))
            if self._acks_scheduled:
                return
            self._acks_scheduled = True
        self._call(self._drain_acks)

    def _drain_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
            self._acks_scheduled = False
        for mid, failure, reason in acks:
            self._acked(mid, failure, reason)

    def _acked(self, mid: int, failure: bool, reason: str) -> None:
        done = self._pending.pop(mid, None)
        if done is None:
            return  # the birth message, or a publish the caller gave up on
        done(DeliveryError(f"broker {self.where} rejected message: {reason}") if failure else None)

    def _on_disconnect_loop(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for mid, done in pending.items():
            done(
                DeliveryError(
                    f"connection to MQTT broker {self.where} lost before PUBACK "
                    f"of mid {mid}: {reason}"
                )
            )

    async def _publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        try:
            await self._publish_once(topic, payload, retain)
        except DeliveryError as exc:
            self.failed += 1
            _log.warning("mqtt.publish_failed", broker=self.where, topic=topic, error=str(exc))
            raise
        self.published += 1

    def publish_then(self, topic: str, payload: bytes, *, retain: bool, done: AckCallback) -> int:
        """Hand one QoS 1 PUBLISH to the connection; ``done(None)`` on its PUBACK.

        ``done`` gets a ``DeliveryError`` instead on disconnect or a rejecting reason code;
        it is called in the event loop, exactly once, unless :meth:`forget` comes first.
        There is no deadline here (the caller keeps one). Calls made in a row go out in
        that order on the one connection (MQTT 5.0 §4.6), which is how the forwarder keeps
        many messages in flight and still in order. Returns the packet identifier.
        Raises ``DeliveryError`` at once when not connected.
        """
        client = self._client
        if client is None or not self.connected:
            # Do not hand it to paho: its offline queue is memory-only and unbounded; the
            # caller's outbox keeps the message and retries.
            raise DeliveryError(f"not connected to MQTT broker {self.where}")
        size = _packet_size(topic, payload)
        if self.max_packet_size is not None and size > self.max_packet_size:
            # Sent, it would make the broker close the connection, again after every
            # reconnect (MQTT 5.0 §3.2.2.3.6); said plainly, and the caller holds off.
            raise DeliveryError(
                f"broker {self.where} rejected message: {size} bytes to {topic} is over its "
                f"maximum packet size of {self.max_packet_size} (mosquitto: max_packet_size)"
            )
        info = client.publish(
            topic,
            payload,
            qos=QOS_AT_LEAST_ONCE,
            retain=retain,
            properties=_properties(PacketTypes.PUBLISH),
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeliveryError(
                f"publish to {topic} via {self.where} failed: {mqtt.error_string(info.rc)}"
            )
        # on_publish reaches this loop through call_soon_threadsafe, so it cannot run
        # before ``done`` is registered: there is no await in between.
        self._pending[info.mid] = done
        return info.mid

    def forget(self, mid: int) -> None:
        """Stop waiting for the PUBACK of ``mid`` (its ``done`` will not be called)."""
        self._pending.pop(mid, None)

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool) -> asyncio.Future[None]:
        """:meth:`publish_then` as a future; cancelling it forgets the message."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mid = self.publish_then(topic, payload, retain=retain, done=functools.partial(_settle, fut))
        fut.add_done_callback(lambda f: self.forget(mid) if f.cancelled() else None)
        return fut

    async def _publish_once(self, topic: str, payload: bytes, retain: bool) -> None:
        fut = self.publish_nowait(topic, payload, retain=retain)
        try:
            async with asyncio.timeout(self.config.ack_timeout_s):
                await fut
        except TimeoutError:
            raise DeliveryError(
                f"no PUBACK from MQTT broker {self.where} for {topic} "
                f"within {self.config.ack_timeout_s} s"
            ) from None
        finally:
            fut.cancel()
