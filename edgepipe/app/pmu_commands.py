"""``edgepipe probe pmu`` and ``edgepipe simulate pmu``.

``probe`` asks a device for its configuration (CFG-2), prints it, turns the stream on,
prints ``--frames`` data frames, and turns it off (IEEE C37.118.2-2011 clause 7). Output
is readable text, or one JSON object per line with ``--json``. Exit status: 0 success,
3 unreachable, 4 no (or too little) answer, 5 the peer does not speak C37.118. Errors are
one line on stderr.
"""

from __future__ import annotations

__all__ = ["add_probe_parser", "add_simulate_parser", "probe", "run_probe", "run_simulate"]

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from adapters.c37118._links import Link, open_tcp, open_udp
from adapters.c37118.codec import NEED_DATA, BadFrame, Decoder, UnknownConfig, encode
from adapters.c37118.constants import Command, Format
from adapters.c37118.frames import CommandFrame, ConfigFrame, DataFrame
from adapters.c37118.scenario import Scenario
from adapters.c37118.simulator import PmuSimulator, SimulatorConfig
from adapters.c37118.source import parse_url
from edgepipe.core import SystemClock, TransportError

EXIT_UNREACHABLE = 3
EXIT_NO_ANSWER = 4
EXIT_NOT_C37118 = 5


class ProbeError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _idcode(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 0xFFFF:  # a 16-bit field (clause 6.2); 0 names no stream
        raise argparse.ArgumentTypeError(f"an IDCODE is 1..65535, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


# -- probe ------------------------------------------------------------------------------
def add_probe_parser(probe_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = probe_subparsers.add_parser(
        "pmu", help="read the configuration and a few data frames of a C37.118 device"
    )
    p.add_argument("url", help="tcp://HOST:PORT or udp://HOST:PORT")
    p.add_argument("--idcode", type=_idcode, required=True, help="IDCODE of the stream")
    p.add_argument("--frames", type=_count, default=5, help="data frames to print (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--timeout", type=_seconds, default=3.0, help="seconds to wait for answers")
    p.set_defaults(func=run_probe)
    return p


def run_probe(args: argparse.Namespace) -> int:
    try:
        asyncio.run(
            probe(
                args.url,
                idcode=args.idcode,
                frames=args.frames,
                timeout_s=args.timeout,
                as_json=args.json,
                out=sys.stdout,
            )
        )
    except ProbeError as exc:
        print(f"edgepipe probe pmu: {exc}", file=sys.stderr)
        return exc.code
    return 0


async def probe(
    url: str, *, idcode: int, frames: int, timeout_s: float, as_json: bool, out: TextIO
) -> None:
    """Print the configuration and ``frames`` data frames of the device at ``url``."""
    try:
        scheme, host, port = parse_url(url, ("tcp", "udp"))
    except ValueError as exc:
        raise ProbeError(2, f"bad url: {exc}") from exc
    inbox: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        if scheme == "tcp":
            link = await open_tcp(host, port, timeout_s, inbox.put_nowait)
        else:
            link = await open_udp(host, port, inbox.put_nowait, listen=False)
    except TransportError as exc:
        raise ProbeError(EXIT_UNREACHABLE, f"cannot reach {exc}") from exc  # names the url
    session = _Probe(link, inbox, idcode=idcode, timeout_s=timeout_s, url=url)
    try:
        cfg = await session.config()
        _print(out, as_json, _config_json(cfg), _config_text(cfg))
        session.command(Command.TURN_ON)
        for _ in range(frames):
            frame = await session.data()
            _print(out, as_json, _data_json(frame, cfg), _data_text(frame, cfg))
    finally:
        with contextlib.suppress(Exception):
            session.command(Command.TURN_OFF)
        await asyncio.sleep(0)
        link.close()


# Malformed bytes before any good frame after which the peer is taken for something else
_NOT_C37118_BYTES = 4096


class _Probe:
    def __init__(
        self,
        link: Link,
        inbox: asyncio.Queue[bytes],
        *,
        idcode: int,
        timeout_s: float,
        url: str,
    ) -> None:
        self.link, self.inbox = link, inbox
        self.decoder = Decoder()
        self.idcode, self.timeout_s, self.url = idcode, timeout_s, url
        self.seen_good = False
        self.first_bad = ""  # why the first malformed bytes were skipped
        self.other_ids: set[int] = set()  # IDCODEs of configurations that came instead

    def command(self, cmd: Command) -> None:
        self.link.send(encode(CommandFrame(1, self.idcode, 0, 0, cmd)))

    async def config(self) -> ConfigFrame:
        self.command(Command.SEND_CFG2)
        while True:
            event = await self._next("configuration frame")
            if isinstance(event, ConfigFrame):
                if event.idcode == self.idcode:
                    return event
                self.other_ids.add(event.idcode)

    async def data(self) -> DataFrame:
        while True:
            event = await self._next("data frame")
            if isinstance(event, DataFrame) and event.idcode == self.idcode:
                return event

    async def _next(self, what: str) -> object:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            event = self.decoder.next_event()
            if isinstance(event, BadFrame) and not self.seen_good:
                # Skipped and counted, as the service does: a stray byte or one corrupted
                # frame ahead of good ones is no reason to give up; a stream of nothing
                # but bad bytes is.
                self.first_bad = self.first_bad or event.reason
                if self.decoder.stats.bytes_skipped > _NOT_C37118_BYTES:
                    raise self._not_c37118()
            if event is not NEED_DATA and not isinstance(event, BadFrame | UnknownConfig):
                self.seen_good = True
                return event
            if event is not NEED_DATA:
                continue
            left = deadline - loop.time()
            get = asyncio.ensure_future(self.inbox.get())
            waiting: list[asyncio.Future[Any]] = [get, self.link.closed]
            done, _ = await asyncio.wait(
                waiting, timeout=max(left, 0), return_when=asyncio.FIRST_COMPLETED
            )
            if get in done:
                self.decoder.receive_data(get.result())
                continue
            get.cancel()
            if self.first_bad and not self.seen_good:
                raise self._not_c37118()
            if self.link.closed.done():
                raise ProbeError(
                    EXIT_NO_ANSWER, f"{self.url} closed the connection while waiting for {what}"
                )
            others = ", ".join(str(i) for i in sorted(self.other_ids))
            hint = f"; it answered for IDCODE {others} (try --idcode)" if others else ""
            raise ProbeError(
                EXIT_NO_ANSWER,
                f"no {what} from {self.url} within {self.timeout_s:g} s "
                f"(IDCODE {self.idcode}){hint}",
            )

    def _not_c37118(self) -> ProbeError:
        skipped = self.decoder.stats.bytes_skipped
        return ProbeError(
            EXIT_NOT_C37118,
            f"{self.url} does not speak C37.118 ({self.first_bad}; {skipped} bytes "
            "without a good frame)",
        )


def _print(out: TextIO, as_json: bool, obj: dict[str, Any], text: str) -> None:
    out.write(json.dumps(obj) + "\n" if as_json else text + "\n")
    out.flush()


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


def _iso(t_ns: int) -> str:
    dt = datetime.fromtimestamp(t_ns // 1_000_000_000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{t_ns % 1_000_000_000:09d}Z"


def _config_json(cfg: ConfigFrame) -> dict[str, Any]:
    return {
        "type": cfg.frame_type.name.lower(),
        "idcode": cfg.idcode,
        "version": cfg.version,
        "time_base": cfg.time_base,
        "rate_hz": cfg.rate_hz,
        "pmus": [
            {
                "station": p.station.strip(),
                "idcode": p.idcode,
                "format": int(p.fmt),
                "fnom_hz": p.fnom_hz,
                "cfgcnt": p.cfgcnt,
                "phasors": [{"name": ph.name.strip(), "unit": ph.unit} for ph in p.phasors],
                "analogs": [a.name.strip() for a in p.analogs],
                "digitals": len(p.digitals),
            }
            for p in cfg.pmus
        ],
    }


def _config_text(cfg: ConfigFrame) -> str:
    lines = [
        f"{cfg.frame_type.name} IDCODE {cfg.idcode}, version {cfg.version}, {len(cfg.pmus)} "
        f"PMU(s), {cfg.rate_hz:g} frames/s, TIME_BASE {cfg.time_base}"
    ]
    for p in cfg.pmus:
        kind = ("polar" if p.phasor_polar else "rect") + (" float" if p.phasor_float else " int")
        lines.append(
            f"  {p.station.strip()} IDCODE {p.idcode}: FNOM {p.fnom_hz:g} Hz, "
            f"CFGCNT {p.cfgcnt}, phasors {kind}"
        )
        lines.append("    phasors: " + ", ".join(f"{c.name.strip()} ({c.unit})" for c in p.phasors))
        if p.analogs:
            lines.append("    analogs: " + ", ".join(a.name.strip() for a in p.analogs))
        if p.digitals:
            lines.append(f"    digital words: {len(p.digitals)}")
    return "\n".join(lines)


def _data_json(frame: DataFrame, cfg: ConfigFrame) -> dict[str, Any]:
    t = frame.time_ns(cfg.time_base)
    return {
        "type": "data",
        "idcode": frame.idcode,
        "time": _iso(t),
        "time_ns": t,
        "pmus": [
            {
                "station": pc.station.strip(),
                "stat": d.stat,
                "freq_hz": _num(d.freq_hz),
                "rocof": _num(d.rocof),
                "phasors": {
                    ch.name.strip(): {
                        "mag": _num(abs(v)),
                        "ang_deg": _num(math.degrees(math.atan2(v.imag, v.real))),
                    }
                    for ch, v in zip(pc.phasors, d.phasors, strict=True)
                },
                "analogs": [_num(a) for a in d.analogs],
                "digitals": list(d.digitals),
            }
            for pc, d in zip(cfg.pmus, frame.pmus, strict=True)
        ],
    }


def _data_text(frame: DataFrame, cfg: ConfigFrame) -> str:
    lines = [f"data {_iso(frame.time_ns(cfg.time_base))} IDCODE {frame.idcode}"]
    for pc, d in zip(cfg.pmus, frame.pmus, strict=True):
        ph = "  ".join(
            f"{c.name.strip()}={abs(v):.6g}{c.unit}<{math.degrees(math.atan2(v.imag, v.real)):.2f}"
            for c, v in zip(pc.phasors, d.phasors, strict=True)
        )
        lines.append(
            f"  {pc.station.strip()}: STAT {d.stat:#06x}  f={d.freq_hz:.4f} Hz  "
            f"df/dt={d.rocof:.3f}  {ph}"
        )
    return "\n".join(lines)


# -- simulate ---------------------------------------------------------------------------
_FORMATS = {
    "polar-float": Format.PHASOR_POLAR | Format.PHASOR_FLOAT | Format.FREQ_FLOAT,
    "rect-float": Format.PHASOR_FLOAT | Format.FREQ_FLOAT,
    "polar-int": Format.PHASOR_POLAR,
    "rect-int": Format(0),
}


def add_simulate_parser(simulate_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = simulate_subparsers.add_parser(
        "pmu", help="run a C37.118 PMU/PDC simulator until Ctrl-C"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4712, help="port (0 = any free port)")
    p.add_argument("--udp", action="store_true", help="UDP instead of TCP")
    p.add_argument("--spontaneous-to", metavar="HOST:PORT", help="UDP: send without commands")
    p.add_argument(
        "--udp-data-port",
        type=int,
        metavar="PORT",
        help="TCP commands, data by UDP to this port at the commanding client's address",
    )
    p.add_argument("--pmus", type=int, default=1, help="PMUs per frame (NUM_PMU)")
    p.add_argument("--rate", type=int, default=30, help="frames per second")
    p.add_argument("--idcode", type=_idcode, default=1, help="IDCODE of the stream")
    p.add_argument("--scenario", type=Path, help="CSV or Parquet trajectories")
    p.add_argument("--loop", action="store_true", help="repeat the scenario file")
    p.add_argument("--fault-at", type=float, metavar="S", help="fault sag S seconds in")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic trajectories")
    p.add_argument("--fnom", type=float, choices=(50.0, 60.0), default=60.0, help="FNOM, Hz")
    p.add_argument(
        "--format",
        choices=sorted(_FORMATS),
        default="polar-float",
        help="phasor format on the wire (frequency follows float/int)",
    )
    p.set_defaults(func=run_simulate)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    try:
        config = _sim_config(args)
    except (ValueError, OSError) as exc:
        print(f"edgepipe simulate pmu: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_simulate(config))
    except OSError as exc:
        print(f"edgepipe simulate pmu: cannot bind port {args.port}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _sim_config(args: argparse.Namespace) -> SimulatorConfig:
    dest: tuple[str, int] | None = None
    if args.spontaneous_to:
        host, _, port = args.spontaneous_to.rpartition(":")
        dest = (host, int(port))
    scenario = Scenario.from_file(args.scenario, loop=args.loop) if args.scenario else None
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        udp=args.udp or dest is not None,
        udp_data_port=args.udp_data_port,
        n_pmus=args.pmus,
        rate_hz=args.rate,
        idcode=args.idcode,
        scenario=scenario,
        fault_at_s=args.fault_at,
        seed=args.seed,
        spontaneous_to=dest,
        fnom_hz=args.fnom,
        fmt=_FORMATS[args.format],
    )


async def _simulate(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sim = PmuSimulator(config, SystemClock())
    await sim.start()
    scheme = "udp" if config.udp else "tcp"
    print(
        f"PMU simulator on {scheme}://{config.host}:{sim.port}: IDCODE {config.idcode}, "
        f"{config.n_pmus} PMU(s), {config.rate_hz} frames/s",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await sim.stop()
