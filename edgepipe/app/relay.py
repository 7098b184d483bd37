"""Hands alerts from the pipeline to MQTT, in order, retrying until the broker acknowledges.

This is the seam the durable outbox replaces: today the backlog lives in memory, bounded
by ``[delivery] max_pending``; an overflow is counted and logged for every alert lost,
never silent.
"""

from __future__ import annotations

__all__ = ["AlertRelay", "RelayStats"]

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TextIO

import structlog

from edgepipe.app.config import DeliveryConfig
from edgepipe.core import Alert, DeliveryError
from edgepipe.delivery import MqttPublisher, alert_to_json

log = structlog.get_logger("edgepipe.delivery")


@dataclass(slots=True)
class RelayStats:
    queued: int = 0
    delivered: int = 0
    dropped: int = 0  # lost to the in-memory bound (design: counted, logged, visible)
    attempts_failed: int = 0


class AlertRelay:
    """Queue alerts (sync, from the pipeline) and deliver them (async task)."""

    def __init__(
        self,
        publisher: MqttPublisher | None,
        config: DeliveryConfig,
        stdout: TextIO | None = None,
    ) -> None:
        self._publisher = publisher
        self._config = config
        self._stdout = stdout
        self._pending: deque[Alert] = deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self.stats = RelayStats()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, alert: Alert) -> None:
        if self._stdout is not None:
            self._stdout.write(alert_to_json(alert).decode() + "\n")
            self._stdout.flush()
        if self._publisher is None:
            return
        if len(self._pending) >= self._config.max_pending:
            lost = self._pending.popleft()
            self.stats.dropped += 1
            log.error(
                "alert_dropped",
                id=lost.id,
                kind=lost.kind,
                asset=lost.asset,
                reason="max_pending reached",
                max_pending=self._config.max_pending,
            )
        self._pending.append(alert)
        self._empty.clear()
        self.stats.queued += 1
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; every alert in order, each until acknowledged."""
        if self._publisher is None:
            await asyncio.Event().wait()
            return
        await self._connect(self._publisher)
        while True:
            if not self._pending:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            alert = self._pending[0]
            try:
                await self._publisher.publish_alert(alert)
            except DeliveryError as exc:
                self.stats.attempts_failed += 1
                log.warning(
                    "alert_delivery_failed", id=alert.id, error=str(exc), pending=len(self._pending)
                )
                await asyncio.sleep(self._config.retry_s)
                continue
            self._pending.popleft()
            self.stats.delivered += 1

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the backlog to empty (used at shutdown)."""
        if self._pending and self._publisher is not None:
            try:
                await asyncio.wait_for(self._empty.wait(), timeout_s)
            except TimeoutError:
                return False
        return not self._pending

    async def _connect(self, publisher: MqttPublisher) -> None:
        while True:
            try:
                await publisher.start()
                return
            except DeliveryError as exc:
                log.warning("broker_unavailable", error=str(exc), retry_s=self._config.retry_s)
                await asyncio.sleep(self._config.retry_s)
