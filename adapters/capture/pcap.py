"""Read pcap/pcapng captures into per-flow payload streams (sans-IO: a file or bytes).

Each direction of a TCP connection or UDP conversation is one :class:`Flow`. TCP
streams are reassembled by sequence number: out-of-order segments are put back in
order, retransmitted and overlapping bytes are kept once, and missing bytes are counted
in ``Flow.gaps``. The payloads still need a protocol decoder that copes with frames
spanning chunks (a frame may span segments, a segment may hold several frames).

Link types: Ethernet (with VLAN tags), Linux cooked capture v1 and v2, raw IP, BSD
loopback; network layers IPv4 and IPv6. IP fragments are not reassembled.
"""

from __future__ import annotations

__all__ = ["Flow", "FlowKey", "read_flows"]

import io
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

from edgepipe.core import ProtocolError

_ETH, _NULL, _RAW, _RAW_ALT, _LOOP = 1, 0, 101, 12, 108
_IPV4_LT, _IPV6_LT, _SLL, _SLL2 = 228, 229, 113, 276
_ETH_IP, _ETH_IP6 = 0x0800, 0x86DD
_SEQ_MOD = 1 << 32


@dataclass(frozen=True, slots=True, order=True)
class FlowKey:
    """One direction of a conversation."""

    src: str
    sport: int
    dst: str
    dport: int
    transport: str  # "tcp" or "udp"

    def __str__(self) -> str:
        return f"{self.src}:{self.sport} -> {self.dst}:{self.dport}/{self.transport}"


@dataclass(frozen=True, slots=True)
class Flow:
    """The payload of one direction, in stream order, as (capture time ns, bytes) chunks."""

    key: FlowKey
    transport: str
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    gaps: int = 0  # TCP bytes never captured

    def payload(self) -> bytes:
        return b"".join(c for _, c in self.chunks)


def _ip_from_link(linktype: int, buf: bytes) -> Any:
    """The dpkt IP/IP6 packet inside one link-layer frame, or None."""
    if linktype == _ETH:
        eth = dpkt.ethernet.Ethernet(buf)
        return eth.data if isinstance(eth.data, dpkt.ip.IP | dpkt.ip6.IP6) else None
    if linktype == _SLL:
        proto, inner = struct.unpack_from(">H", buf, 14)[0], buf[16:]
    elif linktype == _SLL2:
        proto, inner = struct.unpack_from(">H", buf, 0)[0], buf[20:]
    elif linktype in (_NULL, _LOOP):
        inner = buf[4:]
        proto = _ETH_IP6 if inner[:1] and inner[0] >> 4 == 6 else _ETH_IP
    elif linktype in (_RAW, _RAW_ALT, _IPV4_LT, _IPV6_LT):
        inner = buf
        proto = _ETH_IP6 if inner[:1] and inner[0] >> 4 == 6 else _ETH_IP
    else:
        raise ProtocolError(f"unsupported capture link type {linktype}")
    if proto == _ETH_IP:
        return dpkt.ip.IP(inner)
    if proto == _ETH_IP6:
        return dpkt.ip6.IP6(inner)
    return None


def _addr(ip: Any) -> tuple[str, str]:
    family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
    return socket.inet_ntop(family, ip.src), socket.inet_ntop(family, ip.dst)


def _packets(stream: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """(time ns, link-layer frame, link type) of every packet."""
    try:
        reader = dpkt.pcap.UniversalReader(stream)
        linktype = reader.datalink()
        nano = getattr(reader, "_divisor", 1e6) == 1e9
        for ts, buf in reader:
            ts_ns = round(ts * 1e9) if nano else round(ts * 1e6) * 1000
            yield ts_ns, buf, linktype
    except (ValueError, dpkt.dpkt.NeedData, struct.error) as exc:
        raise ProtocolError(f"not a readable pcap/pcapng capture: {exc}") from exc


class _TcpStream:
    """Segments of one TCP direction, assembled by sequence number at the end."""

    __slots__ = ("base", "segments")

    def __init__(self) -> None:
        self.base: int | None = None
        self.segments: list[tuple[int, int, bytes]] = []  # absolute seq, ts, data

    def add(self, ts: int, seq: int, syn: bool, data: bytes) -> None:
        if syn:
            # The SYN consumes one sequence number before the first payload byte.
            self.base = (seq + 1) % _SEQ_MOD
        if data:
            if self.base is None:
                self.base = seq
            self.segments.append((seq, ts, data))

    def _rel(self, seq: int) -> int:
        rel = (seq - (self.base or 0)) % _SEQ_MOD
        # Bytes just before the base (retransmitted pre-capture data) would wrap around;
        # give them negative offsets instead.
        return rel - _SEQ_MOD if rel > _SEQ_MOD // 2 else rel

    def assemble(self) -> tuple[list[tuple[int, bytes]], int]:
        """Chunks in stream order (first copy of each byte wins) and missing bytes."""
        ordered = sorted(
            ((self._rel(seq), i, ts, data) for i, (seq, ts, data) in enumerate(self.segments)),
            key=lambda s: (s[0], s[1]),
        )
        chunks: list[tuple[int, bytes]] = []
        nxt: int | None = None
        gaps = 0
        for rel, _, ts, data in ordered:
            if nxt is None:
                nxt = rel
            end = rel + len(data)
            if end <= nxt:
                continue  # a retransmission of bytes already placed
            if rel > nxt:
                gaps += rel - nxt
                nxt = rel
            chunks.append((ts, data[nxt - rel :]))
            nxt = end
        return chunks, gaps


def read_flows(source: str | Path | bytes | BinaryIO) -> list[Flow]:
    """Every TCP and UDP flow with a payload, in order of first appearance."""
    if isinstance(source, bytes):
        stream: BinaryIO = io.BytesIO(source)
    elif isinstance(source, str | Path):
        stream = io.BytesIO(Path(source).read_bytes())
    else:
        stream = source
    udp: dict[FlowKey, list[tuple[int, bytes]]] = {}
    tcp: dict[FlowKey, _TcpStream] = {}
    order: list[FlowKey] = []
    for ts, buf, linktype in _packets(stream):
        try:
            ip = _ip_from_link(linktype, buf)
        except (dpkt.dpkt.UnpackError, struct.error, IndexError):
            continue  # a truncated or foreign frame: not ours to decode
        if ip is None:
            continue
        _add_segment(ts, ip, tcp, udp, order)
    flows = []
    for key in order:
        if key.transport == "udp":
            flows.append(Flow(key, "udp", udp[key]))
            continue
        chunks, gaps = tcp[key].assemble()
        if chunks:
            flows.append(Flow(key, "tcp", chunks, gaps))
    return flows


def _interleave(addrs: tuple[str, str], seg: Any) -> tuple[str, int, str, int]:
    return addrs[0], int(seg.sport), addrs[1], int(seg.dport)


def _add_segment(
    ts: int,
    ip: Any,
    tcp: dict[FlowKey, _TcpStream],
    udp: dict[FlowKey, list[tuple[int, bytes]]],
    order: list[FlowKey],
) -> None:
    seg = ip.data
    if isinstance(seg, dpkt.tcp.TCP):
        key = FlowKey(*_interleave(_addr(ip), seg), "tcp")
        if key not in tcp:
            tcp[key] = _TcpStream()
            order.append(key)
        tcp[key].add(ts, seg.seq, bool(seg.flags & dpkt.tcp.TH_SYN), bytes(seg.data))
    elif isinstance(seg, dpkt.udp.UDP) and seg.data:
        key = FlowKey(*_interleave(_addr(ip), seg), "udp")
        if key not in udp:
            udp[key] = []
            order.append(key)
        udp[key].append((ts, bytes(seg.data)))
