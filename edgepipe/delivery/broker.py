"""A real mosquitto on a loopback port, for tests, chaos tests and the demo.

Each broker gets a temporary directory with its config, log and (optional) persistence
file; it is stopped by its own PID, never by name.
"""

from __future__ import annotations

__all__ = ["BrokerTls", "MosquittoBroker", "broker_answers", "find_mosquitto"]

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edgepipe.core import DeliveryError

INSTALL_HINT = "mosquitto is not installed: apt-get install mosquitto"
_LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """A second, TLS listener. ``ca_file`` set means clients must present a certificate."""

    cert_file: str
    key_file: str
    ca_file: str | None = None


def find_mosquitto() -> str:
    """Path of the mosquitto binary; ``DeliveryError`` with the install command if absent."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise DeliveryError(INSTALL_HINT)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_LOOPBACK, 0))
        return int(s.getsockname()[1])


# MQTT 3.1.1 CONNECT (§3.1): protocol "MQTT" level 4, clean session, keepalive 10 s,
# client id "edgepipe-probe". Any broker answers it with a CONNACK (packet type 2).
_PROBE_ID = b"edgepipe-probe"
_PROBE_BODY = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(_PROBE_ID).to_bytes(2, "big") + _PROBE_ID
_PROBE = bytes([0x10, len(_PROBE_BODY)]) + _PROBE_BODY
_DISCONNECT = b"\xe0\x00"


def broker_answers(host: str = _LOOPBACK, port: int = 1883, timeout: float = 1.0) -> bool:
    """True if an MQTT broker answers a CONNECT with a CONNACK within ``timeout`` s.

    Speaking MQTT, not only opening a socket, tells a broker from anything else that
    happens to listen on the port.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_PROBE)
            reply = s.recv(4)
            with contextlib.suppress(OSError):
                s.sendall(_DISCONNECT)
    except OSError:
        return False
    return len(reply) >= 2 and reply[0] >> 4 == 2


class MosquittoBroker:
    """One mosquitto process on ``127.0.0.1:<port>`` (a free port unless given).

    ``persistence`` keeps retained messages across :meth:`restart` (mosquitto saves them
    on SIGTERM). Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        persistence: bool = False,
        tls: BrokerTls | None = None,
        binary: str | None = None,
        start_timeout_s: float = 5.0,
        extra_config: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary or find_mosquitto()
        self.host = _LOOPBACK
        self.port = port or free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else 0
        self.persistence = persistence
        self.start_timeout_s = start_timeout_s
        self.extra_config = extra_config  # mosquitto.conf lines, e.g. "autosave_interval 1"
        self._dir = Path(tempfile.mkdtemp(prefix="edgepipe-mosquitto-"))
        self.config_path = self._dir / "mosquitto.conf"
        self.log_path = self._dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self._dir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user "mosquitto", which cannot write the
            # persistence file into our private temporary directory.
            lines.append("user root")
        if self.tls is not None:
            lines += [f"listener {self.tls_port} {self.host}"]
            lines += [f"certfile {self.tls.cert_file}", f"keyfile {self.tls.key_file}"]
            if self.tls.ca_file is not None:
                lines += [f"cafile {self.tls.ca_file}", "require_certificate true"]
        lines += list(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self) -> MosquittoBroker:
        """Start and return once the broker answers MQTT on its port."""
        if self.running:
            return self
        self._write_config()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603  (our binary, our config file)
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DeliveryError(f"mosquitto exited with {self._proc.returncode}: {self.log()}")
            if broker_answers(self.host, self.port, timeout=0.5):
                return self
            time.sleep(0.02)
        self.kill()
        raise DeliveryError(f"mosquitto did not answer on port {self.port}: {self.log()}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (mosquitto saves persistence and exits), SIGKILL after ``timeout_s``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        self._thaw(proc)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash or power loss would: nothing is saved, sockets just die."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill, with ``crash``) and start again on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: sockets stay open but nothing answers (a hung broker or a dead link)."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        if self._proc is not None:
            self._thaw(self._proc)

    @staticmethod
    def _thaw(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)

    def log(self, tail: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MosquittoBroker({self.host}:{self.port}, pid={self.pid})"
