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
from adapters.capture.modbus_pcap import PairStats, pair_reads, split_mbap
from adapters.capture.pcap import Flow, read_flows
from adapters.capture.phasors import estimate, positive_sequence
from adapters.modbus.decode import decode_point
from adapters.modbus.profile import DeviceProfile, PointType
from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo
from edgepipe.core.source import Sink

#: Frames per SampleBatch handed to the sink (bounded memory per call).
CHUNK = 3600
MODBUS_PORT = 502


@dataclass(slots=True)
class ImportStats:
    flows: int = 0
    c37118_frames: int = 0
    c37118_bad_frames: int = 0
    c37118_unknown_config: int = 0
    tcp_gap_bytes: int = 0
    modbus: PairStats = field(default_factory=PairStats)
    modbus_rows: int = 0
    streams: list[str] = field(default_factory=list)
    rows: int = 0


def import_pcap(
    source: str | Path | bytes | BinaryIO,
    name: str,
    sink: Sink,
    profile: DeviceProfile | None = None,
) -> ImportStats:
    """C37.118 (TCP reassembled, UDP) and, with ``profile``, Modbus/TCP reads."""
    stats = ImportStats()
    flows = read_flows(source)
    stats.flows = len(flows)
    stats.tcp_gap_bytes = sum(f.gaps for f in flows)
    modbus = [f for f in flows if MODBUS_PORT in (f.key.sport, f.key.dport)]
    others = [f for f in flows if f not in modbus]
    _c37118(others, name, sink, stats)
    if profile is not None:
        _modbus(modbus, name, profile, sink, stats)
    else:  # framing and pairing are still checked and counted
        for asked, answers, server in _connections(modbus):
            pair_reads(split_mbap(asked, stats.modbus), split_mbap(answers, stats.modbus),
                       server, stats.modbus)  # fmt: skip
    return stats


def _decode(
    flow: Flow, configs: dict[int, ConfigFrame], stats: ImportStats | None
) -> list[DataFrame]:
    dec = Decoder(configs)
    frames: list[DataFrame] = []
    for _, chunk in flow.chunks:
        dec.receive_data(chunk)
        while (ev := dec.next_event()) is not NEED_DATA:
            if isinstance(ev, ConfigFrame):
                configs.setdefault(ev.idcode, ev)
            elif isinstance(ev, DataFrame):
                frames.append(ev)
            elif stats is not None and isinstance(ev, BadFrame):
                stats.c37118_bad_frames += 1
            elif stats is not None and isinstance(ev, UnknownConfig):
                stats.c37118_unknown_config += 1
    return frames


def _c37118(flows: Sequence[Flow], name: str, sink: Sink, stats: ImportStats) -> None:
    configs: dict[int, ConfigFrame] = {}
    for f in flows:  # first pass: every configuration, wherever it travelled
        _decode(f, configs, None)
    by_id: dict[int, list[DataFrame]] = defaultdict(list)
    for f in flows:
        for frame in _decode(f, dict(configs), stats):
            by_id[frame.idcode].append(frame)
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
    for req, resp, server in _connections(flows):
        reads = pair_reads(split_mbap(req, stats.modbus), split_mbap(resp, stats.modbus),
                           server, stats.modbus)  # fmt: skip
        state = np.full(len(points), np.nan)
        rows: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = defaultdict(list)
        for read in reads:
            if profile.unit_id not in (read.unit, 0):
                continue
            for i, p in enumerate(points):
                lo = p.address - read.address
                if p.table is read.table and lo >= 0 and lo + p.count <= len(read.values):
                    words = read.values[lo : lo + p.count]
                    if p.type is PointType.BIT:
                        words = ((words[0] >> p.bit) & 1,)
                    state[i] = float(decode_point(p, words))
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
    stats = ImportStats()
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
