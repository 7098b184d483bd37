"""A loopback HTTP endpoint for `/metrics` (Prometheus) and `/healthz`.

Deliberately tiny (HTTP/1.0, GET only, one request per connection): it serves a scraper
and a health probe on 127.0.0.1, nothing else.
"""

from __future__ import annotations

__all__ = ["HttpEndpoint"]

import asyncio
import contextlib
import json
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry

from edgepipe.app.health import HealthReport
from edgepipe.app.metrics import render

log = structlog.get_logger("edgepipe.http")

_MAX_REQUEST = 8192
_TIMEOUT_S = 5.0


class HttpEndpoint:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: Callable[[], HealthReport]
    ) -> None:
        self._host, self._port = host, port
        self._registry = registry
        self._health = health
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("http_listening", host=self._host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, ctype, body = self._respond(head[:_MAX_REQUEST])
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, ctype, body = "400 Bad Request", "text/plain", b"bad request\n"
        header = (
            f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(header.encode() + body)
            await writer.drain()
        writer.close()

    def _respond(self, head: bytes) -> tuple[str, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or parts[0] != b"GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        path = parts[1].split(b"?", 1)[0]
        if path == b"/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", render(self._registry)
        if path == b"/healthz":
            report = self._health()
            body = json.dumps(report.to_dict()).encode() + b"\n"
            status = "200 OK" if report.ok else "503 Service Unavailable"
            return status, "application/json", body
        return "404 Not Found", "text/plain", b"try /metrics or /healthz\n"
