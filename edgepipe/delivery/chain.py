"""The failover chain: MQTT destinations in priority order, local broker first.

A destination is usable when its connection is up and it is not held down. It is held
down for ``down_hold_s`` after it missed a PUBACK deadline or rejected a message (a
broker that accepts connections but does not acknowledge is as good as dead); the hold
doubles while it keeps failing (at most 30 s) and resets on its next acknowledgement.
"""

from __future__ import annotations

__all__ = ["Destination", "DestinationChain"]

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from edgepipe.core import Clock, ConfigError, DeliveryError
from edgepipe.delivery.mqtt import MqttPublisher

_log = structlog.get_logger()
_NS = 1_000_000_000
MAX_HOLD_S = 30.0


@dataclass(frozen=True, slots=True)
class Destination:
    """One broker of the chain, named for logs and the status message."""

    name: str
    publisher: MqttPublisher


class DestinationChain:
    """Which destination to use now, and the connections' lifecycle."""

    def __init__(self, destinations: Sequence[Destination], clock: Clock, down_hold_s: float):
        self.destinations = tuple(destinations)
        self._clock = clock
        self._base_hold_s = down_hold_s
        self._hold_until = [0] * len(self.destinations)
        self._hold_s = [down_hold_s] * len(self.destinations)
        self.changed = asyncio.Event()  # set when a destination (re)connects

    def __len__(self) -> int:
        return len(self.destinations)

    def __getitem__(self, i: int) -> Destination:
        return self.destinations[i]

    def pick(self) -> int | None:
        """Index of the first destination that is connected and not held down."""
        now = self._clock.monotonic_ns()
        for i, d in enumerate(self.destinations):
            if d.publisher.connected and now >= self._hold_until[i]:
                return i
        return None

    def hold(self, i: int, reason: str) -> None:
        """Take destination ``i`` out of the chain for a while."""
        self._hold_until[i] = self._clock.monotonic_ns() + int(self._hold_s[i] * _NS)
        _log.warning("destination_down", destination=self.destinations[i].name,
                     reason=reason, hold_s=self._hold_s[i])  # fmt: skip
        self._hold_s[i] = min(self._hold_s[i] * 2, MAX_HOLD_S)

    def healthy(self, i: int) -> None:
        """Destination ``i`` acknowledged a message: its next hold starts short again."""
        self._hold_s[i] = self._base_hold_s

    async def connect_all(self) -> None:
        """First connection of each destination, retried; then paho reconnects by itself."""
        await asyncio.gather(*(self._connect(d) for d in self.destinations))

    async def _connect(self, dest: Destination) -> None:
        delay = dest.publisher.config.reconnect_min_s
        while True:
            try:
                await dest.publisher.start()
                self.changed.set()
                return
            except ConfigError as exc:
                _log.error("destination_misconfigured", destination=dest.name, error=str(exc))
                return
            except DeliveryError as exc:
                _log.warning("destination_unavailable", destination=dest.name,
                             error=str(exc), retry_s=delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, dest.publisher.config.reconnect_max_s)

    async def publish_status(self, detail: Mapping[str, Any]) -> None:
        """Retained "online" status with ``detail`` on every connected destination."""
        for d in self.destinations:
            if d.publisher.connected:
                with contextlib.suppress(DeliveryError):
                    await d.publisher.publish_status("online", detail)

    async def close(self) -> None:
        """Close every connection; each says "offline" first (retained)."""
        for d in self.destinations:
            await d.publisher.close()
