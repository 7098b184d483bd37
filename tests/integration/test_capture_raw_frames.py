"""Raw PMU frames in a capture (issue 6, record: "for PMUs optionally the raw frames too").

A live `edgepipe run` Service reads the PMU simulator over real TCP through a loopback
relay that keeps every byte the simulator sent. With ``[capture] raw_frames = true`` the
raw segments hold exactly those frames (count and bytes) and decode with the project's
C37.118 ``Decoder``; with it off no raw segment is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from adapters.c37118.codec import NEED_DATA, Decoder
from adapters.c37118.frames import ConfigFrame, DataFrame
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from edgepipe.app.config import parse_config
from edgepipe.app.service import Service
from edgepipe.capture import read_capture, summarize, summarize_raw
from edgepipe.core import SystemClock

pytestmark = pytest.mark.integration

RATE = 60


class _Relay:
    """A loopback TCP relay to the simulator that keeps what the simulator sent."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.sent = bytearray()  # simulator -> client, in order
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        up = asyncio.create_task(self._pipe(reader, up_w, None))
        self._tasks.add(up)
        await self._pipe(up_r, writer, self.sent)
        up.cancel()

    @staticmethod
    async def _pipe(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bytearray | None
    ) -> None:
        try:
            while data := await src.read(65536):
                if keep is not None:
                    keep += data
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


def _config(port: int, tmp: Path, raw: bool) -> dict[str, Any]:
    return {
        "site": "raw-site",
        "sources": {
            "feeder": {
                "type": "pmu",
                "url": f"tcp://127.0.0.1:{port}",
                "idcode": 7,
                "quiet_periods": 1000,  # no re-request while the simulator is paused
            }
        },
        "outbox": {"path": str(tmp / "outbox.sqlite")},
        "capture": {"dir": str(tmp / "capture"), "flush_s": 0.2, "raw_frames": raw},
    }


async def _live_run(tmp: Path, raw: bool, run_s: float) -> tuple[PmuSimulator, bytes]:
    sim = PmuSimulator(SimulatorConfig(port=0, idcode=7, n_pmus=2, rate_hz=RATE))
    await sim.start()
    relay = _Relay(sim.port)
    port = await relay.start()
    service = Service(parse_config(_config(port, tmp, raw)), SystemClock(), io.StringIO())
    assert hasattr(service.recorder, "on_frames") is raw  # the hook exists only when on
    task = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(run_s)
        sim.paused = True  # every frame sent reaches the client before the stop
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.stop()
        await sim.stop()
    return sim, bytes(relay.sent)


async def test_raw_frames_are_exactly_what_the_simulator_sent(tmp_path: Path) -> None:
    sim, sent = await _live_run(tmp_path, raw=True, run_s=2.0)
    capture = read_capture(tmp_path / "capture")
    (raw,) = capture.raw
    assert raw.source == "feeder" and raw.segments >= 1
    assert b"".join(raw.frames) == sent  # the same bytes, cut at frame boundaries
    assert (raw.times_ns[1:] >= raw.times_ns[:-1]).all() and (raw.seq[1:] >= raw.seq[:-1]).all()

    decoder = Decoder()
    data = configs = 0
    for frame in raw.frames:  # each one is one whole, good frame
        decoder.receive_data(frame)
        event = decoder.next_event()
        assert decoder.next_event() is NEED_DATA and decoder.buffered == 0
        if isinstance(event, DataFrame):
            assert len(event.pmus) == 2 and event.idcode == 7
            data += 1
        else:
            assert isinstance(event, ConfigFrame), event
            configs += 1
    assert data == sim.stats.frames_sent > RATE and configs == sim.stats.configs_sent == 1
    assert len(raw) == data + configs
    for s in summarize(capture):  # the decoded rows of the same frames
        assert s.rows == data
    (info,) = summarize_raw(capture)
    assert info.frames == len(raw) and info.bytes == len(sent)


async def test_no_raw_segment_when_raw_frames_is_off(tmp_path: Path) -> None:
    sim, sent = await _live_run(tmp_path, raw=False, run_s=1.0)
    capture = read_capture(tmp_path / "capture")
    assert capture.raw == () and not (tmp_path / "capture" / "raw").exists()
    assert sim.stats.frames_sent > RATE // 2 and len(sent) > 0
    assert {s.rows for s in summarize(capture)} == {sim.stats.frames_sent}
