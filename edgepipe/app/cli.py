"""The `edgepipe` command. Output a command produces goes to stdout; logs go to stderr."""

from __future__ import annotations

__all__ = ["main", "run_until_signal"]

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from edgepipe import __version__
from edgepipe.app.config import load_config
from edgepipe.app.logs import configure_logging
from edgepipe.core import ConfigError, EdgepipeError, ModelError, SystemClock

log = structlog.get_logger("edgepipe.cli")


def run_until_signal(coro: Coroutine[Any, Any, int | None]) -> int:
    """Run ``coro``; SIGINT or SIGTERM cancels it so it can stop cleanly."""

    async def runner() -> int | None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel if task else (lambda: None))
        try:
            return await coro
        except asyncio.CancelledError:
            return 0

    return asyncio.run(runner()) or 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edgepipe.app.lifecycle import Runtime  # noqa: PLC0415 - keeps `--help` fast
    from edgepipe.app.service import Service  # noqa: PLC0415

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _print_config_errors(args.config, exc)
        return 2
    configure_logging(config.logging.level, args.log_format or config.logging.format)
    service = Service(config, SystemClock(), sys.stdout if args.print_alerts else None)
    return run_until_signal(Runtime(service).run())


def _cmd_config_check(args: argparse.Namespace) -> int:
    from edgepipe.app.pipeline import build_detectors  # noqa: PLC0415 - loads onnxruntime

    try:
        config = load_config(args.file)
        # what `run` checks next: every enabled model loads, passes its checks and raises
        # an alert kind of its own (install.sh trusts this command)
        _, models = build_detectors(config)
    except ConfigError as exc:
        _print_config_errors(args.file, exc)
        return 2
    except ModelError as exc:
        print(f"{args.file}: 1 error(s)\n  models: {exc}", file=sys.stderr)
        return 2
    refs = ", ".join(m.current.ref for m in models) or "none"
    print(f"{args.file}: ok (site {config.site!r}, {len(config.sources)} source(s), models {refs})")
    return 0


def _print_config_errors(path: Path, exc: ConfigError) -> None:
    print(f"{path}: {len(exc.issues)} error(s)", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue.key}: {issue.message}", file=sys.stderr)


_CORE_COMMANDS = ("run", "config")
_GLOBAL_VALUES = ("--log-level", "--log-format")  # global options that take a value


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (None when there is none)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_VALUES:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. For ``run`` and ``config`` it leaves the tool commands out: their
    modules import the OPC-UA, Modbus and Arrow libraries, about 90 MB of a service's
    resident memory that a PMU-only site without captures never uses."""
    p = argparse.ArgumentParser(prog="edgepipe", description=__doc__)
    p.add_argument("--version", action="version", version=f"edgepipe {__version__}")
    p.add_argument("--log-level", default=None, help="debug, info, warning, error")
    p.add_argument("--log-format", choices=["auto", "json", "console"], default=None)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the pipeline from a config file")
    run.add_argument("--config", type=Path, required=True, help="TOML config file")
    run.add_argument("--print-alerts", action="store_true", help="also print alerts to stdout")
    run.set_defaults(func=_cmd_run)

    cfg = sub.add_parser("config", help="config file tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfg_sub.add_parser("check", help="validate a config file, list every error")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_config_check)
    if command in _CORE_COMMANDS:
        return p
    _add_tool_parsers(sub)
    return p


def _add_tool_parsers(sub: Any) -> None:
    # Imported here, not at the top: see ``_parser``.
    from edgepipe.app import (  # noqa: PLC0415
        capture_commands,
        demo,
        modbus_commands,
        opcua_commands,
        pmu_commands,
    )

    demo.add_parser(sub)
    probe = sub.add_parser("probe", help="test a connection to a device")
    probe_kinds = probe.add_subparsers(dest="probe_kind", required=True)
    pmu_commands.add_probe_parser(probe_kinds)
    modbus_commands.add_probe_parser(probe_kinds)
    opcua_commands.add_probe_parser(probe_kinds)
    simulate = sub.add_parser("simulate", help="run a device simulator")
    sim_kinds = simulate.add_subparsers(dest="sim_kind", required=True)
    pmu_commands.add_simulate_parser(sim_kinds)
    modbus_commands.add_simulate_parser(sim_kinds)
    opcua_commands.add_simulate_parser(sim_kinds)
    capture_commands.add_parsers(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(_command(argv)).parse_args(argv)
    configure_logging(args.log_level or "info", args.log_format or "auto")
    try:
        code: int = args.func(args)
    except EdgepipeError as exc:
        print(f"edgepipe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
