"""Alert delivery of the service: the pipeline's alerts into the outbox, out to MQTT.

The box's own broker (``[mqtt]``) first, then the ``[mqtt.regional.<name>]`` brokers in
the order written; the outbox (``[outbox]``) holds everything until a broker
acknowledges it. Without ``[mqtt]`` alerts are only printed (``--print-alerts``).
"""

from __future__ import annotations

__all__ = ["AlertDelivery"]

import asyncio
from collections.abc import Mapping
from typing import Any, TextIO

from edgepipe import __version__
from edgepipe.app.config import AppConfig
from edgepipe.core import Alert, Clock
from edgepipe.delivery import Destination, Forwarder, MqttPublisher, Outbox, alert_to_json

LOCAL = "local"


def destinations(config: AppConfig, clock: Clock) -> list[Destination]:
    """The failover chain in priority order."""
    if config.mqtt is None:
        return []
    chain = [Destination(LOCAL, MqttPublisher(config.mqtt, config.site, clock))]
    chain += [
        Destination(r.name, MqttPublisher(r.broker, config.site, clock)) for r in config.regional
    ]
    return chain


class AlertDelivery:
    """``submit`` (sync, from the pipeline), ``run`` (async), ``drain`` and ``close``."""

    def __init__(self, config: AppConfig, clock: Clock, stdout: TextIO | None = None) -> None:
        self._stdout = stdout
        chain = destinations(config, clock)
        self.forwarder: Forwarder | None = None
        if chain:
            self.forwarder = Forwarder(
                Outbox(config.outbox, clock),
                chain,
                config.outbox,
                config.site,
                clock,
                max_pending=config.delivery.max_pending,
            )

    def submit(self, alert: Alert) -> None:
        if self._stdout is not None:
            self._stdout.write(alert_to_json(alert).decode() + "\n")
            self._stdout.flush()
        if self.forwarder is not None:
            self.forwarder.submit_alert(alert)

    def health(self, kind: str, detail: Mapping[str, Any]) -> None:
        """A health event through the outbox (``edgepipe/<site>/health/<kind>``)."""
        if self.forwarder is not None:
            self.forwarder.submit_health(kind, detail)

    async def run(self) -> None:
        if self.forwarder is None:
            await asyncio.Event().wait()
            return
        self.health("service_started", {"version": __version__})
        await self.forwarder.run()

    async def drain(self, timeout_s: float) -> bool:
        return True if self.forwarder is None else await self.forwarder.drain(timeout_s)

    @property
    def pending(self) -> int:
        return 0 if self.forwarder is None else self.forwarder.pending

    @property
    def dropped(self) -> dict[str, int]:
        return {} if self.forwarder is None else dict(self.forwarder.outbox.stats.dropped)

    async def close(self) -> None:
        if self.forwarder is not None:
            await self.forwarder.close()
