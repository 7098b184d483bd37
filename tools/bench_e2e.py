"""End-to-end benchmark: N simulated PMUs at R frames/s through `edgepipe run`.

The PMU simulator and mosquitto run in their own processes; only the edgepipe process is
measured: CPU use (share of one core) over the measuring period, peak RSS, and the rows
and windows it processed (to show it kept up).

Usage: python tools/bench_e2e.py [--pmus 50] [--rate 60] [--seconds 30] [--hop H] [--models M ...]

``--hop`` and ``--models`` default to the service's own defaults (hop 2, ``pmu_event`` and
``pmu_anomaly``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from edgepipe.app.config import ModelsConfig
from edgepipe.delivery.broker import MosquittoBroker, free_port
from edgepipe.pipeline.windows import WindowConfig

EDGEPIPE = [sys.executable, "-m", "edgepipe.app.cli"]


def config_text(
    pmu_port: int, mqtt_port: int, length: int, hop: int, models: tuple[str, ...] = ("pmu_fault",)
) -> str:
    return f"""
site = "bench"
[logging]
format = "json"
[sources.sim]
type = "pmu"
url = "tcp://127.0.0.1:{pmu_port}"
idcode = 1
nominal_voltage = {230e3 / math.sqrt(3)}
quiet_periods = 60
[windows]
length = {length}
hop = {hop}
[models]
enabled = {json.dumps(list(models))}
[mqtt]
port = {mqtt_port}
"""


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pmus", type=int, default=50)
    ap.add_argument("--rate", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--hop", type=int, default=WindowConfig().hop)
    ap.add_argument(
        "--models", nargs="*", default=list(ModelsConfig().enabled), help="[models] enabled"
    )
    args = ap.parse_args()

    pmu_port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with MosquittoBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        sim = subprocess.Popen(
            [*EDGEPIPE, "--log-level", "warning", "simulate", "pmu", "--port", str(pmu_port),
             "--pmus", str(args.pmus), "--rate", str(args.rate)],
            stdout=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        cfg = Path(tmp) / "bench.toml"
        cfg.write_text(
            config_text(pmu_port, broker.port, args.length, args.hop, tuple(args.models))
        )
        time.sleep(1.0)
        log_path = Path(tmp) / "edgepipe.log"
        with log_path.open("w") as log_file:
            run = subprocess.Popen(
                [*EDGEPIPE, "run", "--config", str(cfg)], stderr=log_file, env=env
            )
            proc = psutil.Process(run.pid)
            time.sleep(args.warmup)
            t0, c0 = time.monotonic(), proc.cpu_times()
            time.sleep(args.seconds)
            t1, c1 = time.monotonic(), proc.cpu_times()
            rss = peak_rss_mb(run.pid)
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=15)
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=10)
        stopped = [
            json.loads(line)
            for line in log_path.read_text().splitlines()
            if '"service_stopped"' in line
        ]
    cpu = (c1.user - c0.user + c1.system - c0.system) / (t1 - t0)
    total = args.warmup + args.seconds
    expected_rows = args.pmus * args.rate * total
    rows = stopped[0]["rows"] if stopped else 0
    print(f"machine: {os.cpu_count()} cpus, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"python {sys.version.split()[0]}")  # fmt: skip
    print(f"load: {args.pmus} PMUs x {args.rate} frames/s, window {args.length}/hop {args.hop}")
    print(f"models: {', '.join(args.models) or 'none'}")
    print(f"edgepipe CPU: {cpu * 100:.1f} % of one core over {t1 - t0:.1f} s")
    print(f"edgepipe peak RSS: {rss:.1f} MB")
    print(f"rows processed: {rows} (about {expected_rows:.0f} sent in {total:.0f} s)")
    if stopped:
        print(f"windows evaluated: {stopped[0]['windows']} in {stopped[0]['evaluations']} batches")
    print(f"exit code after SIGTERM: {code}")
    return 0 if stopped and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
