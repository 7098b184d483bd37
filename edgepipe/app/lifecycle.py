"""The service's life under systemd: READY, STATUS, WATCHDOG, RELOADING, STOPPING, and
SIGHUP reloads that keep the streams running.

The watchdog is fed from the pipeline's progress, not by a bare timer: a ping goes out
only when the event loop runs (a blocked stage blocks it) *and* no due window has waited
longer than ``stall_limit_s`` for evaluation.
"""

from __future__ import annotations

__all__ = ["Runtime"]

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry

from edgepipe.app.config import load_config
from edgepipe.app.health import HealthReport, check_health
from edgepipe.app.http import HttpEndpoint
from edgepipe.app.metrics import ServiceCollector
from edgepipe.app.pipeline import build_detectors
from edgepipe.app.systemd import Notifier, watchdog_interval_s
from edgepipe.core import ConfigError, ModelError

if TYPE_CHECKING:
    from edgepipe.app.service import Service

log = structlog.get_logger("edgepipe.lifecycle")

#: Sections a reload cannot apply to a running service; a change is logged, not applied.
_RESTART_ONLY = ("site", "mqtt", "delivery", "capture", "logging", "service")


class Runtime:
    """Runs a ``Service`` the way systemd expects, with /metrics, /healthz and reload."""

    def __init__(self, service: Service, notifier: Notifier | None = None) -> None:
        self.service = service
        self.notifier = notifier or Notifier()
        self.last_reload_error = ""
        self.reloads = 0
        self.http: HttpEndpoint | None = None
        self.registry = CollectorRegistry()
        self.registry.register(ServiceCollector(service))

    def health(self) -> HealthReport:
        return check_health(self, self.service.config.service.stall_limit_s)

    async def run(self, started: asyncio.Event | None = None) -> None:
        """Until cancelled: READY once running, STATUS and WATCHDOG while running,
        RELOADING on SIGHUP, STOPPING when told to stop."""
        svc = self.service
        address = svc.config.service.metrics_address
        if address is not None:
            self.http = HttpEndpoint(address[0], address[1], self.registry, self.health)
            await self.http.start()
        running = asyncio.Event()
        main = asyncio.create_task(svc.run(running), name="service")
        helpers: list[asyncio.Task[object]] = []
        loop = asyncio.get_running_loop()
        hup = _on_sighup(loop, lambda: helpers.append(asyncio.create_task(self.reload())))
        try:
            await running.wait()
            self.notifier.ready(status_line(self))
            interval = watchdog_interval_s()
            if interval is not None:
                helpers.append(asyncio.create_task(self._watchdog(interval)))
            helpers.append(asyncio.create_task(self._status(svc.config.service.status_interval_s)))
            if started is not None:
                started.set()
            await main
        finally:
            self.notifier.stopping()
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            for task in helpers:
                task.cancel()
            main.cancel()
            await asyncio.gather(main, *helpers, return_exceptions=True)
            if self.http is not None:
                await self.http.close()

    async def _watchdog(self, interval_s: float) -> None:
        fed = True
        while True:
            await asyncio.sleep(interval_s)
            stalled = self.service.pipeline.stalled_for()
            if stalled > self.service.config.service.stall_limit_s:
                if fed:
                    log.error("watchdog_withheld", stalled_s=round(stalled, 3))
                fed = False
                continue
            fed = True
            self.notifier.watchdog()

    async def _status(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.notifier.status(status_line(self))

    async def reload(self) -> bool:
        """Re-read the config file; apply it if every check passes, else keep running."""
        svc = self.service
        self.notifier.reloading()
        path = svc.config.path
        try:
            if not path:
                raise ConfigError("this service was not started from a config file")
            new = load_config(path)
            detectors, models = build_detectors(new)
            anomaly = svc.pipeline.router.anomaly_store
            if anomaly is not None:
                anomaly.reload()  # swaps only if the new file passes; else keeps the old
            started = await svc.supervisor.apply(new.sources)
        except (ConfigError, ModelError) as exc:
            self.last_reload_error = str(exc)
            issues = [str(i) for i in exc.issues] if isinstance(exc, ConfigError) else [str(exc)]
            log.error("reload_refused", path=path, problems=issues)
            self.notifier.reloaded(f"reload refused, previous config kept: {issues[0]}")
            return False
        except Exception as exc:  # a bug must not end the reload silently: say it, keep running
            self.last_reload_error = f"{type(exc).__name__}: {exc}"
            log.exception("reload_failed", path=path)
            self.notifier.reloaded(f"reload failed, previous config kept: {exc}")
            return False
        ignored = [k for k in _RESTART_ONLY if getattr(new, k) != getattr(svc.config, k)]
        if ignored:
            log.warning("reload_needs_restart", sections=ignored)
        svc.pipeline.reconfigure(new, detectors)
        svc.models = models
        svc.config = new
        self.last_reload_error = ""
        self.reloads += 1
        models_now = [m.current.ref for m in models]
        log.info("config_reloaded", path=path, started_sources=started, models=models_now)
        self.notifier.reloaded(status_line(self))
        return True


def status_line(runtime: Runtime) -> str:
    svc = runtime.service
    p = svc.pipeline
    down = sum(1 for s in p.stream_state.values() if s.kind.value in ("quiet", "disconnected"))
    streams = len(p.windows.statistics())
    return (
        f"{streams} stream(s), {down} down; {p.stats.windows} windows, "
        f"{p.stats.alerts} alerts; {svc.relay.pending} pending delivery"
    )


def _on_sighup(loop: asyncio.AbstractEventLoop, callback: object) -> bool:
    """Install the SIGHUP handler where signals can be handled (the main thread)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, callback)  # type: ignore[arg-type]
        return True
    return False
