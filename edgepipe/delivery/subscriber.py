"""Subscribers: what a broker delivers, as an async iterator (demo output, tests).

Messages travel from paho's thread into a bounded queue; when the consumer falls behind,
the newest messages are dropped and counted in ``dropped`` (a subscriber is a viewer: the
broker's retained messages still hold every alert key's current state).
"""

from __future__ import annotations

__all__ = ["AlertSubscriber", "MessageSubscriber", "ReceivedAlert", "ReceivedMessage"]

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgepipe.core import Alert, DeliveryError, ProtocolError
from edgepipe.delivery._paho import PahoConnection
from edgepipe.delivery.config import BrokerConfig
from edgepipe.delivery.message import alert_from_json
from edgepipe.delivery.topics import ROOT, sanitize_segment

_log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One PUBLISH as delivered. ``retain`` is set for a stored message sent on subscribe."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    content_type: str = ""
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    alert: Alert
    message: ReceivedMessage


class MessageSubscriber(PahoConnection):
    """Subscribes to topic filters at QoS 1; ``async for msg in sub`` yields messages."""

    def __init__(
        self,
        config: BrokerConfig,
        topic_filters: Sequence[str],
        capacity: int = 1024,
        session_expiry_s: int = 0,
    ) -> None:
        super().__init__(config, config.client_id or f"edgepipe-sub-{uuid.uuid4().hex[:12]}")
        self.topic_filters = tuple(topic_filters)
        # > 0 with a fixed client_id: the broker keeps the subscription and queues QoS 1
        # messages while this subscriber is away (MQTT 5.0 §3.1.2.11.2).
        self.session_expiry_s = session_expiry_s
        self._queue: asyncio.Queue[ReceivedMessage] = asyncio.Queue(capacity)
        self._suback: asyncio.Future[None] | None = None
        self.dropped = 0

    async def start(self) -> None:
        """Connect and return once the broker granted every subscription (SUBACK)."""
        self._suback = asyncio.get_running_loop().create_future()
        await self._open()
        try:
            async with asyncio.timeout(self.config.ack_timeout_s):
                await self._suback
        except (TimeoutError, DeliveryError) as exc:
            await self._close()
            if isinstance(exc, DeliveryError):
                raise
            raise DeliveryError(f"no SUBACK from MQTT broker {self.where}") from None

    async def close(self) -> None:
        await self._close()

    async def __aenter__(self) -> MessageSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def receive(self, timeout_s: float | None = None) -> ReceivedMessage:
        """The next message; ``DeliveryError`` if none arrives within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._queue.get()
        except TimeoutError:
            raise DeliveryError(
                f"no message on {self.topic_filters} within {timeout_s} s"
            ) from None

    def __aiter__(self) -> MessageSubscriber:
        return self

    async def __anext__(self) -> ReceivedMessage:
        return await self.receive()

    def statistics(self) -> dict[str, int]:
        return {
            "used": self._queue.qsize(),
            "capacity": self._queue.maxsize,
            "dropped": self.dropped,
        }

    # -- paho thread -----------------------------------------------------------------
    def _connect_properties(self) -> Properties | None:
        if self.session_expiry_s <= 0:
            return None
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        return props

    def _configure(self, client: mqtt.Client) -> None:
        client.on_message = self._paho_on_message
        client.on_subscribe = self._paho_on_subscribe

    def _on_connect_thread(self, client: mqtt.Client) -> None:
        # Sessions end with the connection (no Session Expiry), so subscribe on every connect.
        client.subscribe([(f, 1) for f in self.topic_filters])

    def _paho_on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        self._call(self._subscribed, refused)

    def _paho_on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        content_type = str(getattr(props, "ContentType", "")) if props else ""
        user = tuple(getattr(props, "UserProperty", ())) if props else ()
        received = ReceivedMessage(
            topic=msg.topic,
            payload=bytes(msg.payload),
            retain=bool(msg.retain),
            qos=int(msg.qos),
            content_type=content_type,
            user_properties=tuple((str(k), str(v)) for k, v in user),
        )
        self._call(self._enqueue, received)

    # -- loop ------------------------------------------------------------------------
    def _subscribed(self, refused: list[str]) -> None:
        if self._suback is None or self._suback.done():
            return
        if refused:
            self._suback.set_exception(
                DeliveryError(f"broker {self.where} refused subscription: {', '.join(refused)}")
            )
        else:
            self._suback.set_result(None)

    def _enqueue(self, msg: ReceivedMessage) -> None:
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.dropped += 1
            _log.warning("mqtt.subscriber_dropped", topic=msg.topic, dropped=self.dropped)


class AlertSubscriber:
    """Alerts of one site (``site=None``: every site) as an async iterator of ``Alert``.

    A message that is not a valid alert is logged (``mqtt.bad_alert``), counted in
    ``invalid`` and skipped: one bad publisher must not stop a dashboard.
    """

    def __init__(
        self,
        config: BrokerConfig,
        site: str | None = None,
        capacity: int = 1024,
        root: str = ROOT,
    ):
        """``root``: ``ROOT`` for the live alerts, ``REPLAY_ROOT`` for a replay's."""
        segment = "+" if site is None else sanitize_segment(site)
        topic = f"{root}/{segment}/alerts/#"
        self.messages = MessageSubscriber(config, [topic], capacity)
        self.invalid = 0

    async def start(self) -> None:
        await self.messages.start()

    async def close(self) -> None:
        await self.messages.close()

    async def __aenter__(self) -> AlertSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def receive(self, timeout_s: float | None = None) -> ReceivedAlert:
        """The next valid alert with its MQTT envelope (topic, retain flag)."""
        while True:
            msg = await self.messages.receive(timeout_s)
            try:
                return ReceivedAlert(alert_from_json(msg.payload), msg)
            except ProtocolError as exc:
                self.invalid += 1
                _log.warning("mqtt.bad_alert", topic=msg.topic, error=str(exc))

    def __aiter__(self) -> AlertSubscriber:
        return self

    async def __anext__(self) -> Alert:
        return (await self.receive()).alert
