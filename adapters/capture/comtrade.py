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
from typing import Any

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
    #: The .dat was cut short: ``"<file>: where; how many samples were kept"``. None: whole.
    damage: str | None = None


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


#: Where a reader looks up the layout a message refers to.
_LAYOUT = "IEEE C37.111-1999/2013 .cfg layout"
_ANALOG = "'An,ch_id,ph,ccbm,uu,a,b,skew,min,max[,primary,secondary,PS]'"
_STATUS = "'Dn,ch_id,ph,ccbm,y' (1991: 'Dn,ch_id,y')"


class _Lines:
    """The lines of a .cfg with their numbers, for errors that say where and what."""

    def __init__(self, text: str, name: str) -> None:
        self.lines = text.replace("\r", "").split("\n")
        while self.lines and not self.lines[-1].strip():
            self.lines.pop()
        self.name, self.at = name, 0

    def take(self, what: str, fields: tuple[int, int] = (1, 1 << 30)) -> list[str]:
        """The fields of the next line, which must hold ``what`` with ``fields`` (min, max)
        of them; else a ``ProtocolError`` naming the file and the line."""
        if self.at >= len(self.lines):
            raise self.error(what, "the end of the file")
        raw = self.lines[self.at]
        self.at += 1
        f = _fields(raw)
        if not raw.strip():
            raise self.error(what, "an empty line")
        lo, hi = fields
        if not lo <= len(f) <= hi:
            want = f"{lo}" if lo == hi else f"{lo} or more" if hi >= 1 << 30 else f"{lo}-{hi}"
            raise self.error(f"{what} in {want} fields", f"{len(f)}: {raw.strip()[:80]!r}")
        return f

    def optional(self) -> list[str] | None:
        """The fields of the next line, or None at the end of the file."""
        if self.at >= len(self.lines):
            return None
        self.at += 1
        return _fields(self.lines[self.at - 1])

    def error(self, what: str, found: str) -> ProtocolError:
        where = f"line {self.at}" if found != "the end of the file" else f"line {self.at + 1}"
        return ProtocolError(f"{self.name}: {where}: expected {what}, found {found} ({_LAYOUT})")

    def num(self, conv: type[int] | type[float], value: str, what: str) -> Any:
        try:
            return conv(value)
        except ValueError:
            raise self.error(f"{what} ({conv.__name__})", repr(value)) from None


def parse_cfg(text: str, name: str = "<cfg>") -> ComtradeConfig:
    """Parse the text of a .cfg; ``ProtocolError`` names the file (``name``) and the line
    that is wrong, what the layout expects there and what it holds."""
    return _parse_cfg(_Lines(text, name))


def _parse_cfg(lines: _Lines) -> ComtradeConfig:
    head = lines.take("'station_name,rec_dev_id,rev_year'", (1, 3))
    revision = lines.num(int, head[2], "rev_year") if len(head) > 2 and head[2] else 1991
    counts = lines.take("channel counts 'TT,##A,##D'", (3, 3))
    total = lines.num(int, counts[0], "TT, the number of channels")
    if not counts[1].upper().endswith("A") or not counts[2].upper().endswith("D"):
        raise lines.error("'##A,##D'", f"{counts[1]!r}, {counts[2]!r}")
    n_a = lines.num(int, counts[1][:-1], "##A, the number of analog channels")
    n_d = lines.num(int, counts[2][:-1], "##D, the number of status channels")
    if total != n_a + n_d or n_a < 0 or n_d < 0:
        raise lines.error("TT = ##A + ##D", f"{total} channels but {n_a}A + {n_d}D")
    analogs = []
    for i in range(n_a):
        what = f"analog channel {i + 1} of {n_a} {_ANALOG}"
        f = lines.take(what, (10, 13))
        if len(f) not in (10, 13):
            raise lines.error(f"{what} in 10 or 13 fields", f"{len(f)}: {','.join(f)[:80]!r}")
        extra = (
            (lines.num(float, f[10], "primary"), lines.num(float, f[11], "secondary"),
             f[12].upper() or "P") if len(f) == 13 else ()
        )  # fmt: skip
        analogs.append(AnalogChannel(
            lines.num(int, f[0], "An, the channel index"), f[1], f[2], f[3], f[4],
            lines.num(float, f[5], "a, the multiplier"), lines.num(float, f[6], "b, the offset"),
            lines.num(float, f[7] or "0", "skew"), *extra))  # fmt: skip
    digitals = []
    for i in range(n_d):
        f = lines.take(f"status channel {i + 1} of {n_d} {_STATUS}", (2, 5))
        lines.num(int, f[0], "Dn, the channel index")
        digitals.append(f[1])
    line_hz = lines.num(float, lines.take("line frequency 'lf'", (1, 1))[0], "line frequency")
    nrates = lines.num(int, lines.take("'nrates'", (1, 1))[0], "nrates")
    rates = []
    for i in range(max(nrates, 1)):  # nrates 0 still has one "0,endsamp" line (1999 6.9)
        f = lines.take(f"sampling rate {i + 1} 'samp,endsamp'", (2, 2))
        rates.append((lines.num(float, f[0], "samp"), lines.num(int, f[1], "endsamp")))
    start, start_frac = _stamp(lines, "first sample", revision)
    trig, trig_frac = _stamp(lines, "trigger point", revision)
    file_type = lines.take("file type 'ASCII|BINARY|BINARY32|FLOAT32'", (1, 1))[0].upper()
    if file_type not in ("ASCII", *_BINARY):
        raise lines.error("file type ASCII, BINARY, BINARY32 or FLOAT32", repr(file_type))
    timemult = 1.0
    more = lines.optional() if revision >= 1999 else None
    if more is not None and more[0]:
        timemult = lines.num(float, more[0], "timemult")
    offset = 0
    if revision >= 2013 and (codes := lines.optional()) is not None and codes[0]:
        offset = _offset_ns(codes[0])
    return ComtradeConfig(
        head[0], head[1] if len(head) > 1 else "", revision, tuple(analogs), tuple(digitals),
        line_hz, tuple(rates[:nrates]),
        int(start.timestamp()) * _NS + start_frac - offset,
        int(trig.timestamp()) * _NS + trig_frac - offset,
        file_type, timemult or 1.0,
    )  # fmt: skip


def _stamp(lines: _Lines, what: str, revision: int) -> tuple[datetime, int]:
    form = "mm/dd/yy" if revision == 1991 else "dd/mm/yyyy"
    f = lines.take(f"{what} time stamp '{form},hh:mm:ss.ssssss'", (2, 2))
    try:
        return _time(f, revision)
    except (ValueError, IndexError):
        raise lines.error(
            f"{what} time stamp '{form},hh:mm:ss.ssssss'", repr(",".join(f))
        ) from None


def parse_dat(cfg: ComtradeConfig, data: bytes, name: str = "<dat>") -> ComtradeRecord:
    """Decode a .dat (``name``) of ``cfg.file_type``. A file cut short gives the whole
    samples before the cut and says so in ``damage``; a malformed sample, or no sample at
    all, is a ``ProtocolError`` naming the file and the line (ASCII) or record (binary)."""
    if cfg.file_type == "ASCII":
        n_col, raw_a, dig, damage = _ascii(cfg, data, name)
    else:
        n_col, raw_a, dig, damage = _binary(cfg, data)
    announced = cfg.rates[-1][1] if cfg.rates and cfg.rates[-1][0] > 0 else 0
    if len(n_col) == 0:
        why = damage or ("the file is empty" if not data.strip() else "")
        told = f"; the .cfg announces {announced}" if announced else ""
        raise ProtocolError(f"{name}: no complete sample{f': {why}' if why else ''}{told}")
    if damage is None and 0 < len(n_col) < announced:
        damage = f"ends after sample {len(n_col)}; the .cfg announces {announced} (endsamp)"
    elif damage is not None and announced:
        damage += f"; the .cfg announces {announced} samples"
    if damage is not None:
        damage = f"{name}: {damage}"
    a = np.array([c.a for c in cfg.analogs])
    b = np.array([c.b for c in cfg.analogs])
    return ComtradeRecord(cfg, _sample_times(cfg, n_col), raw_a * a + b, dig, damage)


def _ascii(
    cfg: ComtradeConfig, data: bytes, name: str
) -> tuple[npt.NDArray[np.int64], np.ndarray, np.ndarray, str | None]:
    lines = data.decode("latin-1").replace("\r", "").split("\n")
    rows = [(i + 1, r) for i, r in enumerate(lines) if r.strip()]
    n_a, n_d = len(cfg.analogs), len(cfg.digitals)
    want = 2 + n_a + n_d
    raw = np.full((len(rows), n_a), np.nan)
    dig = np.zeros((len(rows), n_d), dtype=np.uint8)
    stamps = np.zeros(len(rows), dtype=np.int64)
    damage = None
    # 1991 marks a missing sample 99999; 1999+ leave the field empty, but writers still
    # use 99999 in practice (never a real count: counts are 16/32-bit ranged by min/max).
    missing = 99999.0
    layout = f"'n,timestamp,{n_a} analog,{n_d} status'"
    for i, (lineno, row) in enumerate(rows):
        f = _fields(row)
        if len(f) < want:
            if i == len(rows) - 1:  # the last line, cut short: keep the samples before it
                damage = (f"line {lineno}: last sample cut short ({len(f)} of {want} fields "
                          f"{layout}); {i} complete sample(s) before it imported")  # fmt: skip
                raw, dig, stamps = raw[:i], dig[:i], stamps[:i]
                break
            raise ProtocolError(
                f"{name}: line {lineno}: expected {want} fields {layout}, found {len(f)}: "
                f"{row.strip()[:80]!r}"
            )
        col = 1
        try:
            stamps[i] = int(f[1]) if f[1] else -1
            for j in range(n_a):
                col = 2 + j
                v = f[col]
                if v and float(v) != missing:
                    raw[i, j] = float(v)
            for j in range(n_d):
                col = 2 + n_a + j
                dig[i, j] = int(f[col] or 0)
        except (ValueError, OverflowError):
            what = "time stamp" if col == 1 else "analog" if col < 2 + n_a else "status"
            raise ProtocolError(
                f"{name}: line {lineno}: field {col + 1} ({what}) is not a number: {f[col]!r}"
            ) from None
    return stamps, raw, dig, damage


def _binary(
    cfg: ComtradeConfig, data: bytes
) -> tuple[npt.NDArray[np.int64], np.ndarray, np.ndarray, str | None]:
    dtype, missing = _BINARY[cfg.file_type]
    n_a, n_d = len(cfg.analogs), len(cfg.digitals)
    words = -(-n_d // 16)
    rec = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", dtype, (n_a,)), ("d", "<u2", (words,))])
    count = len(data) // rec.itemsize
    damage = None
    if count * rec.itemsize != len(data):
        left = len(data) - count * rec.itemsize
        at = count * rec.itemsize
        damage = (f"record {count + 1} cut short ({left} of {rec.itemsize} bytes, at byte "
                  f"{at}); {count} complete sample(s) before it imported")  # fmt: skip
    arr = np.frombuffer(data, dtype=rec, count=count)
    raw = arr["a"].astype(np.float64).reshape(count, n_a)
    if missing is not None:
        raw[arr["a"].reshape(count, n_a) == missing] = np.nan
    bits = np.unpackbits(arr["d"].reshape(count, words).view(np.uint8), axis=1, bitorder="little")
    stamps = arr["t"].astype(np.int64)
    stamps[arr["t"] == 0xFFFFFFFF] = -1
    return stamps, raw, bits[:, :n_d].astype(np.uint8), damage


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
    """Read ``x.cfg`` (with ``x.dat`` beside it) or ``x.cff``; ``ProtocolError`` names the
    file (and the line or record) that is wrong."""
    p = Path(path)
    if p.suffix.lower() == ".cff":
        text, dat = split_cff(_read(p))
        cfg_name = dat_name = str(p)
    else:
        text = _decode_text(_read(p))
        dat_path = next(
            (q for q in (p.with_suffix(".dat"), p.with_suffix(".DAT")) if q.exists()), None
        )
        if dat_path is None:
            raise ProtocolError(f"{p}: no .dat file beside it")
        dat = _read(dat_path)
        cfg_name, dat_name = str(p), str(dat_path)
    return parse_dat(parse_cfg(text, cfg_name), dat, dat_name)


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ProtocolError(f"{p}: cannot read: {exc.strerror or exc}") from exc


def _decode_text(raw: bytes) -> str:
    """2013 files are UTF-8; older ones are often Latin-1 (5.2): try UTF-8 first."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
