"""OPC-UA deadband against a real asyncua server on loopback.

What the adapter promises (OPC 10000-4 clause 7.22.2, OPC 10000-8 clause 7.2 for
percent): a change no larger than the band from the last value it accepted is not
passed on; a larger one is. What asyncua's server (2.1.0) does with the filter is
pinned too, because the adapter's client-side check exists for it: absolute bands are
applied against the previous *sample* (a drift of sub-band steps is never sent), and
percent bands are not applied at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from asyncua import ua

from adapters.c37118.testing import RecordingSink
from adapters.opcua.client import OpcuaSource
from adapters.opcua.config import parse_options
from adapters.opcua.simulator import OpcuaSimulator
from edgepipe.core import ConfigError, StatusKind, SystemClock
from edgepipe.delivery.broker import free_port

pytestmark = pytest.mark.integration

NAMES = ("H2", "CH4")


def _source(port: int, **opts: object) -> OpcuaSource:
    cfg = parse_options("dga", {
        "url": f"opc.tcp://127.0.0.1:{port}/", "publishing_interval_ms": 50,
        "sampling_interval_ms": 25, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5,
        "nodes": {"h2": "/Objects/2:DGA/2:H2", "ch4": "/Objects/2:DGA/2:CH4"}, **opts,
    })  # fmt: skip
    return OpcuaSource(cfg, SystemClock())


class Feed:
    """The simulator's values, changed by the test one written sample at a time."""

    def __init__(self, h2: float) -> None:
        self.now = {"H2": h2, "CH4": 7.0}
        self.sim: OpcuaSimulator | None = None

    def __call__(self, _t: float) -> dict[str, float]:
        return dict(self.now)

    async def write(self, h2: float, sink: RecordingSink, *, passes: bool) -> None:
        """Serve ``h2``; wait for it in a row if it should pass, else for two writes
        and two publishing intervals (it would have arrived by then)."""
        assert self.sim is not None
        self.now["H2"] = h2
        if passes:
            await sink.wait_for(lambda: h2 in seen_h2(sink), within_s=5)
            return
        n = self.sim.updates
        while self.sim.updates < n + 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)


def seen_h2(sink: RecordingSink) -> list[float]:
    """H2 values in rows, in order, repeats removed."""
    out: list[float] = []
    for b in sink.batches:
        v = float(b.values[0, 0])
        if not out or out[-1] != v:
            out.append(v)
    return out


@contextlib.asynccontextmanager
async def serving(feed: Feed, port: int, **kw: object) -> AsyncIterator[OpcuaSimulator]:
    sim = OpcuaSimulator(NAMES, feed, port=port, period_s=0.05, **kw)  # type: ignore[arg-type]
    feed.sim = sim
    async with sim:
        yield sim


@contextlib.asynccontextmanager
async def running(source: OpcuaSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        await sink.wait_for(lambda: sink.rows("dga") >= 1, within_s=10)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_absolute_deadband_suppresses_small_changes_and_passes_large_ones() -> None:
    port, sink, feed = free_port(), RecordingSink(), Feed(10.0)
    source = _source(port, deadband=1.0)
    async with serving(feed, port) as sim, running(source, sink):
        (flt,) = {(f.Trigger, f.DeadbandType, f.DeadbandValue) for f in sim.monitored_filters()}
        assert flt == (ua.DataChangeTrigger.StatusValue, ua.DeadbandType.Absolute.value, 1.0)
        await feed.write(10.4, sink, passes=False)
        await feed.write(10.8, sink, passes=False)  # 0.8 from the last reported value
        await feed.write(12.0, sink, passes=True)
        await feed.write(12.5, sink, passes=False)
        await feed.write(9.0, sink, passes=True)
        await feed.write(10.0, sink, passes=False)  # exactly the band: not "> band"
        # A drift of sub-band steps: 10.6 is 1.6 from the last reported 9.0, so by
        # OPC 10000-4 clause 7.22.2 it is due; asyncua's server compares with the
        # previous sample (10.0) and never sends it. Pinned: if this starts passing,
        # asyncua fixed it and the client module doc should say so.
        await feed.write(10.6, sink, passes=False)
        await feed.write(11.2, sink, passes=False)
    assert seen_h2(sink) == [10.0, 12.0, 9.0]
    assert all(float(b.values[0, 1]) == 7.0 for b in sink.batches)
    # The server did the filtering: two initial values, two changes, nothing for the
    # client to drop (each CH4 write only renews its SourceTimestamp: not reported).
    assert source.stats.notifications == 2 + 2
    assert source.stats.deadband_dropped == 0


async def test_percent_deadband_uses_eurange_and_is_applied_by_the_client() -> None:
    port, sink, feed = free_port(), RecordingSink(), Feed(50.0)
    source = _source(port, deadband=5.0, deadband_type="percent")  # 5 % of 0..100 ppm
    async with (
        serving(feed, port, eu_range={"H2": (0.0, 100.0), "CH4": (0.0, 20.0)}) as sim,
        running(source, sink),
    ):
        flts = {(f.Trigger, f.DeadbandType, f.DeadbandValue) for f in sim.monitored_filters()}
        assert flts == {(ua.DataChangeTrigger.StatusValue, ua.DeadbandType.Percent.value, 5.0)}
        await feed.write(53.0, sink, passes=False)
        await feed.write(56.0, sink, passes=True)  # 6 from 50: over 5
        await feed.write(58.0, sink, passes=False)
        await feed.write(60.0, sink, passes=False)  # 4 from the last reported 56
        await feed.write(61.5, sink, passes=True)  # 5.5 from 56: a drift is caught
        await feed.write(57.0, sink, passes=False)
    assert seen_h2(sink) == [50.0, 56.0, 61.5]
    # asyncua's server sent every change ("DeadbandType Percent is not implemented"):
    # the four small ones (53, 58, 60, 57) reached the client and were dropped there.
    assert source.stats.deadband_dropped == 4


async def test_percent_deadband_without_eurange_is_refused_naming_the_channel() -> None:
    port, sink, feed = free_port(), RecordingSink(), Feed(50.0)
    source = _source(port, deadband=5.0, deadband_type="percent")
    async with serving(feed, port, eu_range={"CH4": (0.0, 20.0)}):
        task = asyncio.create_task(source.run(sink))
        try:
            await sink.wait_for(lambda: StatusKind.DISCONNECTED in sink.kinds(), within_s=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    detail = next(s.detail for s in sink.statuses if s.kind is StatusKind.DISCONNECTED)
    assert "h2" in detail and "EURange" in detail
    assert sink.rows("dga") == 0


def test_deadband_options_are_validated() -> None:
    base = {"url": "opc.tcp://127.0.0.1:4840/", "nodes": {"h2": "ns=2;i=2"}}
    with pytest.raises(ConfigError) as err:
        parse_options("x", {**base, "deadband_type": "relative"})
    assert {i.key for i in err.value.issues} == {"sources.x.deadband_type"}
    with pytest.raises(ConfigError) as err:
        parse_options("x", {**base, "deadband_type": "percent", "deadband": 150})
    assert {i.key for i in err.value.issues} == {"sources.x.deadband"}
    assert parse_options("x", {**base, "deadband": 2}).deadband_type == "absolute"
