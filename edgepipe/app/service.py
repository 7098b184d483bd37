"""`edgepipe run`: sources -> pipeline -> outbox -> MQTT (local first), until told to stop."""

from __future__ import annotations

__all__ = ["Service"]

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from edgepipe.app.config import AppConfig
from edgepipe.app.delivery import AlertDelivery
from edgepipe.app.pipeline import Pipeline, build_detectors
from edgepipe.app.supervisor import SourceSupervisor
from edgepipe.core import Clock
from edgepipe.core.source import Sink
from edgepipe.delivery.asset_health import asset_health_to_json, asset_health_topic

if TYPE_CHECKING:
    from edgepipe.capture import Recorder

log = structlog.get_logger("edgepipe.service")

#: How long a clean stop waits for pending alerts to reach the broker.
DRAIN_S = 3.0


class Service:
    """Everything `edgepipe run` starts, owned in one place so it stops in one place."""

    def __init__(self, config: AppConfig, clock: Clock, stdout: TextIO | None = None) -> None:
        self.config = config
        detectors, self.models = build_detectors(config)
        self.relay = AlertDelivery(config, clock, stdout)
        self.pipeline = Pipeline(config, detectors, self.relay.submit)
        self.pipeline.router.on_health = self._asset_health
        self.recorder = _recorder(config, clock, self.pipeline)
        self._sink: Sink = self.recorder or self.pipeline
        self.supervisor = SourceSupervisor(self._sink, clock)
        self.supervisor.build(config.sources)

    def _asset_health(self, asset: str, body: Mapping[str, Any]) -> None:
        """The periodic health index of an asset, retained on edgepipe/<site>/health/<asset>."""
        forwarder = self.relay.forwarder
        if forwarder is not None:
            topic = asset_health_topic(self.config.site, asset)
            payload = asset_health_to_json(self.config.site, asset, body)
            forwarder.submit_retained(topic, payload, f"health:{asset}")

    async def run(self, started: asyncio.Event | None = None) -> None:
        """Run until cancelled; on cancellation stop the sources, then drain and close."""
        log.info(
            "service_starting",
            site=self.config.site,
            sources=list(self.supervisor.sources),
            models=[m.current.ref for m in self.models],
        )
        relay = asyncio.create_task(self.relay.run(), name="relay")
        recording = (
            asyncio.create_task(self.recorder.run(), name="capture") if self.recorder else None
        )
        self.supervisor.start()
        if started is not None:
            started.set()
        try:
            await asyncio.Event().wait()  # until cancelled (SIGTERM, SIGINT, a test)
        finally:
            # Sources send TURN_OFF as they are cancelled.
            await self.supervisor.stop()
            self.pipeline.finish()
            if recording is not None:
                recording.cancel()  # closes the open segments
                await asyncio.gather(recording, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                drained = await asyncio.shield(self.relay.drain(DRAIN_S))
                if not drained:
                    log.error("alerts_undelivered_at_stop", pending=self.relay.pending)
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
            await self.relay.close()
            stats = self.pipeline.stats
            log.info(
                "service_stopped",
                rows=stats.rows,
                windows=stats.windows,
                evaluations=stats.evaluations,
                alerts=stats.alerts,
                alerts_dropped=self.relay.dropped,
            )


_SECRET_WORDS = ("password", "secret", "token", "key")


def _recorder(config: AppConfig, clock: Clock, pipeline: Sink) -> Recorder | None:
    """The ``[capture]`` tap in front of the pipeline; source configs go into the
    capture's metadata, without anything that looks like a secret."""
    if config.capture is None:
        return None
    from edgepipe.capture import CaptureWriter, Recorder  # noqa: PLC0415 - pyarrow, on use

    sources = {
        s.name: {"type": s.type}
        | {k: v for k, v in s.options.items() if not any(w in k.lower() for w in _SECRET_WORDS)}
        for s in config.sources
    }
    writer = CaptureWriter(config.capture, clock, config.site, sources)
    return Recorder(pipeline, writer, clock)
