"""The service side of systemd's notify protocol (sd_notify(3)), without libsystemd.

Messages are newline-separated ``KEY=VALUE`` assignments sent as one datagram to the
``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract namespace).
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

__all__ = ["Notifier", "watchdog_interval_s"]

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger("edgepipe.systemd")


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` (as sd_watchdog_enabled(3) advises), if it is for us."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the event loop on systemd: a full socket drops the message.
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> None:
        if self._sock is None:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            self._sock.sendto(message, self._address)
        except OSError as exc:  # systemd gone or socket full: never fatal to the service
            log.warning("sd_notify_failed", error=str(exc))

    def ready(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def watchdog(self) -> None:
        self.send(WATCHDOG=1)

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd >= 253 match the reload to this message.
        self.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def reloaded(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def stopping(self) -> None:
        self.send(STOPPING=1, STATUS="stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
