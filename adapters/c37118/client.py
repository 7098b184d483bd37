"""The async PMU client: a ``Source`` reading one C37.118.2 stream (IEEE C37.118.2-2011).

A thin shell: sockets (``_links``) feed the sans-IO ``Decoder``, the ``Session`` state
machine decides which command to send when, and ``batches`` turns data frames into
``SampleBatch`` rows for the ``Sink``. A sink with the optional ``on_frames`` (the capture
recorder with ``raw_frames = true``) also gets the exact bytes of every good frame, from a
``RecordingDecoder``; other sinks cost nothing extra.

Transports (clause 7): TCP, commands and data on one connection; UDP with commands over
UDP to the PMU; UDP data received on a local port with commands over TCP
(``command_host``/``command_port``); and listen-only UDP for PMUs that send
spontaneously (``spontaneous``: no command is ever sent).
"""

from __future__ import annotations

__all__ = ["PmuClient", "PmuClientConfig", "PmuClientStats"]

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import structlog

from adapters.c37118._links import Link, open_tcp, open_udp
from adapters.c37118.batches import duplicate_idcodes, stream_infos, to_batches
from adapters.c37118.codec import (
    NEED_DATA,
    BadFrame,
    Decoder,
    RecordingDecoder,
    UnknownConfig,
    encode,
)
from adapters.c37118.constants import Command, FrameType, Stat
from adapters.c37118.frames import CommandFrame, ConfigFrame, DataFrame, HeaderFrame
from adapters.c37118.session import Session, SessionSettings
from edgepipe.core import (
    Clock,
    Sink,
    SourceStatus,
    StatusKind,
    StreamInfo,
    TransportError,
)
from edgepipe.core.source import FramesHook, frames_hook

log = structlog.get_logger()

_NS = 1_000_000_000
_TICK_NS = 100_000_000  # the longest the ticker sleeps: bounds quiet-detection latency

_Feed = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class PmuClientConfig:
    """Typed options of one PMU source (see ``adapters.c37118.source`` for the mapping)."""

    name: str
    transport: Literal["tcp", "udp"]
    host: str
    port: int
    idcode: int
    command_host: str | None = None
    command_port: int | None = None
    spontaneous: bool = False
    config_frame: Literal["cfg2", "cfg3"] = "cfg2"
    timeout_s: float = 2.0
    command_gap_s: float = 0.1
    quiet_periods: float = 10.0
    nominal_voltage: Mapping[str, float] | None = None
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    command_version: int = 1  # 2005 PMUs reject version-2 commands; 2011 ones accept 1


@dataclass(slots=True)
class PmuClientStats:
    frames: int = 0
    bad_frames: int = 0
    unknown_config: int = 0
    reconnects: int = 0
    config_changes: int = 0
    # data frames dropped between STAT bit 10's fall (a 2011 PMU's change took effect)
    # and a configuration frame that differs: decoded with the old config they were wrong
    config_wait_drops: int = 0
    configs_ignored: int = 0  # CFG-1, or a configuration of another IDCODE
    commands_sent: int = 0
    command_retries: int = 0
    batches: int = 0


class PmuClient:
    """Reads one PMU/PDC stream until cancelled; reconnects with backoff and jitter."""

    def __init__(self, config: PmuClientConfig, clock: Clock) -> None:
        self.name = config.name
        self.config = config
        self.clock = clock
        self.stats = PmuClientStats()
        self.cfg: ConfigFrame | None = None
        self.infos: list[StreamInfo] = []
        self.header = ""
        cmd = Command.SEND_CFG3 if config.config_frame == "cfg3" else Command.SEND_CFG2
        self._settings = SessionSettings(
            config_command=cmd,
            timeout_ns=round(config.timeout_s * _NS),
            gap_ns=round(config.command_gap_s * _NS),
            quiet_periods=config.quiet_periods,
            spontaneous=config.spontaneous,
        )
        self._session = Session(self._settings)
        self._sink: Sink | None = None
        self._on_frames: FramesHook | None = None
        self._decoders: list[Decoder] = []
        self._pending: list[DataFrame] = []
        self._flush_scheduled = False
        self._held: list[DataFrame] = []  # data after STAT bit 10 fell, until a config
        self._ignored: set[tuple[int, FrameType]] = set()  # configs refused, logged once
        self._fell_back = False  # CFG-3 was asked for and never came: CFG-2 instead
        self._cmd_link: Link | None = None

    # -- Source ---------------------------------------------------------------------------
    async def run(self, sink: Sink) -> None:
        """Connect, stream, and reconnect on transport errors until cancelled."""
        self._sink = sink
        self._on_frames = frames_hook(sink)  # raw frames only for a sink that wants them
        attempt = 0
        while True:
            got_data = self.stats.frames
            try:
                await self._run_once(sink)
            except TransportError as exc:
                log.warning("pmu_disconnected", source=self.name, error=str(exc))
                self._status(StatusKind.DISCONNECTED, str(exc))
            attempt = 0 if self.stats.frames > got_data else attempt + 1
            self.stats.reconnects += 1
            ceiling = min(self.config.reconnect_max_s, self.config.reconnect_min_s * 2**attempt)
            delay = ceiling * random.uniform(0.5, 1.0)  # jitter: PMUs restart together
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + round(delay * _NS))

    # -- one connection -------------------------------------------------------------------
    async def _run_once(self, sink: Sink) -> None:
        c = self.config
        links: list[Link] = []
        self._session = Session(self._settings)
        self._decoders = []
        ticker: asyncio.Task[None] | None = None
        try:
            if c.transport == "tcp":
                links.append(await open_tcp(c.host, c.port, c.timeout_s, self._stream_feed()))
                self._cmd_link = links[0]
            else:
                listen = c.spontaneous or c.command_port is not None
                udp = await open_udp(c.host, c.port, self._datagram_feed(), listen=listen)
                links.append(udp)
                self._cmd_link = None if c.spontaneous else udp
                if c.command_port is not None and not c.spontaneous:
                    host = c.command_host or c.host
                    tcp = await open_tcp(host, c.command_port, c.timeout_s, self._stream_feed())
                    links.append(tcp)
                    self._cmd_link = tcp
            log.info("pmu_connected", source=self.name, link=links[0].name)
            self._status(StatusKind.CONNECTED, links[0].name)
            self._session.start(self.clock.monotonic_ns())
            ticker = asyncio.create_task(self._tick())
            done, _ = await asyncio.wait(
                [lk.closed for lk in links], return_when=asyncio.FIRST_COMPLETED
            )
            for fut in done:
                fut.result()  # raises the link's error
            raise TransportError(f"{links[0].name}: closed")
        finally:
            if ticker is not None:
                ticker.cancel()
            if (
                self._cmd_link is not None
                and not c.spontaneous
                and not self._cmd_link.closed.done()
            ):
                # Clean shutdown (or reconnect): stop the stream we started (Table 15).
                self._send(Command.TURN_OFF)
            self._cmd_link = None
            self._flush()
            for lk in links:
                lk.close()

    def _stream_feed(self) -> _Feed:
        decoder = self._new_decoder()

        def feed(data: bytes) -> None:
            decoder.receive_data(data)
            self._drain(decoder)

        return feed

    def _datagram_feed(self) -> _Feed:
        box = [self._new_decoder()]

        def feed(data: bytes) -> None:
            box[0].receive_data(data)
            self._drain(box[0])
            if box[0].buffered:  # a truncated datagram: never let it swallow the next one
                self._decoders.remove(box[0])
                box[0] = self._new_decoder()

        return feed

    def _new_decoder(self) -> Decoder:
        known = {self.cfg.idcode: self.cfg} if self.cfg else None
        decoder = Decoder(known) if self._on_frames is None else RecordingDecoder(known)
        self._decoders.append(decoder)
        return decoder

    # -- events ---------------------------------------------------------------------------
    def _drain(self, decoder: Decoder) -> None:
        now = self.clock.monotonic_ns()
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, DataFrame):
                self._on_data(event, now)
            elif isinstance(event, ConfigFrame):
                self._on_config(event, now)
            elif isinstance(event, UnknownConfig):
                self.stats.unknown_config += 1
                if event.idcode == self.config.idcode:
                    self._session.on_unknown_config(now)
            elif isinstance(event, BadFrame):
                self.stats.bad_frames += 1
                n = self.stats.bad_frames
                if n <= 10 or _power_of_ten(n):  # a link that corrupts every frame: no flood
                    log.warning("pmu_bad_frame", source=self.name, idcode=self.config.idcode,
                                reason=event.reason, count=n)  # fmt: skip
            elif isinstance(event, HeaderFrame):
                self.header = event.text
        if self._on_frames is not None and isinstance(decoder, RecordingDecoder):
            self._hand_frames(self._on_frames, decoder)
        self._poll(now)
        if self._pending and not self._flush_scheduled:
            # Coalesce everything that arrives in one loop iteration into one batch.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _hand_frames(self, hook: FramesHook, decoder: RecordingDecoder) -> None:
        """The exact bytes of the frames just received, before their rows are batched."""
        if decoder.frames:
            frames, decoder.frames = decoder.frames, []
            hook(self.name, self.clock.time_ns(), frames)

    def _on_data(self, frame: DataFrame, now: int) -> None:
        if frame.idcode != self.config.idcode or self.cfg is None:
            return
        self.stats.frames += 1
        changed = any(p.stat & Stat.CONFIG_CHANGED for p in frame.pmus)
        if self._session.on_data(changed, now):
            log.info("pmu_resumed", source=self.name)
            self._status(StatusKind.RESUMED)
        if self._session.config_due(now):
            # Held until the configuration frame says whether they were decoded right.
            self._held.append(frame)
            return
        if self._held:  # no configuration frame within the timeout: keep the last one
            log.warning("pmu_config_wait_over", source=self.name, frames=len(self._held))
            self._pending += self._held
            self._held = []
        self._pending.append(frame)

    def _on_config(self, cfg: ConfigFrame, now: int) -> None:
        if cfg.idcode != self.config.idcode or cfg.frame_type == FrameType.CFG1:
            self.stats.configs_ignored += 1
            what = (cfg.idcode, cfg.frame_type)
            if what not in self._ignored:  # once per kind: a device repeats its answer
                self._ignored.add(what)
                if cfg.idcode != self.config.idcode:
                    log.warning(
                        "pmu_config_other_idcode", source=self.name, idcode=cfg.idcode,
                        expected=self.config.idcode,
                        hint="the device answers for another IDCODE: check the source's idcode",
                    )  # fmt: skip
                else:
                    log.info("pmu_cfg1_ignored", source=self.name, reason="CFG-2/3 describe data")
            return
        self._session.on_config(cfg.rate_hz, now)
        held, self._held = self._held, []
        for d in self._decoders:
            d.set_config(cfg)
        if self.cfg is None or _decodes_alike(self.cfg, cfg):
            self._pending += held  # decoded as the new config would have decoded them
        elif held:  # laid out by the new config, decoded with the old one
            self.stats.config_wait_drops += len(held)
            log.warning("pmu_config_frames_dropped", source=self.name, frames=len(held))
        if self.cfg is not None and _same(self.cfg, cfg):
            return
        self._flush()  # rows decoded with the old config go out under the old infos
        first = self.cfg is None
        self.cfg = cfg
        self.infos = stream_infos(self.name, cfg, self.config.nominal_voltage)
        if dup := duplicate_idcodes(cfg):
            log.warning(
                "pmu_duplicate_idcode", source=self.name, idcodes=dup,
                streams=[i.stream for i in self.infos if "-block" in i.stream],
                hint="PMU blocks of one frame share an IDCODE: fix the PDC; later blocks "
                "are told apart by their position",
            )  # fmt: skip
        log.info(
            "pmu_config",
            source=self.name,
            pmus=len(cfg.pmus),
            rate=cfg.rate_hz,
            cfgcnt=cfg.cfgcnt[0],
        )
        assert self._sink is not None
        for info in self.infos:
            self._sink.on_stream(info)
        if not first:
            self.stats.config_changes += 1
            self._status(StatusKind.CONFIG_CHANGED, f"CFGCNT {cfg.cfgcnt[0]}")

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending or self.cfg is None or self._sink is None:
            self._pending.clear()
            return
        frames, self._pending = self._pending, []
        for batch in to_batches(frames, self.cfg, self.infos):
            self._sink.on_batch(batch)
            self.stats.batches += 1

    # -- commands and timers --------------------------------------------------------------
    async def _tick(self) -> None:
        while True:
            now = self.clock.monotonic_ns()
            due = self._session.next_deadline()
            wake = now + _TICK_NS if due is None else min(due, now + _TICK_NS)
            await self.clock.sleep_until_ns(wake)
            self._poll(self.clock.monotonic_ns())

    def _poll(self, now: int) -> None:
        result = self._session.poll(now)
        for cmd in result.commands:
            self._send(cmd)
        retries = self._session.retries
        if retries > self.stats.command_retries and _power_of_ten(retries) and result.commands:
            log.warning(
                "pmu_no_answer", source=self.name, command=result.commands[0].name,
                retries=retries, timeout_s=self.config.timeout_s,
            )  # fmt: skip
        self.stats.command_retries = retries
        if self._session.config_command != self._settings.config_command and not self._fell_back:
            self._fell_back = True
            log.warning("pmu_cfg3_unanswered", source=self.name, now_asking="SEND_CFG2")
        if result.went_quiet:
            log.warning("pmu_quiet", source=self.name, periods=self.config.quiet_periods)
            self._status(StatusKind.QUIET)

    def _send(self, cmd: Command) -> None:
        if self._cmd_link is None:
            return
        t = self.clock.time_ns()
        frame = CommandFrame(self.config.command_version, self.config.idcode, t // _NS, 0, cmd)
        self._cmd_link.send(encode(frame))
        self.stats.commands_sent += 1
        log.debug("pmu_command", source=self.name, command=cmd.name)

    def _status(self, kind: StatusKind, detail: str = "") -> None:
        if self._sink is None:
            return
        now = self.clock.time_ns()
        streams = [i.stream for i in self.infos] or [""]
        for stream in streams:
            self._sink.on_status(SourceStatus(self.name, stream, kind, now, detail))


def _power_of_ten(n: int) -> bool:
    """1, 10, 100, ...: how often a repeated warning is worth repeating."""
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


def _decodes_alike(a: ConfigFrame, b: ConfigFrame) -> bool:
    """A data frame decodes to the same values under ``a`` and ``b``: they differ in
    names, CFGCNT, time stamp or flavour at most."""
    return _layout(a) == _layout(b)


def _layout(cfg: ConfigFrame) -> ConfigFrame:
    blank = ("",) * 16
    pmus = tuple(
        replace(
            p,
            station="",
            cfgcnt=0,
            phasors=tuple(replace(c, name="") for c in p.phasors),
            analogs=tuple(replace(c, name="") for c in p.analogs),
            digitals=tuple(replace(d, labels=blank) for d in p.digitals),
        )
        for p in cfg.pmus
    )
    return replace(cfg, soc=0, fracsec=0, frame_type=FrameType.CFG2, pmus=pmus)


def _same(a: ConfigFrame, b: ConfigFrame) -> bool:
    """Equal apart from the time stamp and the CFG-2/CFG-3 flavour."""
    return replace(a, soc=0, fracsec=0, frame_type=FrameType.CFG2) == replace(
        b, soc=0, fracsec=0, frame_type=FrameType.CFG2
    )
