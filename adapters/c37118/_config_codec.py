"""Configuration frames: CFG-1/CFG-2 (clause 6.4, Table 9) and CFG-3 (Table 11).

CFG-1/2 body after the common header::

    TIME_BASE(4) NUM_PMU(2) { STN(16) IDCODE(2) FORMAT(2) PHNMR(2) ANNMR(2) DGNMR(2)
      CHNAM(16 each) PHUNIT(4 each) ANUNIT(4 each) DIGUNIT(4 each) FNOM(2) CFGCNT(2) }*
    DATA_RATE(2)

CFG-3 body::

    CONT_IDX(2) TIME_BASE(4) NUM_PMU(2) { STN(len+utf8) IDCODE(2) G_PMU_ID(16) FORMAT(2)
      PHNMR(2) ANNMR(2) DGNMR(2) CHNAM(len+utf8 each) PHSCALE(12 each) ANSCALE(8 each)
      DIGUNIT(4 each) PMU_LAT(4f) PMU_LON(4f) PMU_ELEV(4f) SVC_CLASS(1) WINDOW(4)
      GRP_DLY(4) FNOM(2) CFGCNT(2) }*  DATA_RATE(2)

A large CFG-3 is split over several frames; each carries CONT_IDX (1, 2, ... and 0xFFFF
for the last) and a slice of the body after CONT_IDX.
"""

from __future__ import annotations

__all__ = ["decode_cfg12_body", "encode_cfg12_body", "decode_cfg3_body", "encode_cfg3_body"]

import struct

from adapters.c37118.constants import Format
from adapters.c37118.frames import AnalogChannel, DigitalWord, PhasorChannel, PmuConfig

_H = struct.Struct(">H")
_I = struct.Struct(">I")
_TB_NUM = struct.Struct(">IH")
_CFG12_PMU = struct.Struct(">16sHHHHH")
_CFG3_PMU = struct.Struct(">H16sHHHH")
_PHSCALE = struct.Struct(">Iff")
_ANSCALE = struct.Struct(">ff")
_DIGUNIT = struct.Struct(">HH")
_CFG3_TAIL = struct.Struct(">fffcii")
_TAIL = struct.Struct(">HH")
_DATA_RATE = struct.Struct(">h")


def _name16(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


def _pad16(name: str) -> bytes:
    raw = name.encode("latin-1")
    if len(raw) > 16:
        raise ValueError(f"name {name!r} is longer than 16 bytes")
    return raw.ljust(16, b" ")


def _signed24(x: int) -> int:
    x &= 0xFFFFFF
    return x - 0x1000000 if x & 0x800000 else x


def _fnom(word: int) -> float:
    return 50.0 if word & 1 else 60.0


def decode_cfg12_body(
    body: bytes, pos: int, end: int
) -> tuple[int, int, tuple[PmuConfig, ...], int]:
    """Parse ``body[pos:end]``; returns (end position, TIME_BASE word with its flags byte,
    pmus, data_rate). Raises struct.error or ValueError on a short or bad body."""
    tb, num = _TB_NUM.unpack_from(body, pos)
    pos += 6
    pmus = []
    for _ in range(num):
        stn, idcode, fmt, phn, ann, dgn = _CFG12_PMU.unpack_from(body, pos)
        pos += 26
        nnames = phn + ann + 16 * dgn
        if pos + 16 * nnames + 4 * (phn + ann + dgn) + 4 > end:
            raise ValueError("channel counts overrun the frame")
        names = [_name16(body[pos + 16 * i : pos + 16 * i + 16]) for i in range(nnames)]
        pos += 16 * nnames
        units = struct.unpack_from(f">{phn + ann}I{2 * dgn}H", body, pos)
        pos += 4 * (phn + ann + dgn)
        phasors = tuple(
            PhasorChannel(names[i], bool(u >> 24), (u & 0xFFFFFF) * 1e-5, phunit=u)
            for i, u in enumerate(units[:phn])
        )
        # ANUNIT's factor is "user defined scaling" (Table 10); a factor of 0 would zero
        # every integer analog, so it means unscaled counts (as the encoder writes them).
        analogs = tuple(
            AnalogChannel(names[phn + i], u >> 24, float(_signed24(u) or 1), anunit=u)
            for i, u in enumerate(units[phn : phn + ann])
        )
        digitals = tuple(
            DigitalWord(
                tuple(names[phn + ann + 16 * i : phn + ann + 16 * i + 16]),
                units[phn + ann + 2 * i],
                units[phn + ann + 2 * i + 1],
            )
            for i in range(dgn)
        )
        fnom, cfgcnt = _TAIL.unpack_from(body, pos)
        pos += 4
        pmus.append(
            PmuConfig(
                _name16(stn), idcode, Format(fmt), phasors, analogs, digitals, _fnom(fnom), cfgcnt
            )
        )
    (rate,) = _DATA_RATE.unpack_from(body, pos)
    return pos + 2, tb, tuple(pmus), rate


def encode_cfg12_body(time_base: int, pmus: tuple[PmuConfig, ...], data_rate: int) -> bytes:
    out = [_TB_NUM.pack(time_base, len(pmus))]
    for p in pmus:
        out.append(
            _CFG12_PMU.pack(
                _pad16(p.station),
                p.idcode,
                int(p.fmt),
                len(p.phasors),
                len(p.analogs),
                len(p.digitals),
            )
        )
        out.extend(_pad16(c.name) for c in p.phasors)
        out.extend(_pad16(a.name) for a in p.analogs)
        out.extend(_pad16(label) for d in p.digitals for label in d.labels)
        out.extend(_I.pack(c.phunit or 0) for c in p.phasors)
        out.extend(_I.pack(a.anunit or 0) for a in p.analogs)
        out.extend(_DIGUNIT.pack(d.normal, d.valid) for d in p.digitals)
        out.append(_TAIL.pack(1 if p.fnom_hz == 50.0 else 0, p.cfgcnt))
    out.append(_DATA_RATE.pack(data_rate))
    return b"".join(out)


def _name_var(body: bytes, pos: int) -> tuple[str, int]:
    n = body[pos]
    raw = body[pos + 1 : pos + 1 + n]
    if len(raw) != n:
        raise ValueError("name overruns the frame")
    return raw.decode("utf-8", errors="replace"), pos + 1 + n


def _pack_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"CFG-3 name longer than 255 bytes: {name[:20]!r}...")
    return bytes((len(raw),)) + raw


def decode_cfg3_body(body: bytes) -> tuple[int, tuple[PmuConfig, ...], int]:
    """Parse an assembled CFG-3 body (after CONT_IDX, up to and including DATA_RATE).
    Returns (time_base word, pmus, data_rate)."""
    tb, num = _TB_NUM.unpack_from(body, 0)
    pos = 6
    pmus = []
    for _ in range(num):
        station, pos = _name_var(body, pos)
        idcode, gid, fmt, phn, ann, dgn = _CFG3_PMU.unpack_from(body, pos)
        pos += 26
        names = []
        for _ in range(phn + ann + 16 * dgn):
            name, pos = _name_var(body, pos)
            names.append(name)
        phasors = []
        for i in range(phn):
            word, scale, offset = _PHSCALE.unpack_from(body, pos)
            pos += 12
            phasors.append(
                PhasorChannel(
                    names[i],
                    bool(word & 0x0800),
                    scale,
                    phscale=word & ~0x0800,
                    angle_offset=offset,
                )
            )
        analogs = []
        for i in range(ann):
            scale, offset = _ANSCALE.unpack_from(body, pos)
            pos += 8
            analogs.append(AnalogChannel(names[phn + i], 0, scale, offset=offset))
        digitals = []
        for i in range(dgn):
            normal, valid = _DIGUNIT.unpack_from(body, pos)
            pos += 4
            labels = tuple(names[phn + ann + 16 * i : phn + ann + 16 * i + 16])
            digitals.append(DigitalWord(labels, normal, valid))
        lat, lon, elev, svc, window, delay = _CFG3_TAIL.unpack_from(body, pos)
        pos += _CFG3_TAIL.size
        fnom, cfgcnt = _TAIL.unpack_from(body, pos)
        pos += 4
        pmus.append(
            PmuConfig(
                station,
                idcode,
                Format(fmt),
                tuple(phasors),
                tuple(analogs),
                tuple(digitals),
                _fnom(fnom),
                cfgcnt,
                gid,
                lat,
                lon,
                elev,
                svc.decode("latin-1").rstrip("\x00"),
                window,
                delay,
            )
        )
    (rate,) = _DATA_RATE.unpack_from(body, pos)
    if pos + 2 != len(body):
        raise ValueError("CFG-3 body longer than its fields")
    return tb, tuple(pmus), rate


def encode_cfg3_body(time_base: int, pmus: tuple[PmuConfig, ...], data_rate: int) -> bytes:
    out = [_TB_NUM.pack(time_base, len(pmus))]
    for p in pmus:
        out.append(_pack_name(p.station))
        out.append(
            _CFG3_PMU.pack(
                p.idcode, p.g_pmu_id, int(p.fmt), len(p.phasors), len(p.analogs), len(p.digitals)
            )
        )
        out.extend(_pack_name(c.name) for c in p.phasors)
        out.extend(_pack_name(a.name) for a in p.analogs)
        out.extend(_pack_name(label) for d in p.digitals for label in d.labels)
        for c in p.phasors:
            word = (c.phscale & ~0x0800) | (0x0800 if c.is_current else 0)
            out.append(_PHSCALE.pack(word, c.scale, c.angle_offset))
        out.extend(_ANSCALE.pack(a.scale, a.offset) for a in p.analogs)
        out.extend(_DIGUNIT.pack(d.normal, d.valid) for d in p.digitals)
        svc = (p.svc_class or "\x00").encode("latin-1")[:1]
        out.append(_CFG3_TAIL.pack(p.lat, p.lon, p.elev, svc, p.window, p.group_delay))
        out.append(_TAIL.pack(1 if p.fnom_hz == 50.0 else 0, p.cfgcnt))
    out.append(_DATA_RATE.pack(data_rate))
    return b"".join(out)
