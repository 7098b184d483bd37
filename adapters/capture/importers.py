"""Importers: a pcap/pcapng or a COMTRADE record -> streams and SampleBatches on a ``Sink``.

The application writes what the sink receives into a capture (``edgepipe import``); the
same calls feed a pipeline directly in tests. Sans-IO apart from reading the file named.
"""

from __future__ import annotations

__all__ = ["ImportStats", "import_comtrade", "import_pcap"]

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from adapters.c37118.batches import stream_infos, to_batches
from adapters.c37118.codec import NEED_DATA, BadFrame, Decoder, UnknownConfig
from adapters.c37118.frames import ConfigFrame, DataFrame
from adapters.capture.comtrade import ComtradeRecord
from adapters.capture.modbus_pcap import ModbusRead, PairStats, pair_reads, split_mbap
from adapters.capture.pcap import Flow, read_pcap
from adapters.capture.phasors import estimate, positive_sequence
from adapters.modbus.decode import decode_point
from adapters.modbus.profile import DeviceProfile, Point, PointType
from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo
from edgepipe.core.source import Sink

#: Frames per SampleBatch handed to the sink (bounded memory per call).
CHUNK = 3600
MODBUS_PORT = 502
#: IEEE C37.118.2-2011 Annex F: TCP 4712, UDP 4713 (PMUs are often configured elsewhere).
C37118_PORTS = (4712, 4713)
_MAX_LISTED = 20  # flows named in ``ImportStats.other_flow_keys``


@dataclass(slots=True)
class ImportStats:
    flows: int = 0
    c37118_flows: int = 0
    c37118_frames: int = 0
    c37118_bad_frames: int = 0
    c37118_unknown_config: int = 0  # data frames (good CHK) whose configuration never came
    other_flows: int = 0  # neither Modbus/TCP nor C37.118: ignored, not decoded
    other_flow_keys: list[str] = field(default_factory=list)  # the first few of them
    tcp_gap_bytes: int = 0
    modbus: PairStats = field(default_factory=PairStats)
    modbus_reads: int = 0  # answered reads (FC 1-4)
    modbus_rows: int = 0
    streams: list[str] = field(default_factory=list)
    rows: int = 0
    packets: int = 0  # pcap packets read
    non_ip_packets: int = 0
    undecodable_packets: int = 0
    #: The input was cut short or corrupt (pcap: at a byte offset; COMTRADE .dat: at a
    #: line or record): what came before it was imported, the rest was not. None: whole.
    damage: str | None = None
    #: Why something was not imported, for the person reading the summary.
    notes: list[str] = field(default_factory=list)


def import_pcap(
    source: str | Path | bytes | BinaryIO,
    name: str,
    sink: Sink,
    profile: DeviceProfile | None = None,
) -> ImportStats:
    """C37.118 (TCP reassembled, UDP) and, with ``profile``, Modbus/TCP reads."""
    stats = ImportStats()
    contents = read_pcap(source)
    flows = contents.flows
    stats.packets = contents.packets
    stats.non_ip_packets, stats.undecodable_packets = contents.non_ip, contents.undecodable
    if contents.damage is not None:
        stats.damage = str(contents.damage)
    stats.flows = len(flows)
    stats.tcp_gap_bytes = sum(f.gaps for f in flows)
    modbus = [f for f in flows if MODBUS_PORT in (f.key.sport, f.key.dport)]
    others = [f for f in flows if f not in modbus]
    _c37118(others, name, sink, stats)
    if profile is not None:
        _modbus(modbus, name, profile, sink, stats)
    else:  # framing and pairing are still checked and counted
        reads: list[ModbusRead] = []
        for asked, answers, server in _connections(modbus):
            reads += pair_reads(split_mbap(asked, stats.modbus), split_mbap(answers, stats.modbus),
                                server, stats.modbus)  # fmt: skip
        stats.modbus_reads = len(reads)
        if reads:
            stats.notes.append(
                f"{len(reads)} Modbus read(s) answered ({_describe_reads(reads)}), not "
                "imported: Modbus registers are decoded only with --profile (the device's "
                "register map)"
            )
    if stats.rows == 0 and not stats.notes and stats.damage is None:
        stats.notes.append(
            f"nothing imported: {stats.flows} TCP/UDP flow(s) in {stats.packets} packet(s), "
            f"{stats.other_flows} of them neither C37.118 nor Modbus/TCP"
        )
    return stats


def _describe_reads(reads: Sequence[ModbusRead]) -> str:
    """``unit 4: coil 1 x4, holding 1-8 x2; unit 5: ...``: what the reads covered."""
    seen: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in reads:
        last = r.address + len(r.values) - 1
        span = f"{r.address}" if last == r.address else f"{r.address}-{last}"
        seen[r.unit][f"{r.table.value} {span}"] += 1
    return "; ".join(
        f"unit {unit}: " + ", ".join(f"{k} x{n}" for k, n in spans.items())
        for unit, spans in sorted(seen.items())
    )


def _plausible_c37118(flow: Flow) -> bool:
    """On a C37.118 port, or starting like a C37.118 frame (SYNC 0xAA, frame type 0-5,
    version 1-3): bad frames in such a flow are counted, in any other flow they are not."""
    if any(p in C37118_PORTS for p in (flow.key.sport, flow.key.dport)):
        return True
    head = flow.chunks[0][1] if flow.chunks else b""
    return len(head) >= 2 and head[0] == 0xAA and (head[1] >> 4) & 7 <= 5 and 1 <= head[1] & 15 <= 3


def _decode(
    flow: Flow, configs: dict[int, ConfigFrame], stats: ImportStats | None
) -> tuple[list[DataFrame], int]:
    """The data frames of one flow and how many good frames (CHK checked) it carried."""
    dec = Decoder(configs)
    frames: list[DataFrame] = []
    good = 0
    for _, chunk in flow.chunks:
        dec.receive_data(chunk)
        while (ev := dec.next_event()) is not NEED_DATA:
            good += not isinstance(ev, BadFrame)
            if isinstance(ev, ConfigFrame):
                configs.setdefault(ev.idcode, ev)
            elif isinstance(ev, DataFrame):
                frames.append(ev)
            elif stats is not None and isinstance(ev, BadFrame):
                stats.c37118_bad_frames += 1
            elif stats is not None and isinstance(ev, UnknownConfig):
                stats.c37118_unknown_config += 1
    return frames, good


def _c37118(flows: Sequence[Flow], name: str, sink: Sink, stats: ImportStats) -> None:
    configs: dict[int, ConfigFrame] = {}
    c37: list[Flow] = []
    for f in flows:  # first pass: every configuration, wherever it travelled
        _, good = _decode(f, configs, None)
        if good or _plausible_c37118(f):
            c37.append(f)
        else:
            stats.other_flows += 1
            if len(stats.other_flow_keys) < _MAX_LISTED:
                stats.other_flow_keys.append(str(f.key))
    stats.c37118_flows = len(c37)
    by_id: dict[int, list[DataFrame]] = defaultdict(list)
    for f in c37:
        for frame in _decode(f, dict(configs), stats)[0]:
            by_id[frame.idcode].append(frame)
    if stats.c37118_unknown_config:
        stats.notes.append(
            f"{stats.c37118_unknown_config} C37.118 data frame(s) not imported: their "
            "configuration frame (CFG-2/CFG-3) is not in the capture"
        )
    for idcode, frames in sorted(by_id.items()):
        cfg = configs[idcode]
        stats.c37118_frames += len(frames)
        source = name if len(by_id) == 1 else f"{name}-{idcode}"
        infos = stream_infos(source, cfg)
        for info in infos:
            sink.on_stream(info)
            stats.streams.append(info.stream)
        for lo in range(0, len(frames), CHUNK):
            for batch in to_batches(frames[lo : lo + CHUNK], cfg, infos):
                stats.rows += len(batch)
                sink.on_batch(batch)


def _modbus(
    flows: Sequence[Flow], name: str, profile: DeviceProfile, sink: Sink, stats: ImportStats
) -> None:
    points = profile.numeric_points()
    streams: dict[tuple[str, int], StreamInfo] = {}
    unmatched: list[ModbusRead] = []
    for req, resp, server in _connections(flows):
        reads = pair_reads(split_mbap(req, stats.modbus), split_mbap(resp, stats.modbus),
                           server, stats.modbus)  # fmt: skip
        stats.modbus_reads += len(reads)
        state = np.full(len(points), np.nan)
        rows: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = defaultdict(list)
        for read in reads:
            if profile.unit_id not in (read.unit, 0):
                unmatched.append(read)
                continue
            hit = False
            for i, p in enumerate(points):
                lo = p.address - read.address
                if p.table is read.table and lo >= 0 and lo + p.count <= len(read.values):
                    words = read.values[lo : lo + p.count]
                    if p.type is PointType.BIT:
                        words = ((words[0] >> p.bit) & 1,)
                    state[i] = float(decode_point(p, words))
                    hit = True
            if not hit:  # a read of registers the profile does not map: no new row
                unmatched.append(read)
                continue
            rows[(read.server, read.unit)].append((read.time_ns, state.copy()))
        for key, got in rows.items():
            info = streams.get(key) or _modbus_info(name, key, profile)
            streams[key] = info
            sink.on_stream(info)
            stats.streams.append(info.stream)
            times = np.array([t for t, _ in got], dtype=np.int64)
            values = np.array([v for _, v in got], dtype=np.float64)
            quality = np.full(len(got), int(Quality.RECEIPT_TIME), dtype=np.uint16)
            sink.on_batch(SampleBatch(info.stream, times, values, quality, device_time=False))
            stats.modbus_rows += len(got)
            stats.rows += len(got)
    if unmatched:
        other_unit = [r for r in unmatched if profile.unit_id not in (r.unit, 0)]
        units = ", ".join(str(u) for u in sorted({r.unit for r in other_unit}))
        whole = len(unmatched) == stats.modbus_reads
        stats.notes.append(
            f"{len(unmatched)} of {stats.modbus_reads} Modbus read(s) answered not imported"
            f"{' (so nothing was)' if whole else ''}: {len(other_unit)} for unit(s) other than "
            f"the profile's{f' ({units})' if units else ''}, "
            f"{len(unmatched) - len(other_unit)} of registers the profile does not map; "
            f"profile {profile.name!r} reads unit {profile.unit_id}: "
            f"{_describe_points(points)}; the reads not imported: {_describe_reads(unmatched)}"
        )


def _describe_points(points: Sequence[Point]) -> str:
    """``input 0-2, 10-12; holding 100-101``: the registers a profile reads."""
    spans: dict[str, list[int]] = defaultdict(list)
    for p in points:
        spans[p.table.value] += range(p.address, p.address + p.count)
    out = []
    for table, addrs in spans.items():
        runs: list[list[int]] = []
        for a in sorted(set(addrs)):
            if runs and a == runs[-1][1] + 1:
                runs[-1][1] = a
            else:
                runs.append([a, a])
        out.append(f"{table} " + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs))
    return "; ".join(out)


def _connections(flows: Sequence[Flow]) -> list[tuple[Flow, Flow, str]]:
    """(requests, responses, server address) of each Modbus/TCP connection."""
    conns: dict[tuple[str, int, str], dict[str, Flow]] = defaultdict(dict)
    for f in flows:
        k = f.key
        if k.dport == MODBUS_PORT:
            conns[(k.src, k.sport, k.dst)]["req"] = f
        else:
            conns[(k.dst, k.dport, k.src)]["resp"] = f
    return [
        (pair["req"], pair["resp"], key[2])
        for key, pair in sorted(conns.items())
        if "req" in pair and "resp" in pair
    ]


def _modbus_info(name: str, key: tuple[str, int], profile: DeviceProfile) -> StreamInfo:
    bits = (PointType.BOOL, PointType.BIT)
    channels = tuple(
        ChannelInfo(p.name, ChannelKind.DIGITAL if p.type in bits else ChannelKind.ANALOG, p.unit)
        for p in profile.numeric_points()
    )
    return StreamInfo(
        stream=f"{name}/{key[0]}/{key[1]}", source=name, asset=profile.name, channels=channels,
        rate_hz=1.0 / profile.poll_interval_s, kind=profile.kind, params=profile.params,
    )  # fmt: skip


_UNIT_SCALE = {"V": 1.0, "KV": 1e3, "MV": 1e6, "A": 1.0, "KA": 1e3}


def import_comtrade(
    record: ComtradeRecord, name: str, sink: Sink, rate_hz: float | None = None
) -> ImportStats:
    """Two streams: ``<name>/samples`` (every analog channel as recorded, scaled) and,
    when voltage or current channels are present, ``<name>/phasors``: one-cycle DFT
    synchrophasors at ``rate_hz`` (default: one per nominal cycle) in the PMU layout
    (``<ch>.mag`` V or A, ``<ch>.ang`` rad, ``freq``, ``rocof``)."""
    stats = ImportStats(damage=record.damage)
    cfg = record.config
    rate = cfg.rates[0][0] if cfg.rates and cfg.rates[0][0] > 0 else 0.0
    samples = StreamInfo(
        stream=f"{name}/samples", source=name, asset=cfg.station,
        channels=_unique([ChannelInfo(a.name or f"A{a.index}", ChannelKind.ANALOG, a.unit,
                                      phase=a.phase) for a in cfg.analogs]),
        rate_hz=rate, nominal_hz=cfg.line_hz, kind="waveform",
    )  # fmt: skip
    sink.on_stream(samples)
    quality = np.where(np.isnan(record.analogs).any(axis=1), int(Quality.INVALID), 0)
    sink.on_batch(SampleBatch(samples.stream, record.times_ns, record.analogs,
                              quality.astype(np.uint16)))  # fmt: skip
    stats.streams.append(samples.stream)
    stats.rows += len(record.times_ns)
    phasors = _phasor_stream(record, name, rate_hz or cfg.line_hz)
    if phasors is not None:
        info, batch = phasors
        sink.on_stream(info)
        sink.on_batch(batch)
        stats.streams.append(info.stream)
        stats.rows += len(batch)
    return stats


def _unique(channels: list[ChannelInfo]) -> tuple[ChannelInfo, ...]:
    seen: set[str] = set()
    out = []
    for c in channels:
        n, i = c.name, 2
        while n in seen:
            n, i = f"{c.name}#{i}", i + 1
        seen.add(n)
        out.append(ChannelInfo(n, c.kind, c.unit, c.phasor, c.phase, c.nominal))
    return tuple(out)


def _phasor_stream(
    record: ComtradeRecord, name: str, rate_hz: float
) -> tuple[StreamInfo, SampleBatch] | None:
    cfg = record.config
    picked = [(i, a) for i, a in enumerate(cfg.analogs) if a.unit.strip().upper() in _UNIT_SCALE]
    if not picked or cfg.line_hz <= 0:
        return None
    scale = np.array([_UNIT_SCALE[a.unit.strip().upper()] for _, a in picked])
    x = record.analogs[:, [i for i, _ in picked]] * scale
    x = np.nan_to_num(x)  # missing samples: zero, and the rows are flagged below
    volts = [j for j, (_, a) in enumerate(picked) if a.unit.strip().upper().endswith("V")]
    ref = None
    first = estimate(record.times_ns, x, cfg.line_hz, rate_hz)
    phases = {picked[j][1].phase.strip().upper(): j for j in volts}
    if {"A", "B", "C"} <= phases.keys():
        ref = positive_sequence(*(first.phasors[:, phases[p]] for p in "ABC"))
    elif volts:
        ref = first.phasors[:, volts[0]]
    est = estimate(record.times_ns, x, cfg.line_hz, rate_hz, reference=ref)
    if len(est.times_ns) == 0:
        return None
    channels: list[ChannelInfo] = []
    for _, a in picked:
        unit = "V" if a.unit.strip().upper().endswith("V") else "A"
        channels.append(
            ChannelInfo(
                f"{a.name}.mag", ChannelKind.MAGNITUDE, unit, a.name, a.phase.strip().upper()
            )
        )
        channels.append(
            ChannelInfo(f"{a.name}.ang", ChannelKind.ANGLE, "rad", a.name, a.phase.strip().upper())
        )
    channels += [ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=cfg.line_hz),
                 ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s")]  # fmt: skip
    info = StreamInfo(stream=f"{name}/phasors", source=name, asset=cfg.station,
                      channels=_unique(channels), rate_hz=rate_hz, nominal_hz=cfg.line_hz,
                      kind="pmu")  # fmt: skip
    values = np.empty((len(est.times_ns), len(channels)))
    values[:, 0 : 2 * len(picked) : 2] = np.abs(est.phasors)
    values[:, 1 : 2 * len(picked) : 2] = np.angle(est.phasors)
    values[:, -2], values[:, -1] = est.freq_hz, est.rocof
    quality = np.zeros(len(est.times_ns), dtype=np.uint16)
    return info, SampleBatch(info.stream, est.times_ns, values, quality)
