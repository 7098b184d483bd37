"""Byte links of the PMU client: TCP stream, UDP socket (connected or listening).

Each link hands received bytes to callbacks and resolves ``closed`` when it fails; the
client owns the protocol logic. ``OSError``s are translated to ``TransportError`` here,
where they enter.
"""

from __future__ import annotations

__all__ = ["Link", "open_tcp", "open_udp"]

import asyncio
from collections.abc import Callable

from edgepipe.core import TransportError

OnBytes = Callable[[bytes], None]


class Link:
    """One open socket: ``send`` bytes, ``closed`` resolves (with an error) when it ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._send: Callable[[bytes], None] | None = None
        self._close: Callable[[], None] | None = None

    def send(self, data: bytes) -> None:
        if self._send is not None and not self.closed.done():
            self._send(data)

    def close(self) -> None:
        if self._close is not None:
            self._close()
        self.fail(None)

    def fail(self, exc: BaseException | None) -> None:
        if self.closed.done():
            return
        if exc is None:
            self.closed.set_result(None)
        else:
            self.closed.set_exception(exc)
            # Nobody awaits a link that fails during shutdown: mark it seen, no warning.
            self.closed.exception()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, link: Link, on_bytes: OnBytes) -> None:
        self.link, self.on_bytes = link, on_bytes

    def data_received(self, data: bytes) -> None:
        try:
            self.on_bytes(data)
        except Exception as exc:  # a failing consumer ends the link, visibly
            self.link.fail(exc)

    def eof_received(self) -> bool | None:
        self.link.fail(TransportError(f"{self.link.name}: closed by the peer"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self.link.fail(TransportError(f"{self.link.name}: connection lost{reason}"))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: Link, on_bytes: OnBytes) -> None:
        self.link, self.on_bytes = link, on_bytes

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self.on_bytes(data)
        except Exception as exc:
            self.link.fail(exc)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the PMU is not there (yet). Commands are retried, and a
        # stream that never starts is reported quiet; do not tear the socket down.
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.fail(TransportError(f"{self.link.name}: socket closed") if exc else None)


async def open_tcp(host: str, port: int, timeout_s: float, on_bytes: OnBytes) -> Link:
    """Connect to ``host:port`` within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    link = Link(f"tcp://{host}:{port}")
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: _TcpProtocol(link, on_bytes), host, port), timeout_s
        )
    except TimeoutError as exc:
        raise TransportError(f"{link.name}: connect timed out after {timeout_s} s") from exc
    except OSError as exc:
        raise TransportError(f"{link.name}: {exc.strerror or exc}") from exc
    link._send = transport.write
    link._close = transport.close
    return link


async def open_udp(host: str, port: int, on_bytes: OnBytes, *, listen: bool) -> Link:
    """A UDP socket to ``host:port`` (commands and data with the PMU), or, with
    ``listen``, bound to ``host:port`` to receive a stream sent to us."""
    loop = asyncio.get_running_loop()
    link = Link(f"udp://{host}:{port}")
    local = (host, port) if listen else None
    remote = None if listen else (host, port)
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(link, on_bytes), local_addr=local, remote_addr=remote
        )
    except OSError as exc:
        raise TransportError(f"{link.name}: {exc.strerror or exc}") from exc
    if not listen:
        link._send = transport.sendto
    link._close = transport.close
    return link
