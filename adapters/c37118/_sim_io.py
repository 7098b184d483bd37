"""The simulator's asyncio protocols: one per TCP client, one for the UDP socket."""

from __future__ import annotations

__all__ = ["Peer", "TcpPeerProtocol", "UdpServerProtocol"]

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import structlog

from adapters.c37118.codec import NEED_DATA, Decoder, decode_frame
from adapters.c37118.frames import CommandFrame
from edgepipe.core import ProtocolError

if TYPE_CHECKING:
    from adapters.c37118.simulator import PmuSimulator

log = structlog.get_logger()

# A client that stops reading must not make the simulator buffer without bound.
_MAX_BUFFERED = 1 << 20


class Peer:
    """One receiver of frames: a TCP connection, a UDP address, a spontaneous target."""

    __slots__ = ("_close", "_send", "_send_data", "dropped", "name", "streaming")

    def __init__(
        self,
        send: Callable[[bytes], None],
        name: str,
        close: Callable[[], None] | None = None,
        send_data: Callable[[bytes], None] | None = None,
    ) -> None:
        self._send = send
        self._send_data = send_data or send
        self._close = close
        self.name = name
        self.streaming = False
        self.dropped = 0

    def send(self, data: bytes) -> None:
        self._send(data)

    def send_data(self, data: bytes) -> None:
        """Data frames: the same path as ``send`` unless the device sends data by UDP."""
        self._send_data(data)

    def close(self) -> None:
        if self._close is not None:
            self._close()


class TcpPeerProtocol(asyncio.Protocol):
    """Commands and data on one TCP connection (C37.118.2 clause 7.2)."""

    def __init__(self, sim: PmuSimulator) -> None:
        self.sim = sim
        self.decoder = Decoder()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        name = str(peername)
        udp = self.sim.udp_data_sender(str(peername[0]))
        self.peer = Peer(self._send, name, transport.close, udp)
        self.sim.add_peer(self.peer)
        log.info("pmu_sim_client_connected", peer=name)

    def _send(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > _MAX_BUFFERED and self.peer is not None:
            self.peer.dropped += 1
            return
        t.write(data)

    def data_received(self, data: bytes) -> None:
        self.decoder.receive_data(data)
        while True:
            event = self.decoder.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, CommandFrame) and self.peer is not None:
                self.sim.on_command(event, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.sim.remove_peer(self.peer)
            log.info("pmu_sim_client_disconnected", peer=self.peer.name)
        self.transport = None


class UdpServerProtocol(asyncio.DatagramProtocol):
    """Commands over UDP; data goes to each address that sent TURN_ON (clause 7.3)."""

    def __init__(self, sim: PmuSimulator) -> None:
        self.sim = sim
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: dict[tuple[str, int], Peer] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        key = (str(addr[0]), int(addr[1]))
        try:
            frame = decode_frame(data, {})
        except ProtocolError:
            return
        if not isinstance(frame, CommandFrame):
            return
        peer = self.peers.get(key)
        if peer is None:
            transport = self.transport
            assert transport is not None
            peer = Peer(lambda b: transport.sendto(b, key), f"{key[0]}:{key[1]}")
            self.peers[key] = peer
            self.sim.add_peer(peer)
        self.sim.on_command(frame, peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: harmless on UDP.
        log.debug("pmu_sim_udp_error", error=str(exc))
