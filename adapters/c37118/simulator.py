"""A C37.118.2 PMU/PDC simulator over TCP and UDP, for tests, demos and field checks.

It behaves like a real device (IEEE C37.118.2-2011 clause 7): it answers SEND_HEADER,
SEND_CFG1/2/3 (CFG-3 split with CONT_IDX when larger than ``cfg3_max_frame``), TURN_ON
and TURN_OFF; TCP carries commands and data on one connection (several clients), UDP
sends data to the peer that sent TURN_ON, or, in spontaneous mode, to a configured
destination without any command.

Frame ``k`` leaves at ``k / R`` seconds since the epoch of the injected ``Clock``,
computed from ``k`` (never by accumulating sleeps), and carries exactly that time in
SOC/FRACSEC: TIME_BASE is chosen as a multiple of R so FRACSEC is exact.
"""

from __future__ import annotations

__all__ = ["PmuSimulator", "SimulatorConfig", "SimulatorStats", "frame_time", "time_base_for"]

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import structlog

from adapters.c37118._sim_io import Peer, TcpPeerProtocol, UdpServerProtocol
from adapters.c37118.codec import encode, encode_cfg3_fragments
from adapters.c37118.constants import MAX_FRAME_SIZE, Command, Format, FrameType, Stat
from adapters.c37118.frames import (
    CommandFrame,
    ConfigFrame,
    DataFrame,
    HeaderFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
)
from adapters.c37118.scenario import Scenario, fault_sag, synthesize
from edgepipe.core import Clock, SystemClock

log = structlog.get_logger()

_NS = 1_000_000_000
_CHUNK_S = 2  # scenario values are sampled this many seconds at a time


def time_base_for(rate_hz: int) -> int:
    """A TIME_BASE (Table 3, 24 bits) that R divides, so every k/R is an exact FRACSEC."""
    tb = math.lcm(1_000_000, rate_hz)
    return tb if tb < 1 << 24 else 1_000_000


def frame_time(k: int, rate_hz: int, time_base: int) -> tuple[int, int]:
    """(SOC, FRACSEC count) of frame ``k`` of the grid ``k / R`` seconds since the epoch:
    exact when R divides TIME_BASE."""
    return k // rate_hz, (k % rate_hz) * time_base // rate_hz


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """What the simulated device is. ``pmu_idcodes`` default to ``idcode + 1 + i``;
    ``spontaneous_to`` (host, port) makes a UDP device send without commands, with a
    CFG-2 every ``cfg_every_s``; STAT bit 10 stays set ``cfg_change_flag_s`` after a
    config change (one minute in the standard, Table 7)."""

    host: str = "127.0.0.1"
    port: int = 4712
    udp: bool = False
    n_pmus: int = 1
    rate_hz: int = 30
    idcode: int = 1
    pmu_idcodes: tuple[int, ...] | None = None
    station_prefix: str = "PMU"
    # Station names per PMU (default ``<station_prefix><i + 1>``); repeat one to put
    # several PMUs on one asset, as a bay with a main and a backup PMU.
    stations: tuple[str, ...] | None = None
    fmt: Format = Format.PHASOR_POLAR | Format.PHASOR_FLOAT | Format.FREQ_FLOAT
    fnom_hz: float = 60.0
    nominal_v: float = 230e3
    version: int = 2
    scenario: Scenario | None = None
    fault_at_s: float | None = None
    seed: int = 0
    spontaneous_to: tuple[str, int] | None = None
    cfg_every_s: float = 1.0
    cfg_change_flag_s: float = 60.0
    cfg3_max_frame: int = MAX_FRAME_SIZE
    stream_on_connect: bool = False  # TCP: stream before any command, like some PMUs
    # TCP commands, UDP data (clause 7.3, "mixed"): data frames go by UDP to this port at
    # the commanding client's address; configs and headers still answer over TCP.
    udp_data_port: int | None = None
    # Answer commands whatever IDCODE they name, with this device's own (some PMUs do)
    any_idcode: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.rate_hz <= 32767:
            raise ValueError("rate_hz must be a whole number of frames per second")
        if self.n_pmus < 1:
            raise ValueError("n_pmus must be at least 1")
        if self.stations is not None and len(self.stations) != self.n_pmus:
            raise ValueError("stations must name every PMU (n_pmus names)")


@dataclass(slots=True)
class SimulatorStats:
    frames_sent: int = 0
    frames_skipped: int = 0
    commands: int = 0
    commands_dropped: int = 0
    configs_sent: int = 0
    clients: int = 0


class PmuSimulator:
    """``await sim.start()``; ``sim.port`` once bound; ``await sim.stop()``.

    Knobs for tests: ``drop_commands`` (ignore the next N commands, like a slow PMU),
    ``paused`` (skip sending, the stream goes quiet), ``extra_stat`` (ORed into every
    STAT word), ``change_config()`` (CFGCNT + 1 and STAT bit 10, same frame layout; the
    2005 or the 2011 timing of the bit).
    """

    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.stats = SimulatorStats()
        self.drop_commands = 0
        self.command_log: deque[Command | int] = deque(maxlen=1000)  # answered or not
        self.paused = False
        self.extra_stat = 0
        self.port = config.port
        self.rate_hz = config.rate_hz
        self.time_base = time_base_for(config.rate_hz)
        self.k0 = 0  # grid index (k / R s since the epoch) of the first frame
        self.next_k = 0
        self._scenario = config.scenario or self._synthetic()
        self.cfg = self._build_config(cfgcnt=0)
        self._peers: set[Peer] = set()
        self._cfg_flag_until_k = -1
        self._next_cfg: tuple[int, ConfigFrame] | None = None  # (from frame k, config)
        self._chunk_start = -1
        self._chunk: tuple[list[list[list[complex]]], list[list[float]], list[list[float]]] = (
            [],
            [],
            [],
        )
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        if cfg.udp:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpServerProtocol(self), local_addr=(cfg.host, cfg.port)
            )
            self._udp = transport
            self.port = transport.get_extra_info("sockname")[1]
            if cfg.spontaneous_to is not None:
                peer = Peer(lambda b: transport.sendto(b, cfg.spontaneous_to), "spontaneous")
                peer.streaming = True
                self._peers.add(peer)
                self._tasks.append(asyncio.create_task(self._announce(peer)))
        else:
            if cfg.udp_data_port is not None:
                self._udp, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=(cfg.host, 0)
                )
            self._server = await loop.create_server(
                lambda: TcpPeerProtocol(self), cfg.host, cfg.port
            )
            self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._send_loop()))
        log.info("pmu_sim_started", port=self.port, udp=cfg.udp, pmus=cfg.n_pmus, rate=cfg.rate_hz)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for peer in list(self._peers):
            peer.close()
        self._peers.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        log.info("pmu_sim_stopped", port=self.port, frames=self.stats.frames_sent)

    async def __aenter__(self) -> PmuSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- knobs ----------------------------------------------------------------------------
    def change_config(self, *, scale: float = 1.0, ahead: bool = False) -> None:
        """CFGCNT + 1 on every PMU, phasor scales (PHUNIT) times ``scale``, and STAT bit 10
        set for ``cfg_change_flag_s``: after the change (C37.118-2005), or with ``ahead``
        before it, the change taking effect when the bit clears (C37.118.2-2011)."""
        new = self._build_config(cfgcnt=self.cfg.pmus[0].cfgcnt + 1, scale=scale)
        flag_k = round(self.config.cfg_change_flag_s * self.rate_hz)
        self._cfg_flag_until_k = self.next_k + flag_k
        if ahead:
            self._next_cfg = (self._cfg_flag_until_k, new)
        else:
            self.cfg = new

    @property
    def scenario(self) -> Scenario:
        """The trajectories sent: frame ``k`` carries row ``k - k0`` (looped)."""
        return self._scenario

    def frame_time_ns(self, k: int) -> int:
        """Event time of frame ``k`` (what the client must compute from SOC/FRACSEC)."""
        return (k * _NS + self.rate_hz // 2) // self.rate_hz

    # -- protocol -------------------------------------------------------------------------
    def add_peer(self, peer: Peer) -> None:
        peer.streaming = peer.streaming or self.config.stream_on_connect
        self._peers.add(peer)
        self.stats.clients += 1

    def udp_data_sender(self, host: str) -> Callable[[bytes], None] | None:
        """In mixed mode, a sender of data frames by UDP to ``host``; else None."""
        udp, port = self._udp, self.config.udp_data_port
        if udp is None or port is None or self.config.udp:
            return None
        return lambda data: udp.sendto(data, (host, port))

    def remove_peer(self, peer: Peer) -> None:
        self._peers.discard(peer)

    def on_command(self, frame: CommandFrame, peer: Peer) -> None:
        """Answer one command (clause 6.5, Table 15); commands for another IDCODE are
        ignored, like a real device does."""
        self.stats.commands += 1
        self.command_log.append(_command_name(frame.command))
        if self.drop_commands > 0:
            self.drop_commands -= 1
            self.stats.commands_dropped += 1
            log.info("pmu_sim_command_dropped", command=frame.command, peer=peer.name)
            return
        if frame.idcode != self.config.idcode and not self.config.any_idcode:
            return
        cmd = frame.command
        log.debug("pmu_sim_command", command=cmd, peer=peer.name)
        if cmd == Command.TURN_ON:
            peer.streaming = True
        elif cmd == Command.TURN_OFF:
            peer.streaming = False
        elif cmd == Command.SEND_HEADER:
            soc, frac = self._now_time()
            text = f"edgepipe PMU simulator: {self.config.n_pmus} PMUs at {self.rate_hz}/s"
            peer.send(encode(HeaderFrame(self.config.version, self.config.idcode, soc, frac, text)))
        elif cmd in (Command.SEND_CFG1, Command.SEND_CFG2):
            ftype = FrameType.CFG1 if cmd == Command.SEND_CFG1 else FrameType.CFG2
            peer.send(encode(self._stamped(ftype)))
            self.stats.configs_sent += 1
        elif cmd == Command.SEND_CFG3 and self.config.version >= 2:  # 2005 has no CFG-3
            for part in encode_cfg3_fragments(
                self._stamped(FrameType.CFG3), self.config.cfg3_max_frame
            ):
                peer.send(part)
            self.stats.configs_sent += 1

    # -- internals ------------------------------------------------------------------------
    def _build_config(self, cfgcnt: int, scale: float = 1.0) -> ConfigFrame:
        c = self.config
        ids = c.pmu_idcodes or tuple(c.idcode + 1 + i for i in range(c.n_pmus))
        sc = self._scenario
        # int16 phasors need a scale that fits the largest magnitude of the trajectories
        # (a 3 pu fault current, a scripted swell) with some room.
        peak = np.nanmax(sc.mag, axis=(0, 1)) * 1.5
        # PHUNIT carries the scale in units of 1e-5 V or A (Table 9): use such a multiple,
        # or int16 values would be decoded with a scale slightly off the one encoded.
        phasors = tuple(
            PhasorChannel(name, cur, max(1, math.ceil(float(top) / 32767 * 1e5 * scale)) / 1e5)
            for name, cur, top in zip(sc.phasor_names, sc.is_current, peak, strict=True)
        )
        pmus = tuple(
            PmuConfig(
                c.stations[i] if c.stations else f"{c.station_prefix}{i + 1}",
                ids[i],
                c.fmt,
                phasors,
                fnom_hz=c.fnom_hz,
                cfgcnt=cfgcnt,
            )
            for i in range(c.n_pmus)
        )
        return ConfigFrame(
            FrameType.CFG2, c.version, c.idcode, 0, 0, self.time_base, pmus, self.rate_hz
        )

    def _synthetic(self) -> Scenario:
        c = self.config
        events = [fault_sag(c.fault_at_s)] if c.fault_at_s is not None else []
        # One minute (or until after the fault) of trajectories, looped seamlessly.
        span = max(60.0, (c.fault_at_s or 0.0) + 10.0)
        return synthesize(
            c.n_pmus, c.rate_hz, span, events, c.seed, c.nominal_v, c.fnom_hz, loop=True
        )

    def _now_time(self) -> tuple[int, int]:
        t = self.clock.time_ns()
        return t // _NS, (t % _NS) * self.time_base // _NS

    def _stamped(self, ftype: FrameType) -> ConfigFrame:
        soc, frac = self._now_time()
        return replace(self.cfg, frame_type=ftype, soc=soc, fracsec=frac)

    def _values(self, k: int) -> tuple[list[list[complex]], list[float], list[float]]:
        per_chunk = _CHUNK_S * self.rate_hz
        k -= self.k0  # scenario time starts with the first frame
        start = k - k % per_chunk
        if start != self._chunk_start:
            t = np.arange(start, start + per_chunk, dtype=np.float64) / self.rate_hz
            sc = self._scenario.sample(t)
            n_p = self.config.n_pmus
            ph = sc.phasors()
            if ph.shape[1] < n_p:  # a scenario file with fewer PMUs: repeat them
                idx = np.arange(n_p) % ph.shape[1]
                ph, freq, rocof = ph[:, idx], sc.freq_hz[:, idx], sc.rocof[:, idx]
            else:
                ph, freq, rocof = ph[:, :n_p], sc.freq_hz[:, :n_p], sc.rocof[:, :n_p]
            self._chunk = (ph.tolist(), freq.tolist(), rocof.tolist())
            self._chunk_start = start
        i = k - start
        return self._chunk[0][i], self._chunk[1][i], self._chunk[2][i]

    def _data_frame(self, k: int) -> bytes:
        if self._next_cfg is not None and k >= self._next_cfg[0]:
            self.cfg, self._next_cfg = self._next_cfg[1], None
        soc, frac = frame_time(k, self.rate_hz, self.time_base)
        ph, freq, rocof = self._values(k)
        stat = self.extra_stat | (Stat.CONFIG_CHANGED if k < self._cfg_flag_until_k else 0)
        n_ph = len(self.cfg.pmus[0].phasors)
        pmus = tuple(
            PmuData(stat, tuple(ph[i][:n_ph]), freq[i], rocof[i]) for i in range(self.config.n_pmus)
        )
        frame = DataFrame(self.config.version, self.config.idcode, soc, frac, pmus)
        return encode(frame, self.cfg)

    async def _send_loop(self) -> None:
        r = self.rate_hz
        wall = self.clock.time_ns()
        # Frames sit on the grid k / R seconds since the epoch (aligned to whole seconds,
        # like a real PMU); the first is the next grid point.
        mono_epoch = self.clock.monotonic_ns() - wall
        k = self.k0 = -(-wall * r // _NS)
        while True:
            self.next_k = k
            await self.clock.sleep_until_ns(mono_epoch + k * _NS // r)
            late = (self.clock.monotonic_ns() - mono_epoch) * r // _NS - k
            if late > r:  # more than a second behind (suspended host): skip, do not burst
                self.stats.frames_skipped += late
                k += late
                continue
            targets = [p for p in self._peers if p.streaming]
            if targets and not self.paused:
                data = self._data_frame(k)
                for peer in targets:
                    peer.send_data(data)
                self.stats.frames_sent += 1
            k += 1

    async def _announce(self, peer: Peer) -> None:
        """Spontaneous mode: a CFG-2 now and then, so listeners can decode the data."""
        while True:
            peer.send(encode(self._stamped(FrameType.CFG2)))
            self.stats.configs_sent += 1
            deadline = self.clock.monotonic_ns() + round(self.config.cfg_every_s * _NS)
            await self.clock.sleep_until_ns(deadline)


def _command_name(code: int) -> Command | int:
    try:
        return Command(code)
    except ValueError:
        return code
