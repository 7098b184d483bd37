"""`edgepipe replay CAPTURE`: a capture through the same ``Pipeline`` on a virtual clock.

The capture's rows go back in the order the live pipeline saw them (the capture-wide
batch sequence numbers), tick by tick of event time; the virtual clock follows event
time, so the alert engine, which reads event time only, gives the alerts of the live
run, ids included. Consecutive rows of one stream are handed over in chunks no larger
than the ring can hold beside a window (``capacity - length``): the windows, hence the
scores and alerts, are those of the row-by-row live feed.
"""

from __future__ import annotations

__all__ = ["ReplayOptions", "ReplayResult", "replay_capture", "run_replay"]

import asyncio
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
import structlog

from edgepipe.app.config import AppConfig
from edgepipe.app.pipeline import Pipeline, build_detectors
from edgepipe.app.relay import AlertRelay
from edgepipe.capture import Capture, Part
from edgepipe.core import Alert, SampleBatch, SystemClock, VirtualClock
from edgepipe.core.source import Sink
from edgepipe.delivery import MqttPublisher

log = structlog.get_logger("edgepipe.replay")
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """``speed``: times real time, None = as fast as possible; ``from_ns``/``to_ns``:
    event-time range kept; ``tick_ns``: event time handed over per step."""

    speed: float | None = None
    from_ns: int | None = None
    to_ns: int | None = None
    tick_ns: int = _NS


@dataclass(slots=True)
class ReplayResult:
    alerts: list[Alert] = field(default_factory=list)
    rows: int = 0
    batches: int = 0
    start_ns: int = 0
    end_ns: int = 0
    # moments scored without a PMU later than [windows] site_hold_ms (site-context model)
    site_released_late: int = 0


def _clip(part: Part, lo: int | None, hi: int | None) -> Part | None:
    keep = np.ones(len(part), dtype=np.bool_)
    if lo is not None:
        keep &= part.times_ns >= lo
    if hi is not None:
        keep &= part.times_ns <= hi
    if not keep.any():
        return None
    if keep.all():
        return part
    return Part(part.info, part.times_ns[keep], part.values[keep], part.quality[keep],
                part.seq[keep], part.device[keep], part.segments)  # fmt: skip


@dataclass(slots=True)
class _Cursor:
    part: Part
    horizon: np.ndarray  # running max of event time: rows are cut by arrival order
    pos: int = 0
    announced: bool = False


Progress = Callable[[float], None]


async def replay_capture(
    capture: Capture,
    pipeline: Sink,
    clock: VirtualClock,
    options: ReplayOptions,
    progress: Progress | None = None,
) -> ReplayResult:
    """Feed ``capture`` to ``pipeline`` (the ``Pipeline``, or any ``Sink``); must run
    inside an event loop: the pipeline's batched flush runs between ticks."""
    result = ReplayResult()
    parts = [p for p in (_clip(p, options.from_ns, options.to_ns) for p in capture.parts) if p]
    if not parts:
        return result
    cursors = [_Cursor(p, np.maximum.accumulate(p.times_ns)) for p in parts]
    events = [
        e for e in capture.events
        if (options.from_ns is None or e.status.time_ns >= options.from_ns)
        and (options.to_ns is None or e.status.time_ns <= options.to_ns)
    ]  # fmt: skip
    t0 = min(int(p.times_ns.min()) for p in parts)
    t_end = max(int(p.times_ns.max()) for p in parts)
    result.start_ns, result.end_ns = t0, t_end
    chunk = _chunk_rows(pipeline)
    pacer, wall0 = SystemClock(), SystemClock().monotonic_ns()
    clock.advance_to(t0)
    tick, next_event = t0, 0
    while tick <= t_end:
        upto = tick + options.tick_ns
        steps: list[tuple[int, Callable[[], None]]] = []
        for c in cursors:
            _plan(c, upto, chunk=chunk, pipeline=pipeline, result=result, steps=steps)
        while next_event < len(events) and events[next_event].status.time_ns < upto:
            ev = events[next_event]
            next_event += 1
            steps.append((ev.seq, functools.partial(pipeline.on_status, ev.status)))
        for _, step in sorted(steps, key=lambda s: s[0]):
            step()
        clock.advance_to(upto)
        await asyncio.sleep(0)  # the pipeline's batched flush runs here
        if options.speed is not None:
            await pacer.sleep_until_ns(wall0 + int((upto - t0) / options.speed))
        if progress is not None:
            progress(min(1.0, (upto - t0) / max(1, t_end - t0)))
        tick = upto
    for ev in events[next_event:]:  # statuses after the last row (a source gone quiet)
        clock.advance_to(ev.status.time_ns)
        pipeline.on_status(ev.status)
    await asyncio.sleep(0)
    if isinstance(pipeline, Pipeline):
        pipeline.finish()
        result.site_released_late = pipeline.site_released_late
    return result


def _chunk_rows(sink: Sink) -> int:
    """Rows per batch that keep the windows of a row-by-row feed (module doc)."""
    if isinstance(sink, Pipeline):
        cfg = sink.windows.config
        return max(1, cfg.ring_capacity - cfg.length)
    return 1 << 30


def _plan(
    c: _Cursor,
    upto: int,
    *,
    chunk: int,
    pipeline: Sink,
    result: ReplayResult,
    steps: list[tuple[int, Callable[[], None]]],
) -> None:
    """Queue the rows of ``c`` whose running event time is before ``upto``, in chunks."""
    hi = int(np.searchsorted(c.horizon, upto, side="left"))
    p = c.part
    if hi <= c.pos:
        return
    if not c.announced:
        c.announced = True
        steps.append((int(p.seq[c.pos]) - 1, functools.partial(pipeline.on_stream, p.info)))
    for lo in range(c.pos, hi, chunk):
        end = min(hi, lo + chunk)
        batch = SampleBatch(p.info.stream, p.times_ns[lo:end], p.values[lo:end],
                            p.quality[lo:end], bool(p.device[lo]))  # fmt: skip
        result.rows += len(batch)
        result.batches += 1
        steps.append((int(p.seq[lo]), functools.partial(pipeline.on_batch, batch)))
    c.pos = hi


async def run_replay(
    capture: Capture,
    config: AppConfig,
    options: ReplayOptions,
    stdout: TextIO,
    progress: Progress | None = None,
) -> ReplayResult:
    """The command: alerts as JSON lines on ``stdout``, or to MQTT when ``config.mqtt``."""
    clock = VirtualClock()
    detectors, _ = build_detectors(config)
    publisher = (
        MqttPublisher(config.mqtt, config.site, SystemClock(), replay=True)
        if config.mqtt is not None
        else None
    )
    relay = AlertRelay(publisher, config.delivery, stdout if publisher is None else None)
    collected: list[Alert] = []

    def on_alert(alert: Alert) -> None:
        collected.append(alert)
        relay.submit(alert)

    pipeline = Pipeline(config, detectors, on_alert)
    delivery = asyncio.create_task(relay.run(), name="relay")
    try:
        result = await replay_capture(capture, pipeline, clock, options, progress)
        if publisher is not None and not await relay.drain(30.0):
            log.error("alerts_undelivered_at_stop", pending=relay.pending)
    finally:
        delivery.cancel()
        await asyncio.gather(delivery, return_exceptions=True)
        if publisher is not None:
            await publisher.close()
    result.alerts = collected
    log.info(
        "replay_done",
        rows=result.rows,
        batches=result.batches,
        alerts=len(collected),
        site_released_late=result.site_released_late,
    )
    return result


def terminal_progress(stream: TextIO = sys.stderr) -> Progress | None:
    """A progress bar on ``stream`` when it is a terminal, else nothing."""
    if not stream.isatty():
        return None
    last = [-1]

    def show(fraction: float) -> None:
        pct = int(fraction * 100)
        if pct == last[0]:
            return
        last[0] = pct
        bar = "#" * (pct // 2)
        stream.write(f"\rreplay [{bar:<50}] {pct:3d}%" + ("\n" if pct == 100 else ""))
        stream.flush()

    return show
