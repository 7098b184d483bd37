"""C37.118 frames to the pipeline's records (sans-IO: no sockets, no clock, no logging).

One stream per PMU block of a configuration frame (IEEE C37.118.2-2011, 6.4, Table 9):
stream id ``"<source>/<pmu idcode>"``, asset = station name. Columns, in this order:
``<PHASOR>.mag`` (V or A) and ``<PHASOR>.ang`` (rad) per phasor, ``freq`` (Hz), ``rocof``
(Hz/s), one column per analog, one per digital word (the 16-bit word as a float).
"""

from __future__ import annotations

__all__ = [
    "duplicate_idcodes",
    "guess_phase",
    "quality_from_stat",
    "stream_infos",
    "to_batches",
    "block_to_batches",
    "frame_times_ns",
    "times_ns",
]

import itertools
import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from adapters.c37118.codec import DataBlock
from adapters.c37118.frames import ConfigFrame, DataFrame, PmuConfig
from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo

_SEQ_POS = re.compile(r"POS|\+|\bPS\b|SEQ\s*1|\b[VI]1\b|\b[VI]PS\b")
_PHASE_TOKEN = re.compile(r"[VIU]([ABC])(?:N|M|MAG|ANG|PH|PHS)?")
_PHASE_WORD = re.compile(r"\bPH(?:ASE)?\s*([ABC])\b")
_IEC_PHASE = {"L1": "A", "L2": "B", "L3": "C"}


def guess_phase(name: str) -> str:
    """ "A", "B", "C", "1" (positive sequence) or "" from a channel name such as VA,
    VAM, V_A, Va, IA, VPOS, V1, "PHASE A" (names are free text in C37.118, Table 9)."""
    s = name.upper().strip()
    tokens = [t for t in re.split(r"[^A-Z0-9+]+", s) if t]
    if _SEQ_POS.search(s):
        return "1"
    for tok in reversed(tokens):
        m = _PHASE_TOKEN.fullmatch(tok)
        if m:
            return m.group(1)
        if tok in _IEC_PHASE:
            return _IEC_PHASE[tok]
    m = _PHASE_WORD.search(s)
    if m:
        return m.group(1)
    for a, b in itertools.pairwise(tokens):
        if a in ("V", "I", "U") and b in ("A", "B", "C"):
            return b
    return ""


def _nominal_v(
    table: Mapping[str, float] | None, station: str, phasor: str, is_current: bool
) -> float:
    """Lookup order: "<station>/<phasor>", "<phasor>", "<station>", "*" (voltages only)."""
    if not table or is_current:
        return 0.0
    for key in (f"{station}/{phasor}", phasor, station, "*"):
        if key in table:
            return float(table[key])
    return 0.0


def _channels(pmu: PmuConfig, nominal: Mapping[str, float] | None) -> tuple[ChannelInfo, ...]:
    station = pmu.station.strip()
    out: list[ChannelInfo] = []
    seen: set[str] = set()

    def unique(name: str) -> str:
        base, i = name, 2
        while name in seen:
            name, i = f"{base}#{i}", i + 1
        seen.add(name)
        return name

    for ph in pmu.phasors:
        pname = unique(ph.name.strip() or f"PH{len(out) // 2}")
        phase = guess_phase(pname)
        nom = _nominal_v(nominal, station, pname, ph.is_current)
        out.append(ChannelInfo(f"{pname}.mag", ChannelKind.MAGNITUDE, ph.unit, pname, phase, nom))
        out.append(ChannelInfo(f"{pname}.ang", ChannelKind.ANGLE, "rad", pname, phase))
    out.append(ChannelInfo(unique("freq"), ChannelKind.FREQUENCY, "Hz", nominal=pmu.fnom_hz))
    out.append(ChannelInfo(unique("rocof"), ChannelKind.ROCOF, "Hz/s"))
    for i, an in enumerate(pmu.analogs):
        out.append(ChannelInfo(unique(an.name.strip() or f"AN{i}"), ChannelKind.ANALOG))
    for i, _word in enumerate(pmu.digitals):
        out.append(ChannelInfo(unique(f"digital{i}"), ChannelKind.DIGITAL))
    return tuple(out)


def stream_infos(
    source: str, cfg: ConfigFrame, nominal_voltage: Mapping[str, float] | None = None
) -> list[StreamInfo]:
    """One ``StreamInfo`` per PMU block of ``cfg``, in the order of the frame.

    The stream is ``<source>/<IDCODE>``. A misconfigured PDC may give two blocks the same
    IDCODE; merging their rows into one stream would interleave two devices, so a block
    whose IDCODE came earlier in the frame is ``<source>/<IDCODE>-block<number>``
    (1-based) instead (``duplicate_idcodes`` names them).
    """
    seen: set[int] = set()
    names = []
    for k, pmu in enumerate(cfg.pmus):
        names.append(f"{source}/{pmu.idcode}" + (f"-block{k + 1}" if pmu.idcode in seen else ""))
        seen.add(pmu.idcode)
    return [
        StreamInfo(
            stream=name,
            source=source,
            asset=pmu.station.strip(),
            channels=_channels(pmu, nominal_voltage),
            rate_hz=cfg.rate_hz,
            nominal_hz=pmu.fnom_hz,
            idcode=pmu.idcode,
        )
        for name, pmu in zip(names, cfg.pmus, strict=True)
    ]


def duplicate_idcodes(cfg: ConfigFrame) -> list[int]:
    """IDCODEs that more than one PMU block of ``cfg`` carries."""
    ids = [p.idcode for p in cfg.pmus]
    return sorted({i for i in ids if ids.count(i) > 1})


def _quality_table() -> npt.NDArray[np.uint16]:
    """STAT word (Table 7) -> Quality, for all 65536 values, so mapping is one take()."""
    stat = np.arange(1 << 16, dtype=np.uint32)
    err = stat >> 14
    q = np.zeros(1 << 16, dtype=np.uint16)
    q[(err == 1) | (err == 3)] |= np.uint16(Quality.DEVICE_ERROR | Quality.INVALID)
    q[err == 2] |= np.uint16(Quality.INVALID)  # test mode, or absent data from a PDC
    q[(stat & 0x2000) != 0] |= np.uint16(Quality.SYNC_LOST)
    # Unlocked for 10 s or more (bits 05-04), or a PMU time quality (bits 08-06, 2011)
    # of 101 and worse: the time may be off by more than 100 µs, 2.2 degrees at 60 Hz.
    q[((stat >> 4) & 0x3) != 0] |= np.uint16(Quality.SYNC_LOST)
    q[((stat >> 6) & 0x7) >= 0b101] |= np.uint16(Quality.SYNC_LOST)
    # Bit 12: a PDC sorted this block into the frame by arrival, not by its time stamp.
    q[(stat & 0x1000) != 0] |= np.uint16(Quality.RECEIPT_TIME)
    q[(stat & 0x0200) != 0] |= np.uint16(Quality.INTERPOLATED)
    q[(stat & 0x0800) != 0] |= np.uint16(Quality.TRIGGERED)
    return q


_QUALITY = _quality_table()
# FRACSEC's message time quality (6.2.2, Table 3): code 0111 "within 1 ms" and worse,
# 1111 clock failure, and the reserved 1100-1110, say the time stamp may be off by more
# than 100 µs: SYNC_LOST for every PMU of the frame. The upper four bits are leap second
# flags and the reserved bit.
_TIME_QUALITY = np.where((np.arange(256) & 0x0F) >= 0b0111, Quality.SYNC_LOST, 0).astype(np.uint16)


def quality_from_stat(
    stat: npt.NDArray[np.integer], time_quality: npt.NDArray[np.integer] | None = None
) -> npt.NDArray[np.uint16]:
    """Quality mask per STAT word (n, k): data error 01/11 -> DEVICE_ERROR|INVALID, 10 ->
    INVALID; bit 13, time unlocked for 10 s or more, or a PMU time quality worse than
    100 µs -> SYNC_LOST; bit 12 -> RECEIPT_TIME; bit 9 -> INTERPOLATED; bit 11 ->
    TRIGGERED. ``time_quality`` (n,), FRACSEC's upper byte per frame, adds SYNC_LOST to
    every PMU of a frame whose time quality code is worse than 100 µs."""
    out: npt.NDArray[np.uint16] = _QUALITY[np.asarray(stat, dtype=np.int64) & 0xFFFF]
    if time_quality is not None:
        tq = _TIME_QUALITY[np.asarray(time_quality, dtype=np.int64) & 0xFF]
        out = out | (tq[:, None] if out.ndim == 2 else tq)
    return out


def frame_times_ns(frames: Sequence[DataFrame], time_base: int) -> npt.NDArray[np.int64]:
    """Event times (ns since the epoch) from SOC and FRACSEC / TIME_BASE (6.2, Table 3)."""
    soc = np.fromiter((f.soc for f in frames), dtype=np.int64, count=len(frames))
    frac = np.fromiter((f.fracsec for f in frames), dtype=np.int64, count=len(frames))
    return times_ns(soc, frac, time_base)


def times_ns(
    soc: npt.NDArray[np.integer], fracsec: npt.NDArray[np.integer], time_base: int
) -> npt.NDArray[np.int64]:
    """Vectorised SOC + FRACSEC/TIME_BASE, rounded to the nearest ns, exact in int64."""
    frac = np.asarray(fracsec, dtype=np.int64) & 0xFFFFFF
    sub = (frac * 1_000_000_000 + time_base // 2) // time_base
    return np.asarray(soc, dtype=np.int64) * 1_000_000_000 + sub


def to_batches(
    frames: Sequence[DataFrame], cfg: ConfigFrame, infos: Sequence[StreamInfo]
) -> list[SampleBatch]:
    """One ``SampleBatch`` per PMU holding every frame of ``frames`` (all decoded with
    ``cfg``); ``infos`` are ``stream_infos(..., cfg)``. Absent values are NaN.

    PMUs with the same channel counts are converted together: one numpy conversion per
    quantity for the whole group instead of one per PMU (this is the hot path).
    """
    n = len(frames)
    if n == 0:
        return []
    t = frame_times_ns(frames, cfg.time_base)
    tq = np.fromiter((f.fracsec >> 24 for f in frames), dtype=np.int64, count=n)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, pmu in enumerate(cfg.pmus):
        groups.setdefault((len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)), []).append(i)
    out: list[SampleBatch | None] = [None] * len(cfg.pmus)
    for (k, na, nd), idx in groups.items():
        g = len(idx)
        rows = (
            [[f.pmus[i] for i in idx] for f in frames]
            if g < len(cfg.pmus)
            else [f.pmus for f in frames]
        )
        # (g, n, c): each PMU's rows are then one contiguous block.
        values = np.empty((g, n, 2 * k + 2 + na + nd), dtype=np.float64)
        if k:
            ph = np.array([[p.phasors for p in r] for r in rows], dtype=np.complex128)
            ph = ph.reshape(n, g, k).transpose(1, 0, 2)
            values[:, :, 0 : 2 * k : 2] = np.abs(ph)
            values[:, :, 1 : 2 * k : 2] = np.angle(ph)
        fr = np.array([[(p.freq_hz, p.rocof) for p in r] for r in rows], dtype=np.float64)
        values[:, :, 2 * k : 2 * k + 2] = fr.reshape(n, g, 2).transpose(1, 0, 2)
        if na:
            an = np.array([[p.analogs for p in r] for r in rows], dtype=np.float64)
            values[:, :, 2 * k + 2 : 2 * k + 2 + na] = an.reshape(n, g, na).transpose(1, 0, 2)
        if nd:
            dg = np.array([[p.digitals for p in r] for r in rows], dtype=np.float64)
            values[:, :, 2 * k + 2 + na :] = dg.reshape(n, g, nd).transpose(1, 0, 2)
        stat = np.array([[p.stat for p in r] for r in rows], dtype=np.int64).reshape(n, g)
        quality = np.ascontiguousarray(quality_from_stat(stat, tq).T)
        for j, i in enumerate(idx):
            out[i] = SampleBatch(infos[i].stream, t, values[j], quality[j])
    return [b for b in out if b is not None]


def block_to_batches(
    block: DataBlock, cfg: ConfigFrame, infos: Sequence[StreamInfo]
) -> list[SampleBatch]:
    """Like ``to_batches`` for frames decoded at once by ``codec.decode_data_block``."""
    n = len(block)
    if n == 0:
        return []
    quality = np.ascontiguousarray(quality_from_stat(block.stat, block.time_quality).T)
    out: list[SampleBatch] = []
    for i, pmu in enumerate(cfg.pmus):
        k, na, nd = len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)
        values = np.empty((n, 2 * k + 2 + na + nd), dtype=np.float64)
        ph = block.phasors[:, block.pmu_phasors[i]]
        values[:, 0 : 2 * k : 2] = np.abs(ph)
        values[:, 1 : 2 * k : 2] = np.angle(ph)
        values[:, 2 * k] = block.freq[:, i]
        values[:, 2 * k + 1] = block.rocof[:, i]
        values[:, 2 * k + 2 : 2 * k + 2 + na] = block.analogs[:, block.pmu_analogs[i]]
        values[:, 2 * k + 2 + na :] = block.digitals[:, block.pmu_digitals[i]]
        out.append(SampleBatch(infos[i].stream, block.times_ns, values, quality[i]))
    return out
