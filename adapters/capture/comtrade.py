"""IEEE C37.111 (COMTRADE) records, sans-IO: the text of a .cfg and the bytes of a .dat in,
scaled samples with their times out. Revisions 1991, 1999 and 2013; data file types
ASCII, BINARY, BINARY32 and FLOAT32; combined ``.cff`` files (2013, 5.1).

Configuration file (C37.111-2013 clause 7; 1999 clause 6): station, device, revision;
channel counts ``TT,##A,##D``; one line per analog channel ``An,ch_id,ph,ccbm,uu,a,b,
skew,min,max[,primary,secondary,PS]``; one per status channel ``Dn,ch_id[,ph,ccbm],y``;
line frequency; sampling rates ``nrates`` then ``samp,endsamp`` each; first-sample and
trigger time stamps; file type; ``timemult`` (1999+); time codes ``time_code,local_code``
and ``tmq_code,leapsec`` (2013). A value is ``a * x + b`` in the channel's unit ``uu``.
A missing sample is 99999 or an empty field (ASCII), or the most
negative integer of its width (BINARY, BINARY32) and becomes NaN.
"""

from __future__ import annotations

__all__ = [
    "AnalogChannel",
    "ComtradeConfig",
    "ComtradeRecord",
    "parse_cfg",
    "parse_dat",
    "split_cff",
    "read_record",
]

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgepipe.core import ProtocolError

_NS = 1_000_000_000
_BINARY = {"BINARY": ("<i2", -32768), "BINARY32": ("<i4", -(1 << 31)), "FLOAT32": ("<f4", None)}


@dataclass(frozen=True, slots=True)
class AnalogChannel:
    index: int
    name: str
    phase: str
    circuit: str
    unit: str
    a: float
    b: float
    skew_us: float
    primary: float = 1.0
    secondary: float = 1.0
    ps: str = "P"


@dataclass(frozen=True, slots=True)
class ComtradeConfig:
    station: str
    device: str
    revision: int
    analogs: tuple[AnalogChannel, ...]
    digitals: tuple[str, ...]
    line_hz: float
    rates: tuple[tuple[float, int], ...]  # (samples/s, last sample number)
    start_ns: int  # first sample, UTC
    trigger_ns: int
    file_type: str
    timemult: float = 1.0


@dataclass(frozen=True, slots=True)
class ComtradeRecord:
    config: ComtradeConfig
    times_ns: npt.NDArray[np.int64]  # UTC, ns
    analogs: npt.NDArray[np.float64]  # (n, A), scaled: a * x + b, NaN when missing
    digitals: npt.NDArray[np.uint8]  # (n, D)


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split(",")]


def _time(fields: list[str], revision: int) -> tuple[datetime, int]:
    """(date-time to the second, extra ns) of ``dd/mm/yyyy,hh:mm:ss.ssssss`` (1999+) or
    ``mm/dd/yy,...`` (1991, 5.3.7)."""
    date, clock = fields[0], fields[1]
    d = [int(x) for x in date.split("/")]
    day, month, year = (d[1], d[0], d[2]) if revision == 1991 else (d[0], d[1], d[2])
    if year < 100:
        year += 1900 if year >= 70 else 2000
    hh, mm, ss = clock.split(":")
    sec, _, frac = ss.partition(".")
    frac_ns = int((frac + "000000000")[:9]) if frac else 0
    return datetime(year, month, day, int(hh), int(mm), int(sec), tzinfo=UTC), frac_ns


def _offset_ns(code: str) -> int:
    """C37.111-2013 time code ``-5h30``: local time minus UTC."""
    m = re.fullmatch(r"([+-]?)(\d+)(?:h(\d+))?", code.strip())
    if not m or code.strip() in ("", "x"):
        return 0
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60) * _NS


def parse_cfg(text: str) -> ComtradeConfig:
    """Parse the text of a .cfg; ``ProtocolError`` names the line that is wrong."""
    lines = [ln for ln in text.replace("\r", "").split("\n")]
    try:
        return _parse_cfg(lines)
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"not a valid COMTRADE configuration: {exc}") from exc


def _parse_cfg(lines: list[str]) -> ComtradeConfig:
    head = _fields(lines[0])
    revision = int(head[2]) if len(head) > 2 and head[2] else 1991
    counts = _fields(lines[1])
    n_a, n_d = int(counts[1].rstrip("Aa")), int(counts[2].rstrip("Dd"))
    analogs = []
    for i in range(n_a):
        f = _fields(lines[2 + i])
        extra = (float(f[10]), float(f[11]), f[12].upper() or "P") if len(f) >= 13 else ()
        analogs.append(AnalogChannel(int(f[0]), f[1], f[2], f[3], f[4], float(f[5]),
                                     float(f[6]), float(f[7] or 0), *extra))  # fmt: skip
    digitals = tuple(_fields(lines[2 + n_a + i])[1] for i in range(n_d))
    at = 2 + n_a + n_d
    line_hz = float(lines[at])
    nrates = int(lines[at + 1])
    rates = tuple(
        (float(f[0]), int(f[1])) for f in (_fields(lines[at + 2 + i]) for i in range(nrates))
    )
    at += 2 + max(nrates, 1)  # nrates 0 still has one "0,endsamp" line (1999 6.9)
    start, start_frac = _time(_fields(lines[at]), revision)
    trig, trig_frac = _time(_fields(lines[at + 1]), revision)
    file_type = lines[at + 2].strip().upper()
    if file_type not in ("ASCII", *_BINARY):
        raise ValueError(f"unknown file type {file_type!r}")
    timemult = float(lines[at + 3]) if revision >= 1999 and len(lines) > at + 3 else 1.0
    offset = 0
    if revision >= 2013 and len(lines) > at + 4 and lines[at + 4].strip():
        offset = _offset_ns(_fields(lines[at + 4])[0])
    return ComtradeConfig(
        head[0], head[1] if len(head) > 1 else "", revision, tuple(analogs), digitals,
        line_hz, rates,
        int(start.timestamp()) * _NS + start_frac - offset,
        int(trig.timestamp()) * _NS + trig_frac - offset,
        file_type, timemult or 1.0,
    )  # fmt: skip


def parse_dat(cfg: ComtradeConfig, data: bytes) -> ComtradeRecord:
    """Decode a .dat of ``cfg.file_type``; ``ProtocolError`` on a malformed file."""
    try:
        if cfg.file_type == "ASCII":
            n_col, raw_a, dig = _ascii(cfg, data)
        else:
            n_col, raw_a, dig = _binary(cfg, data)
    except (ValueError, IndexError) as exc:
        raise ProtocolError(f"COMTRADE {cfg.file_type} data: {exc}") from exc
    a = np.array([c.a for c in cfg.analogs])
    b = np.array([c.b for c in cfg.analogs])
    return ComtradeRecord(cfg, _sample_times(cfg, n_col), raw_a * a + b, dig)


def _ascii(
    cfg: ComtradeConfig, data: bytes
) -> tuple[npt.NDArray[np.int64], np.ndarray, np.ndarray]:
    rows = [r for r in data.decode("latin-1").replace("\r", "").split("\n") if r.strip()]
    n_a, n_d = len(cfg.analogs), len(cfg.digitals)
    raw = np.full((len(rows), n_a), np.nan)
    dig = np.zeros((len(rows), n_d), dtype=np.uint8)
    stamps = np.zeros(len(rows), dtype=np.int64)
    # 1991 marks a missing sample 99999; 1999+ leave the field empty, but writers still
    # use 99999 in practice (never a real count: counts are 16/32-bit ranged by min/max).
    missing = 99999.0
    for i, row in enumerate(rows):
        f = _fields(row)
        stamps[i] = int(f[1]) if f[1] else -1
        for j in range(n_a):
            v = f[2 + j]
            if v and float(v) != missing:
                raw[i, j] = float(v)
        for j in range(n_d):
            dig[i, j] = int(f[2 + n_a + j] or 0)
    return stamps, raw, dig


def _binary(
    cfg: ComtradeConfig, data: bytes
) -> tuple[npt.NDArray[np.int64], np.ndarray, np.ndarray]:
    dtype, missing = _BINARY[cfg.file_type]
    n_a, n_d = len(cfg.analogs), len(cfg.digitals)
    words = -(-n_d // 16)
    rec = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", dtype, (n_a,)), ("d", "<u2", (words,))])
    count = len(data) // rec.itemsize
    if count * rec.itemsize != len(data):
        raise ValueError(f"{len(data)} bytes is not a whole number of {rec.itemsize}-byte records")
    arr = np.frombuffer(data, dtype=rec, count=count)
    raw = arr["a"].astype(np.float64).reshape(count, n_a)
    if missing is not None:
        raw[arr["a"].reshape(count, n_a) == missing] = np.nan
    bits = np.unpackbits(arr["d"].reshape(count, words).view(np.uint8), axis=1, bitorder="little")
    stamps = arr["t"].astype(np.int64)
    stamps[arr["t"] == 0xFFFFFFFF] = -1
    return stamps, raw, bits[:, :n_d].astype(np.uint8)


def _sample_times(cfg: ComtradeConfig, stamps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """From the sampling rates when given (rates win over time stamps, 2013 7.4.9),
    else from the time stamps times ``timemult`` (microseconds)."""
    n = len(stamps)
    if not (cfg.rates and cfg.rates[0][0] > 0):
        stamped: npt.NDArray[np.int64] = np.rint(stamps * cfg.timemult * 1000).astype(np.int64)
        return cfg.start_ns + stamped
    offsets = np.empty(n, dtype=np.float64)
    t, first = 0.0, 0
    for rate, last in cfg.rates:
        stop = n if (rate, last) == cfg.rates[-1] else min(last, n)
        offsets[first:stop] = t + np.arange(stop - first) * (_NS / rate)
        t += (stop - first) * (_NS / rate)
        first = stop
    # Offsets from the first sample in float, the epoch part in int64: exact to the ns.
    out: npt.NDArray[np.int64] = cfg.start_ns + np.rint(offsets).astype(np.int64)
    return out


def split_cff(data: bytes) -> tuple[str, bytes]:
    """(cfg text, dat bytes) of a combined .cff file (C37.111-2013, 5.1)."""
    marker = re.compile(
        rb"^--- file type: ([A-Z]+)(?: ([A-Za-z0-9]+))?(?:: ?(\d+))? ---\r?\n", re.M
    )
    found = list(marker.finditer(data))
    cfg_text, dat = "", b""
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(data)
        kind = m.group(1).upper()
        if kind == b"CFG":
            cfg_text = data[m.end() : end].decode("latin-1")
        elif kind == b"DAT":
            size = int(m.group(3)) if m.group(3) else end - m.end()
            dat = data[m.end() : m.end() + size]
    if not cfg_text:
        raise ProtocolError("combined COMTRADE file without a CFG section")
    return cfg_text, dat


def read_record(path: str | Path) -> ComtradeRecord:
    """Read ``x.cfg`` (with ``x.dat`` beside it) or ``x.cff``."""
    p = Path(path)
    if p.suffix.lower() == ".cff":
        text, dat = split_cff(p.read_bytes())
    else:
        text = _decode_text(p.read_bytes())
        dat_path = next(
            (q for q in (p.with_suffix(".dat"), p.with_suffix(".DAT")) if q.exists()), None
        )
        if dat_path is None:
            raise ProtocolError(f"{p}: no .dat file beside it")
        dat = dat_path.read_bytes()
    return parse_dat(parse_cfg(text), dat)


def _decode_text(raw: bytes) -> str:
    """2013 files are UTF-8; older ones are often Latin-1 (5.2): try UTF-8 first."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
