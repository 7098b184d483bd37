"""A paho-mqtt client whose network thread reports into one asyncio loop.

paho runs its network loop in its own thread (``loop_start``) and calls back from there.
Every callback here only hands its arguments to the event loop with
``call_soon_threadsafe``; all state (futures, events) is touched by the loop alone, the way
aiomqtt wraps paho.
"""

from __future__ import annotations

__all__ = ["PahoConnection"]

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgepipe.core import ConfigError, DeliveryError
from edgepipe.delivery.config import BrokerConfig, credential_path

_log = structlog.get_logger()
_FAILURE_LOG_S = 30.0  # a reconnect that keeps failing is logged at most this often


class PahoConnection:
    """Owns one paho ``Client``: connect with CONNACK timeout, reconnect, clean close."""

    def __init__(self, config: BrokerConfig, client_id: str) -> None:
        self.config = config
        self.client_id = client_id
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[None] | None = None
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self.connects = 0  # CONNACKs accepted, reconnects included
        # The broker's Maximum Packet Size from its CONNACK (MQTT 5.0 §3.2.2.3.6): a
        # larger packet makes it close the connection, so it is refused before sending
        self.max_packet_size: int | None = None
        self.reconnect_failures = 0  # paho's reconnect attempts that failed since a CONNACK
        self._refused = False  # the last CONNACK refused the connection
        self._failure_logged = 0.0  # monotonic time of the last mqtt.reconnect_failed

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        # paho's is_connected() stays True for a while after a disconnect that the broker
        # or paho itself started (a refused packet, a protocol error): trusted alone, the
        # forwarder sent into a closed socket and failed at once, thousands of times a
        # second. Our own flag is cleared on the disconnect and set on the next CONNACK.
        return self._client is not None and self._connected.is_set() and self._client.is_connected()

    # -- hooks for subclasses -------------------------------------------------------
    def _configure(self, client: mqtt.Client) -> None:
        """Set the Will and the like before connecting (called in the loop thread)."""

    def _on_connect_thread(self, client: mqtt.Client) -> None:
        """Right after each accepted CONNACK, in paho's thread (birth, subscribe)."""

    def _on_disconnect_loop(self, reason: str) -> None:
        """After a disconnect, in the event loop (fail what waits on the connection)."""

    def _connect_properties(self) -> Properties | None:
        """CONNECT properties (MQTT 5.0 §3.1.2.11), e.g. a Session Expiry Interval."""
        return None

    # -- client construction --------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        if cfg.username is not None:
            password_file = cfg.password_file
            if cfg.password_credential is not None:
                password_file = credential_path(cfg.password_credential)
                if password_file is None:
                    raise ConfigError("systemd credential missing", key="password_credential")
            client.username_pw_set(cfg.username, _read_password(password_file))
        # No window in paho: it rescans every queued message on each PUBACK (O(n) per
        # acknowledgement). The caller bounds what is in flight (``max_inflight``).
        client.max_inflight_messages_set(0)
        if cfg.tls is not None:
            try:
                client.tls_set(
                    ca_certs=cfg.tls.ca_file,
                    certfile=cfg.tls.cert_file,
                    keyfile=cfg.tls.key_file,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load TLS files: {exc}", key="tls") from exc
            client.tls_insecure_set(cfg.tls.insecure)
        # Annotated int, but paho only multiplies and compares the delays: a sub-second
        # minimum lets a publisher come back quickly after a local broker restart.
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        client.connect_timeout = cfg.connect_timeout_s
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_connect_fail = self._paho_on_connect_fail
        return client

    # -- paho thread -> loop --------------------------------------------------------
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the check and the call
            return

    def _paho_on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._call(self._connack_refused, str(reason))
            return
        limit = getattr(_props, "MaximumPacketSize", None)
        self.max_packet_size = int(limit) if limit else None
        self._on_connect_thread(client)
        self._call(self._connack_accepted)

    def _paho_on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._call(self._disconnected, str(reason))

    def _paho_on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around a reconnect and keeps the
        # error to itself: a broker back with a certificate we do not trust, or a port
        # that now refuses, was otherwise silent behind one "Unspecified error".
        exc = sys.exc_info()[1]
        self._call(self._reconnect_failed, f"{type(exc).__name__}: {exc}" if exc else "")

    # -- loop side ------------------------------------------------------------------
    def _reconnect_failed(self, error: str) -> None:
        self.reconnect_failures += 1
        now = time.monotonic()
        if self.reconnect_failures == 1 or now - self._failure_logged >= _FAILURE_LOG_S:
            self._failure_logged = now
            _log.warning("mqtt.reconnect_failed", broker=self.where, error=error,
                         attempts=self.reconnect_failures)  # fmt: skip

    def _connack_accepted(self) -> None:
        self.connects += 1
        self.reconnect_failures = 0
        self._refused = False
        self._connected.set()
        _log.info("mqtt.connected", broker=self.where, client_id=self.client_id, n=self.connects)
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(None)

    def _connack_refused(self, reason: str) -> None:
        self._refused = True  # the broker's close that follows is part of the refusal
        _log.warning("mqtt.connect_refused", broker=self.where, reason=reason)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(
                DeliveryError(f"MQTT broker {self.where} refused the connection: {reason}")
            )

    def _disconnected(self, reason: str) -> None:
        self._connected.clear()
        # A disconnect we asked for (close) is routine; any other one is worth a warning.
        log = _log.info if self._closing or self._refused else _log.warning
        log("mqtt.disconnected", broker=self.where, reason=reason)
        self._closed.set()
        self._on_disconnect_loop(reason)

    async def wait_connected(self, timeout_s: float) -> None:
        """Return once connected; ``DeliveryError`` if not within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                # paho's own state is the truth: the event may be stale while a disconnect
                # callback still waits in the loop's queue.
                while not self.connected:
                    self._connected.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._connected.wait()
        except TimeoutError:
            raise DeliveryError(
                f"not connected to MQTT broker {self.where} within {timeout_s} s"
            ) from None

    async def _open(self) -> mqtt.Client:
        if self._client is not None:
            raise DeliveryError(f"connection to {self.where} already started")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        client = self._new_client()
        self._configure(client)
        self._connack = self._loop.create_future()
        cfg = self.config
        try:
            # connect() resolves, opens the socket and does the TLS handshake: blocking work.
            await asyncio.to_thread(
                client.connect,
                cfg.host,
                cfg.port,
                cfg.keepalive,
                properties=self._connect_properties(),
            )
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"cannot connect to MQTT broker {self.where}: {exc}") from exc
        self._client = client
        client.loop_start()
        try:
            async with asyncio.timeout(cfg.connect_timeout_s):
                await self._connack
        except TimeoutError:
            await self._stop_thread()
            # a TLS-only listener takes the plain CONNECT for a bad handshake and says
            # nothing an MQTT client can read: the likeliest cause, named
            hint = "" if cfg.tls is not None else " (if that port expects TLS, set [mqtt.tls])"
            raise DeliveryError(
                f"no CONNACK from MQTT broker {self.where} within {cfg.connect_timeout_s} s{hint}"
            ) from None
        except DeliveryError:
            await self._stop_thread()
            raise
        return client

    async def _close(self) -> None:
        client = self._client
        if client is None:
            return
        self._closing = True
        if client.is_connected():
            self._closed.clear()
            # Reason 0x00: a normal disconnection, so the broker discards the Will (§3.14.2.1).
            client.disconnect(ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"))
            try:
                async with asyncio.timeout(self.config.ack_timeout_s):
                    await self._closed.wait()
            except TimeoutError:
                _log.warning("mqtt.disconnect_timeout", broker=self.where)
        await self._stop_thread()

    async def _stop_thread(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # Stops paho's reconnect attempts; once written, paho closes the socket.
            client.disconnect()
            # loop_stop() joins paho's thread, which may sit in a select() for a while.
            await asyncio.to_thread(client.loop_stop)
        self._connected.clear()
        self._on_disconnect_loop("closed")


def _read_password(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", key="password_file") from exc
