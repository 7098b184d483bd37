"""The simulator's schedule: frame k carries exactly k/R and leaves at k/R, no drift."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import numpy as np
import pytest

from adapters.c37118._sim_io import Peer
from adapters.c37118.codec import NEED_DATA, Decoder, encode
from adapters.c37118.constants import Command
from adapters.c37118.frames import CommandFrame, DataFrame
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.core import VirtualClock

pytestmark = pytest.mark.integration


async def test_virtual_clock_frames_leave_at_their_time_stamp() -> None:
    start = 1_795_000_000_123_456_789
    clock = VirtualClock(start)
    sim = PmuSimulator(SimulatorConfig(port=0, rate_hz=60), clock)
    sent: list[tuple[int, bytes]] = []
    enough = asyncio.Event()

    def keep(b: bytes) -> None:
        sent.append((clock.time_ns(), b))
        if len(sent) == 3000:  # 50 s of virtual time
            enough.set()

    peer = Peer(keep, "probe")
    peer.streaming = True
    await sim.start()
    try:
        sim.add_peer(peer)
        await asyncio.wait_for(enough.wait(), 10)
    finally:
        await sim.stop()
    del sent[3000:]
    decoder = Decoder({1: sim.cfg})
    for _, b in sent:
        decoder.receive_data(b)
    frames = []
    while (ev := decoder.next_event()) is not NEED_DATA:
        assert isinstance(ev, DataFrame)
        frames.append(ev)
    k0 = -(-start * 60 // 1_000_000_000)  # the first grid point after the start
    for i, (f, (left_ns, _)) in enumerate(zip(frames, sent, strict=True)):
        k = k0 + i
        assert Fraction(f.soc) + Fraction(f.fraction, sim.time_base) == Fraction(k, 60)
        assert left_ns == k * 1_000_000_000 // 60  # sent at its due time, from k


async def test_real_time_schedule_does_not_drift() -> None:
    """Over 2 s at 100 frames/s, lateness (arrival - SOC/FRACSEC) stays flat."""
    rate = 100
    async with PmuSimulator(SimulatorConfig(port=0, rate_hz=rate)) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        decoder = Decoder({1: sim.cfg})
        writer.write(encode(CommandFrame(1, 1, 0, 0, Command.TURN_ON)))
        late: list[int] = []
        times: list[int] = []
        while len(late) < 2 * rate:
            decoder.receive_data(await reader.read(65536))
            now = time.time_ns()
            while (ev := decoder.next_event()) is not NEED_DATA:
                assert isinstance(ev, DataFrame)
                t = ev.time_ns(sim.time_base)
                times.append(t)
                late.append(now - t)
        writer.close()
    assert np.all(np.diff(times) == 10_000_000)
    lateness = np.array(late) / 1e6  # ms
    assert np.median(lateness) < 10
    drift = np.median(lateness[-50:]) - np.median(lateness[:50])
    assert abs(drift) < 3, f"lateness moved by {drift:.2f} ms in 2 s"
