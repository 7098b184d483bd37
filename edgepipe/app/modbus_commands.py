"""`edgepipe probe modbus` and `edgepipe simulate modbus`.

``probe`` polls a device with its profile a few times and prints every point (value,
unit, which read it came from) and the fault counters: what a field engineer needs to
check wiring, unit ids and byte orders. Exit codes as ``probe pmu``: 2 bad arguments or
profile, 3 unreachable, 4 no valid answer, 0 otherwise.

``simulate`` serves a profile (default ``deploy/profiles/transformer.toml``) from a
transformer plant running the detectors' own IEEE C57.91 model.
"""

from __future__ import annotations

__all__ = ["add_probe_parser", "add_simulate_parser"]

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from adapters.modbus.device import DeviceConfig
from adapters.modbus.poller import ModbusPoller, ModbusSourceConfig
from adapters.modbus.profile import DeviceProfile, load_profile
from adapters.modbus.simulator import ModbusSimulator
from adapters.modbus.source import parse_url
from edgepipe.core import ConfigError, SampleBatch, SourceStatus, StreamInfo, SystemClock
from edgepipe.pipeline.health import ThermalParams, TransformerPlant

DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "deploy" / "profiles" / "transformer.toml"


class _Collect:
    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.enough = asyncio.Event()
        self.rows: list[SampleBatch] = []
        self.info: StreamInfo | None = None
        self.statuses: list[SourceStatus] = []

    def on_stream(self, info: StreamInfo) -> None:
        self.info = info

    def on_batch(self, batch: SampleBatch) -> None:
        self.rows.append(batch)
        if len(self.rows) >= self.wanted:
            self.enough.set()

    def on_status(self, status: SourceStatus) -> None:
        self.statuses.append(status)


def add_probe_parser(probe_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = probe_subparsers.add_parser(
        "modbus", help="poll a Modbus device with its profile and print every point"
    )
    p.add_argument("url", help="tcp://HOST:PORT or rtu+tcp://HOST:PORT (serial gateway)")
    p.add_argument("--profile", type=Path, required=True, help="device profile (TOML)")
    p.add_argument("--unit", type=int, help="unit id (default: the profile's)")
    p.add_argument("--polls", type=int, default=1, help="poll cycles to print (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait in all")
    p.set_defaults(func=run_probe)
    return p


def run_probe(args: argparse.Namespace) -> int:
    try:
        framer, host, port = parse_url(args.url)
        profile = load_profile(args.profile)
    except (ValueError, ConfigError) as exc:
        print(f"edgepipe probe modbus: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(probe(host, port, framer, profile, args, sys.stdout))


async def probe(  # noqa: PLR0917 - the CLI's pieces, in order
    host: str, port: int, framer: str, profile: DeviceProfile, args: argparse.Namespace,
    out: TextIO,
) -> int:  # fmt: skip
    unit = profile.unit_id if args.unit is None else args.unit
    dev = DeviceConfig(profile, unit, profile.name, f"probe/{unit}")
    cfg = ModbusSourceConfig(
        "probe", host, port, (dev,), framer="rtu" if framer == "rtu" else "socket"
    )
    poller = ModbusPoller(cfg, SystemClock())
    sink = _Collect(args.polls)
    task = asyncio.create_task(poller.run(sink))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sink.enough.wait(), args.timeout)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if poller.stats.connects == 0:
        print(f"edgepipe probe modbus: {framer}://{host}:{port} unreachable", file=sys.stderr)
        return 3
    _print(poller, sink, out, args.json)
    if poller.stats.responses == 0:
        print("edgepipe probe modbus: no valid answer (see the counters)", file=sys.stderr)
        return 4
    return 0


def _print(poller: ModbusPoller, sink: _Collect, out: TextIO, as_json: bool) -> None:
    state = poller.devices[0]
    names = [c.name for c in sink.info.channels] if sink.info else []
    points = {p.name: p for p in state.dev.profile.points}
    for row in sink.rows:
        values: dict[str, Any] = dict(zip(names, row.values[0].tolist(), strict=True))
        values.update(state.texts)
        if as_json:
            out.write(json.dumps({"time_ns": int(row.times_ns[0]), "quality": int(row.quality[0]),
                                  "values": values}) + "\n")  # fmt: skip
        else:
            out.write(f"poll at {int(row.times_ns[0])} ns, quality {int(row.quality[0])}\n")
            for name, v in values.items():
                p = points[name]
                shown = f"{v:.6g}" if isinstance(v, float) else str(v)
                out.write(f"  {name:20} {shown:>16} {p.unit:6} {p.table.value}@{p.address}\n")
    stats = {k: getattr(poller.stats, k) for k in poller.stats.__slots__}
    reads = [f"{r.table.value}@{r.address}+{r.count}" for r in state.plan]
    if as_json:
        out.write(json.dumps({"stats": stats, "reads": reads}) + "\n")
    else:
        out.write(f"reads per poll: {', '.join(reads)}\ncounters: {stats}\n")
    out.flush()


def add_simulate_parser(simulate_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = simulate_subparsers.add_parser(
        "modbus", help="a transformer monitor on a Modbus TCP server, until Ctrl-C"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5020, help="port (default 5020)")
    p.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="device profile")
    p.add_argument("--units", default="1", help="unit ids, comma separated (default 1)")
    p.add_argument("--framer", choices=("socket", "rtu"), default="socket",
                   help="rtu: Modbus RTU frames over TCP, like a serial gateway")  # fmt: skip
    p.add_argument("--scenario", choices=("normal", "overload", "cooling_failure"),
                   default="normal")  # fmt: skip
    p.add_argument("--time-scale", type=float,
                   help="model seconds per second (default: the profile's time_scale)")  # fmt: skip
    p.add_argument("--event-at", type=float, default=3600.0,
                   help="model seconds until the overload or cooling failure")  # fmt: skip
    p.set_defaults(func=run_simulate)
    return p


def transformer_values(profile: DeviceProfile, scenario: str, time_scale: float | None,
                       event_at_s: float) -> Any:  # fmt: skip
    """The ``values(unit, t)`` of the simulator: one plant per unit id."""
    params = dict(profile.params)
    scale = time_scale if time_scale is not None else params.get("time_scale", 1.0)
    thermal = ThermalParams.from_params(params)
    plants: dict[int, TransformerPlant] = {}

    def values(unit: int, t: float) -> dict[str, float | str]:
        plant = plants.get(unit)
        if plant is None:
            plant = plants[unit] = TransformerPlant(
                thermal, params.get("rated_current_a", 1000.0), scenario, scale, event_at_s,
                seed=unit,
            )  # fmt: skip
        v: dict[str, float | str] = dict(plant.values(t))
        v["fan_running"] = 1.0 if float(v["cooling_stage"]) >= 1 else 0.0
        v["model"] = "EP-TXSIM"
        return v

    return values


def run_simulate(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile)
        units = [int(u) for u in str(args.units).split(",") if u.strip()]
    except (ConfigError, ValueError) as exc:
        print(f"edgepipe simulate modbus: {exc}", file=sys.stderr)
        return 2
    values = transformer_values(profile, args.scenario, args.time_scale, args.event_at)

    async def serve() -> None:
        sim = ModbusSimulator(profile, values, host=args.host, port=args.port, unit_ids=units,
                              framer=args.framer)  # fmt: skip
        async with sim:
            print(f"modbus simulator on {args.framer}://{args.host}:{args.port} units {units} "
                  f"scenario {args.scenario}", file=sys.stderr, flush=True)  # fmt: skip
            await asyncio.Event().wait()

    from edgepipe.app.cli import run_until_signal  # noqa: PLC0415 - cli imports this module

    return run_until_signal(serve())
