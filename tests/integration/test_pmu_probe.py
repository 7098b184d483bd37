"""``edgepipe probe pmu`` and ``edgepipe simulate pmu`` as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.c37118.simulator import PmuSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


# A tiny stand-in for the app's CLI (``edgepipe probe pmu ...``, ``simulate pmu ...``),
# run in a child process so stdout, stderr and the exit status are the user's.
_MAIN = """
import argparse, sys
from edgepipe.app.logs import configure_logging
from edgepipe.app.pmu_commands import add_probe_parser, add_simulate_parser
configure_logging("warning")
parser = argparse.ArgumentParser(prog="edgepipe")
sub = parser.add_subparsers(required=True)
add_probe_parser(sub.add_parser("probe").add_subparsers(required=True))
add_simulate_parser(sub.add_parser("simulate").add_subparsers(required=True))
args = parser.parse_args()
sys.exit(args.func(args))
"""


async def _probe(*argv: str) -> tuple[int, str, str]:
    """Run the probe in a child process, as from a shell (stdout and stderr apart)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _MAIN, "probe", "pmu", *argv,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def _server(reply: bytes | None) -> AsyncIterator[int]:
    """A TCP server that answers anything with ``reply`` (None: never answers)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        if reply is not None:
            writer.write(reply)
            await writer.drain()
            writer.close()
        else:
            await reader.read()  # silent until the probe hangs up

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_probe_prints_config_and_frames_as_json_lines() -> None:
    async with PmuSimulator(SimulatorConfig(port=0, n_pmus=2, rate_hz=50, idcode=9)) as sim:
        rc, out, err = await _probe(f"tcp://127.0.0.1:{sim.port}", "--idcode", "9",
                                    "--frames", "3", "--json", "--timeout", "2")  # fmt: skip
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["type"] for x in lines] == ["cfg2", "data", "data", "data"]
    cfg = lines[0]
    assert (cfg["idcode"], cfg["rate_hz"], len(cfg["pmus"])) == (9, 50.0, 2)
    assert [p["name"] for p in cfg["pmus"][0]["phasors"]][:3] == ["VA", "VB", "VC"]
    data = lines[1]
    va = data["pmus"][0]["phasors"]["VA"]["mag"]
    assert 120e3 < va < 145e3
    assert lines[2]["time_ns"] - lines[1]["time_ns"] == 20_000_000  # 1/50 s apart


async def test_probe_text_output_is_readable() -> None:
    async with PmuSimulator(SimulatorConfig(port=0, rate_hz=10)) as sim:
        rc, out, err = await _probe(f"tcp://127.0.0.1:{sim.port}", "--idcode", "1",
                                    "--frames", "1")  # fmt: skip
    assert rc == 0, err
    assert out.startswith("CFG2 IDCODE 1")
    assert "PMU1 IDCODE 2" in out and "\ndata " in out and "VA=" in out


async def test_probe_unreachable_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        rc, out, err = await _probe(f"tcp://127.0.0.1:{port}", "--idcode", "1")
    assert rc == 3 and out == ""
    assert len(err.strip().splitlines()) == 1 and "cannot reach" in err
    assert err.count(f"127.0.0.1:{port}") == 1


@pytest.mark.parametrize(
    "argv", [["--idcode", "70000"], ["--idcode", "0"], ["--idcode", "1", "--timeout", "0"]]
)
async def test_probe_bad_arguments_exit_2(argv: list[str]) -> None:
    rc, out, err = await _probe("tcp://127.0.0.1:9", *argv)
    assert rc == 2 and out == "" and "Traceback" not in err


async def test_probe_silent_server() -> None:
    async with _server(None) as port:
        rc, out, err = await _probe(f"tcp://127.0.0.1:{port}", "--idcode", "1", "--timeout", "0.5")
    assert rc == 4 and out == ""
    assert "no configuration frame from" in err and "within 0.5 s" in err


async def test_probe_http_server_is_not_a_pmu() -> None:
    async with _server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
        rc, out, err = await _probe(f"tcp://127.0.0.1:{port}", "--idcode", "1")
    assert rc == 5 and out == ""
    assert "does not speak C37.118" in err and len(err.strip().splitlines()) == 1


# A header frame with a CHK that does not match (C37.118.2 6.2): AA 11, 18 bytes, IDCODE 1
_BAD_FRAME = bytes.fromhex("aa1100120001000000000000000048690000")


@contextlib.asynccontextmanager
async def _junk_proxy(port: int, junk: bytes) -> AsyncIterator[int]:
    """A TCP proxy to ``port`` that sends ``junk`` to the client before the PMU's bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        writer.write(junk)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(4096):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_probe_skips_junk_before_a_good_stream() -> None:
    # A stray prefix and one bad-CHK frame ahead of the PMU's answer: counted, skipped,
    # and the probe carries on, as the service does.
    sim_cfg = SimulatorConfig(port=0, rate_hz=50)
    async with (
        PmuSimulator(sim_cfg) as sim,
        _junk_proxy(sim.port, b"\x00\x01junk" + _BAD_FRAME) as port,
    ):
        rc, out, err = await _probe(f"tcp://127.0.0.1:{port}", "--idcode", "1", "--frames", "2")
    assert rc == 0, err
    assert out.count("\n") >= 3  # the config and two frames


async def test_probe_names_the_idcode_that_answered() -> None:
    async with PmuSimulator(SimulatorConfig(port=0, rate_hz=50, any_idcode=True)) as sim:
        rc, _, err = await _probe(
            f"tcp://127.0.0.1:{sim.port}", "--idcode", "9", "--timeout", "0.5"
        )
    assert rc == 4 and "it answered for IDCODE 1 (try --idcode)" in err


async def test_simulate_command_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _MAIN, "simulate", "pmu", "--port", "0", "--pmus", "3",
        "--rate", "25", "--idcode", "4", "--fault-at", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    port = line.split("tcp://127.0.0.1:")[1].split(":")[0]
    rc, out, err = await _probe(f"tcp://127.0.0.1:{port}", "--idcode", "4", "--json",
                                "--frames", "1")  # fmt: skip
    assert rc == 0, err
    assert len(json.loads(out.splitlines()[1])["pmus"]) == 3
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
