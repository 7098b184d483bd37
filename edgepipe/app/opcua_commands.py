"""`edgepipe probe opcua` and `edgepipe simulate opcua`.

``probe`` connects (with the security options the source would use), browses one node
(``--browse``, a browse path like ``/Objects/2:DGA``, default ``/Objects``) and prints
its children: NodeId, browse name, class and, for variables, value, StatusCode and
SourceTimestamp. Exit codes: 2 bad arguments, 3 unreachable or refused (untrusted
server: the message says how to trust it), 4 the path does not exist, 0 otherwise.

``simulate`` runs a DGA monitor (H2, CH4, C2H2, C2H4, C2H6, CO, CO2, moisture in ppm)
on an asyncua server, with the scenarios of ``DgaPlant``.
"""

from __future__ import annotations

__all__ = ["add_probe_parser", "add_simulate_parser"]

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from asyncua.ua.uaerrors import UaError

from adapters.opcua.client import connect_client, resolve
from adapters.opcua.config import OpcuaConfig, parse_options
from adapters.opcua.security import POLICIES, UntrustedServerError, ensure_certificate
from adapters.opcua.simulator import SERVER_URI, OpcuaSimulator
from edgepipe.core import ConfigError, TransportError
from edgepipe.pipeline.health import DgaPlant

DGA_NAMES = ("H2", "CH4", "C2H2", "C2H4", "C2H6", "CO", "CO2", "MOISTURE")


def _security_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--security", choices=("None", "Sign", "SignAndEncrypt"), default="None")
    p.add_argument("--policy", choices=sorted(POLICIES), default="Basic256Sha256")
    p.add_argument("--cert", help="client certificate (DER or PEM)")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--trust-dir", help="directory of trusted server certificates")
    p.add_argument("--trust-server", action="store_true", help="accept any server certificate")
    p.add_argument("--username")
    p.add_argument("--password-file")


def add_probe_parser(probe_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = probe_subparsers.add_parser(
        "opcua", help="connect to an OPC-UA server and browse one node"
    )
    p.add_argument("url", help="opc.tcp://HOST:PORT[/path]")
    p.add_argument("--browse", default="/Objects", help="browse path or NodeId to list")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _security_args(p)
    p.set_defaults(func=run_probe)
    return p


def _config(args: argparse.Namespace) -> OpcuaConfig:
    opts: dict[str, Any] = {
        "url": args.url, "security": args.security, "policy": args.policy,
        "trust_server": args.trust_server, "nodes": {"probe": "i=2253"},
    }  # fmt: skip
    for key, value in (("certificate", args.cert), ("private_key", args.key),
                       ("trust_dir", args.trust_dir), ("username", args.username),
                       ("password_file", args.password_file)):  # fmt: skip
        if value:
            opts[key] = value
    return parse_options("probe", opts)


def run_probe(args: argparse.Namespace) -> int:
    try:
        cfg = _config(args)
    except ConfigError as exc:
        print(f"edgepipe probe opcua: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(probe(cfg, args.browse, args.json, sys.stdout))


async def probe(cfg: OpcuaConfig, path: str, as_json: bool, out: TextIO) -> int:
    try:
        client = await connect_client(cfg)
    except UntrustedServerError as exc:
        print(f"edgepipe probe opcua: {exc}", file=sys.stderr)
        return 3
    except TransportError as exc:
        print(f"edgepipe probe opcua: {exc}", file=sys.stderr)
        return 3
    try:
        node = await resolve(client, path)
        children = await node.get_children()
        for child in children:
            out.write(_line(await _describe(child), as_json))
    except UaError as exc:
        print(f"edgepipe probe opcua: {path}: {exc}", file=sys.stderr)
        return 4
    finally:
        await client.disconnect()
    out.flush()
    return 0


async def _describe(node: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "node_id": node.nodeid.to_string(),
        "browse_name": (await node.read_browse_name()).to_string(),
        "class": (await node.read_node_class()).name,
    }
    if info["class"] == "Variable":
        dv = await node.read_data_value()
        value = dv.Value.Value if dv.Value is not None else None
        info["value"] = value if isinstance(value, int | float | str | bool) else repr(value)
        info["status"] = dv.StatusCode.name if dv.StatusCode is not None else "Good"
        ts = dv.SourceTimestamp
        info["source_timestamp"] = ts.isoformat() if ts is not None else None
    return info


def _line(info: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(info) + "\n"
    extra = f"  = {info['value']} ({info['status']})" if "value" in info else ""
    return f"{info['node_id']:24} {info['browse_name']:24} {info['class']}{extra}\n"


def add_simulate_parser(simulate_subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = simulate_subparsers.add_parser(
        "opcua", help="a DGA monitor on an OPC-UA server, until Ctrl-C"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4840)
    p.add_argument("--scenario", choices=("normal", "thermal", "arcing"), default="normal")
    p.add_argument("--time-scale", type=float, default=1.0, help="model seconds per second")
    p.add_argument("--event-at", type=float, default=0.0, help="model seconds until the fault")
    p.add_argument("--period", type=float, default=1.0, help="seconds between updates")
    p.add_argument(
        "--security", action="append", default=[], metavar="POLICY,MODE",
        help="add an endpoint, e.g. Basic256Sha256,SignAndEncrypt (repeatable)",
    )  # fmt: skip
    p.add_argument("--no-none", action="store_true", help="no endpoint without security")
    p.add_argument("--cert-dir", type=Path, default=Path("opcua-sim-pki"),
                   help="server certificate and key (created when missing)")  # fmt: skip
    p.add_argument("--username", default="")
    p.add_argument("--password", default="")
    p.set_defaults(func=run_simulate)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    try:
        policies = [tuple(s.split(",")) for s in args.security]
        for pol in policies:
            if len(pol) != 2 or pol[0] not in POLICIES or pol[1] not in ("Sign", "SignAndEncrypt"):
                raise ValueError(f"bad --security {','.join(pol)!r}: POLICY,Sign|SignAndEncrypt")
    except ValueError as exc:
        print(f"edgepipe simulate opcua: {exc}", file=sys.stderr)
        return 2
    plant = DgaPlant(args.scenario, args.time_scale, args.event_at)

    def values(t: float) -> dict[str, float]:
        return {k.upper(): v for k, v in plant.values(t).items()}

    async def serve() -> None:
        cert = key = None
        if policies:
            cert, key = await ensure_certificate(args.cert_dir, "server", SERVER_URI, server=True)
        sim = OpcuaSimulator(
            DGA_NAMES, values, host=args.host, port=args.port, period_s=args.period,
            policies=[(p[0], p[1]) for p in policies], certificate=cert, private_key=key,
            allow_none=not args.no_none, username=args.username, password=args.password,
        )  # fmt: skip
        async with sim:
            print(f"opcua simulator on {sim.url} scenario {args.scenario}", file=sys.stderr,
                  flush=True)  # fmt: skip
            await asyncio.Event().wait()

    from edgepipe.app.cli import run_until_signal  # noqa: PLC0415 - cli imports this module

    return run_until_signal(serve())
