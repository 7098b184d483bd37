"""Read pcap/pcapng captures into per-flow payload streams (sans-IO: a file or bytes).

Each direction of a TCP connection or UDP conversation is one :class:`Flow`. TCP
streams are reassembled by sequence number: out-of-order segments are put back in
order, retransmitted and overlapping bytes are kept once, and missing bytes are counted
in ``Flow.gaps``. The payloads still need a protocol decoder that copes with frames
spanning chunks (a frame may span segments, a segment may hold several frames).

Link types: Ethernet (with VLAN tags), Linux cooked capture v1 and v2, raw IP, BSD
loopback; network layers IPv4 and IPv6. IP fragments are not reassembled.

Before any packet is decoded the file's record (pcap) or block (pcapng) framing is walked
from start to end: a record header cut short, a record longer than the snapshot length
allows (a corrupt length field) or longer than the bytes left, and a pcapng block whose
two length fields disagree all end the readable part. Everything before it is read;
:func:`read_pcap` says where and why the rest was not (:class:`PcapDamage`).
"""

from __future__ import annotations

__all__ = ["Flow", "FlowKey", "PcapContents", "PcapDamage", "read_flows", "read_pcap"]

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
#: Largest record a pcap may hold whatever its snapshot length says (libpcap and
#: Wireshark use the same bound, MAXIMUM_SNAPLEN / WTAP_MAX_PACKET_SIZE_STANDARD).
_MAX_RECORD = 262_144
# Classic pcap magic (as the file's first 4 bytes) -> (byte order, record header size).
_CLASSIC = {
    b"\xa1\xb2\xc3\xd4": (">", 16), b"\xa1\xb2\x3c\x4d": (">", 16),
    b"\xa1\xb2\xcd\x34": (">", 24), b"\xd4\xc3\xb2\xa1": ("<", 16),
    b"\x4d\x3c\xb2\xa1": ("<", 16), b"\x34\xcd\xb2\xa1": ("<", 24),
}  # fmt: skip
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_PACKETS = (2, 3, 6)  # obsolete packet, simple packet, enhanced packet blocks


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


@dataclass(frozen=True, slots=True)
class PcapDamage:
    """Where a capture file stops being readable: ``offset`` (bytes from the start of
    the file) of the first record or block that is cut short or corrupt, its number
    (1-based, records for pcap, blocks for pcapng) and what is wrong with it."""

    offset: int
    record: int
    reason: str

    def __str__(self) -> str:
        return f"cut short or corrupt at byte {self.offset} (record {self.record}): {self.reason}"


@dataclass(frozen=True, slots=True)
class PcapContents:
    flows: list[Flow]
    packets: int  # packets read (before ``damage``, when there is one)
    size: int  # bytes in the file
    damage: PcapDamage | None = None  # None: every byte of the file was read
    non_ip: int = 0  # packets that are not IPv4/IPv6 (ARP, LLDP, ...)
    undecodable: int = 0  # link or IP headers that do not parse (cut by the snaplen, ...)


def _classic_end(data: bytes) -> tuple[int, PcapDamage | None]:
    """Bytes of whole records in a classic pcap, and what stopped the walk early."""
    order, hdr = _CLASSIC[data[:4]]
    if len(data) < 24:
        return len(data), None  # the reader reports the short file header
    snaplen = struct.unpack_from(order + "I", data, 16)[0]
    limit = max(snaplen, _MAX_RECORD)
    pos, n = 24, 0
    while pos < len(data):
        n += 1
        left = len(data) - pos
        if left < hdr:
            return pos, PcapDamage(pos, n, f"record header cut short ({left} of {hdr} bytes)")
        caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
        if caplen > limit:
            why = f"record length {caplen} is more than the snapshot length {snaplen} allows"
            return pos, PcapDamage(pos, n, why)
        if caplen > left - hdr:
            why = f"record of {caplen} bytes cut short ({left - hdr} bytes left in the file)"
            return pos, PcapDamage(pos, n, why)
        pos += hdr + caplen
    return pos, None


def _pcapng_end(data: bytes) -> tuple[int, PcapDamage | None]:
    """Bytes of whole blocks in a pcapng, and what stopped the walk early."""
    pos, n, order = 0, 0, "<"
    while pos < len(data):
        n += 1
        left = len(data) - pos
        if left < 12:
            return pos, PcapDamage(pos, n, f"block header cut short ({left} of 12 bytes)")
        if data[pos : pos + 4] == _PCAPNG_SHB:  # a section sets its own byte order
            bom = data[pos + 8 : pos + 12]
            if bom not in (b"\x1a\x2b\x3c\x4d", b"\x4d\x3c\x2b\x1a"):
                return pos, PcapDamage(pos, n, f"section header byte-order magic {bom.hex()}")
            order = ">" if bom == b"\x1a\x2b\x3c\x4d" else "<"
        blen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blen < 12 or blen % 4:
            return pos, PcapDamage(pos, n, f"block length {blen} (a multiple of 4, >= 12)")
        if blen > left:
            why = f"block of {blen} bytes cut short ({left} bytes left in the file)"
            return pos, PcapDamage(pos, n, why)
        trailer = struct.unpack_from(order + "I", data, pos + blen - 4)[0]
        if trailer != blen:
            why = f"block length {blen} at its start, {trailer} at its end"
            return pos, PcapDamage(pos, n, why)
        pos += blen
    return pos, None


def _readable(data: bytes) -> tuple[int, PcapDamage | None]:
    if data[:4] in _CLASSIC:
        return _classic_end(data)
    if data[:4] == _PCAPNG_SHB:
        return _pcapng_end(data)
    return len(data), None  # not a capture: the reader says so


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
    """Every TCP and UDP flow with a payload, in order of first appearance (of the
    readable part of the file: :func:`read_pcap` also says what was not read)."""
    return read_pcap(source).flows


def read_pcap(source: str | Path | bytes | BinaryIO) -> PcapContents:
    """The flows of a pcap/pcapng and how much of the file was read. A file that cannot
    be opened or is no capture at all is a ``ProtocolError`` naming it; a file that is
    cut short or corrupt part way gives the flows before the damage and ``damage``."""
    name = f"{source}: " if isinstance(source, str | Path) else ""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str | Path):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ProtocolError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    else:
        data = source.read()
    end, damage = _readable(data)
    udp: dict[FlowKey, list[tuple[int, bytes]]] = {}
    tcp: dict[FlowKey, _TcpStream] = {}
    order: list[FlowKey] = []
    packets = non_ip = undecodable = 0
    try:
        for ts, buf, linktype in _packets(io.BytesIO(data[:end])):
            packets += 1
            try:
                ip = _ip_from_link(linktype, buf)
            except (dpkt.dpkt.UnpackError, struct.error, IndexError):
                undecodable += 1  # a truncated or foreign frame: not ours to decode
                continue
            if ip is None:
                non_ip += 1
                continue
            _add_segment(ts, ip, tcp, udp, order)
    except ProtocolError as exc:
        where = f" ({damage})" if damage is not None else ""
        raise ProtocolError(f"{name}{exc}{where}") from exc
    flows = []
    for key in order:
        if key.transport == "udp":
            flows.append(Flow(key, "udp", udp[key]))
            continue
        chunks, gaps = tcp[key].assemble()
        if chunks:
            flows.append(Flow(key, "tcp", chunks, gaps))
    return PcapContents(flows, packets, len(data), damage, non_ip, undecodable)


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
