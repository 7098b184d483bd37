"""pcap/pcapng reading: link types, IPv4/IPv6, TCP reassembly by sequence number."""

from __future__ import annotations

import io
import socket
import struct
from pathlib import Path

import dpkt
import pytest

from adapters.capture.pcap import read_flows, read_pcap
from edgepipe.core import ProtocolError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
A4, B4 = socket.inet_pton(socket.AF_INET, "10.0.0.1"), socket.inet_pton(socket.AF_INET, "10.0.0.2")
A6, B6 = socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(socket.AF_INET6, "fd00::2")


def tcp_ip4(seq: int, data: bytes, flags: int = dpkt.tcp.TH_ACK) -> dpkt.ip.IP:
    seg = dpkt.tcp.TCP(sport=4712, dport=50000, seq=seq % 2**32, flags=flags, data=data)
    return dpkt.ip.IP(src=A4, dst=B4, p=dpkt.ip.IP_PROTO_TCP, data=seg)


def udp_ip6(data: bytes) -> dpkt.ip6.IP6:
    dgram = dpkt.udp.UDP(sport=4713, dport=4712, data=data)
    dgram.ulen = len(dgram)
    return dpkt.ip6.IP6(
        src=A6, dst=B6, nxt=dpkt.ip.IP_PROTO_UDP, hlim=64, data=dgram, plen=len(dgram)
    )


def ether(ip: dpkt.Packet) -> bytes:
    etype = (
        dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    )
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=etype, data=ip))


def pcap(packets: list[bytes], linktype: int = dpkt.pcap.DLT_EN10MB, ng: bool = False) -> bytes:
    out = io.BytesIO()
    writer = (
        dpkt.pcapng.Writer(out, linktype=linktype)
        if ng
        else dpkt.pcap.Writer(out, linktype=linktype)
    )
    for i, pkt in enumerate(packets):
        writer.writepkt(pkt, ts=1_700_000_000 + i * 0.5)
    return out.getvalue()


def test_tcp_reassembles_out_of_order_retransmitted_and_overlapping_segments() -> None:
    stream = bytes(range(256)) * 4
    isn = 0xFFFFFF00  # the sequence numbers wrap around 2^32 inside the stream
    segs = [
        tcp_ip4(isn, b"", dpkt.tcp.TH_SYN),
        tcp_ip4(isn + 1, stream[:100]),
        tcp_ip4(isn + 1 + 300, stream[300:600]),  # arrives before the bytes it follows
        tcp_ip4(isn + 1 + 100, stream[100:300]),
        tcp_ip4(isn + 1 + 100, stream[100:300]),  # retransmission
        tcp_ip4(isn + 1 + 550, stream[550:900]),  # overlaps the 300..600 segment
        tcp_ip4(isn + 1 + 900, stream[900:]),
    ]
    (flow,) = read_flows(pcap([ether(s) for s in segs]))
    assert flow.payload() == stream
    assert flow.gaps == 0
    assert str(flow.key) == "10.0.0.1:4712 -> 10.0.0.2:50000/tcp"
    assert flow.chunks[0][0] == 1_700_000_000_500_000_000  # capture time of the first segment


def test_tcp_missing_segment_is_counted_as_a_gap() -> None:
    segs = [tcp_ip4(1000, b"a" * 10), tcp_ip4(1030, b"b" * 10)]
    (flow,) = read_flows(pcap([ether(s) for s in segs]))
    assert flow.payload() == b"a" * 10 + b"b" * 10
    assert flow.gaps == 20


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_udp_over_ipv6_in_pcap_and_pcapng(ng: bool) -> None:
    (flow,) = read_flows(pcap([ether(udp_ip6(b"one")), ether(udp_ip6(b"two"))], ng=ng))
    assert flow.transport == "udp"
    assert [c for _, c in flow.chunks] == [b"one", b"two"]
    assert flow.key.src == "fd00::1" and flow.key.dport == 4712


def test_linux_cooked_v1_v2_and_raw_ip_link_types() -> None:
    ip = bytes(tcp_ip4(1, b"hello"))
    sll = struct.pack(">HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ip
    sll2 = struct.pack(">HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x02" * 8) + ip
    for linktype, frame in ((113, sll), (276, sll2), (101, ip), (101, bytes(udp_ip6(b"v6")))):
        (flow,) = read_flows(pcap([frame], linktype=linktype))
        assert flow.payload() in (b"hello", b"v6")


def test_not_a_capture_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        read_flows(b"this is not a capture file at all")


def test_reference_capture_flows_split_frames_across_segments() -> None:
    path = DATA / "c37118" / "C37.118_4in1PMU_TCP.pcap"
    assert path.exists(), path
    flows = read_flows(path)
    data = max(flows, key=lambda f: len(f.payload()))
    assert data.key.sport == 4712 and data.gaps == 0
    # Frames span segments: some chunks do not start with the SYNC byte.
    assert any(chunk[0] != 0xAA for _, chunk in data.chunks)


def _udp_capture(n: int, ng: bool = False) -> bytes:
    return pcap([ether(udp_ip6(b"packet %d" % i)) for i in range(n)], ng=ng)


def test_a_corrupt_record_length_is_damage_at_its_offset() -> None:
    data = bytearray(_udp_capture(3))
    rec = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]  # the second record
    struct.pack_into("<I", data, rec + 8, 0x7FFFFFFF)
    got = read_pcap(bytes(data))
    assert got.packets == 1 and [c for _, c in got.flows[0].chunks] == [b"packet 0"]
    assert got.damage is not None and (got.damage.offset, got.damage.record) == (rec, 2)
    assert "2147483647" in got.damage.reason and f"at byte {rec}" in str(got.damage)


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_a_capture_cut_short_keeps_the_whole_packets_before_the_cut(ng: bool) -> None:
    whole = _udp_capture(10, ng=ng)
    assert read_pcap(whole).damage is None and read_pcap(whole).size == len(whole)
    cut = whole[: len(whole) * 2 // 3]
    got = read_pcap(cut)
    assert got.damage is not None and "cut short" in got.damage.reason
    assert 0 < got.packets < 10 and got.damage.offset <= len(cut)
    assert [c for _, c in got.flows[0].chunks] == [b"packet %d" % i for i in range(got.packets)]


def test_pcapng_block_lengths_that_disagree_are_damage() -> None:
    data = bytearray(_udp_capture(2, ng=True))
    # The last block is the second packet: its trailing length is its last 4 bytes.
    struct.pack_into("<I", data, len(data) - 4, 12)
    got = read_pcap(bytes(data))
    assert got.packets == 1 and got.damage is not None
    assert "at its end" in got.damage.reason


def test_a_missing_file_or_a_directory_is_a_protocol_error_naming_it(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.pcap", tmp_path):
        with pytest.raises(ProtocolError, match=f"^{path}: cannot read"):
            read_flows(path)


def test_a_reference_capture_is_read_to_its_last_byte() -> None:
    got = read_pcap(DATA / "c37118" / "C37.118_2PMUsInSync_TCP.pcap")
    assert got.damage is None and got.packets == 4187
