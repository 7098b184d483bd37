"""Vectorised decoding of many data frames of one config (clause 6.3, Table 5).

Equal-length data frames are viewed through one numpy structured dtype, so decoding
thousands of frames costs a few array operations plus one CRC call per frame.
"""

from __future__ import annotations

__all__ = ["DataBlock", "decode_data_block"]

from binascii import crc_hqx
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.c37118._data_codec import layout_for
from adapters.c37118._errors import ChecksumError, ConfigMismatchError, FrameSizeError
from adapters.c37118.constants import ABSENT_INT16, SYNC_BYTE
from adapters.c37118.frames import ConfigFrame, PmuConfig

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class DataBlock:
    """``n`` data frames as arrays. Columns of all PMUs are concatenated in config order;
    ``pmu_phasors[k]`` (and ``pmu_analogs``/``pmu_digitals``) slice out PMU ``k``.

    times_ns (n,) int64; time_quality (n,) FRACSEC upper byte; stat/freq/rocof (n, k)
    for k PMUs; phasors (n, P) complex V/A; analogs (n, A); digitals (n, D) uint16.
    """

    times_ns: I64
    time_quality: U8
    stat: U16
    phasors: C128
    freq: F64
    rocof: F64
    analogs: F64
    digitals: U16
    pmu_phasors: tuple[slice, ...]
    pmu_analogs: tuple[slice, ...]
    pmu_digitals: tuple[slice, ...]

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])


def _pmu_fields(i: int, p: PmuConfig) -> list[tuple[str, object, tuple[int, ...]]]:
    nph, nan, ndg = len(p.phasors), len(p.analogs), len(p.digitals)
    if p.phasor_float:
        ph: object = ">f4"
    elif p.phasor_polar:
        ph = np.dtype([("m", ">u2"), ("a", ">i2")])
    else:
        ph = ">i2"
    fq = ">f4" if p.freq_float else ">i2"
    return [
        (f"stat{i}", ">u2", ()),
        (f"ph{i}", ph, (nph,) if p.phasor_polar and not p.phasor_float else (nph, 2)),
        (f"freq{i}", fq, ()),
        (f"dfreq{i}", fq, ()),
        (f"an{i}", ">f4" if p.analog_float else ">i2", (nan,)),
        (f"dg{i}", ">u2", (ndg,)),
    ]


def _dtype(config: ConfigFrame) -> np.dtype[np.void]:
    fields: list[tuple[str, object, tuple[int, ...]]] = [
        ("sync", ">u2", ()),
        ("size", ">u2", ()),
        ("idcode", ">u2", ()),
        ("soc", ">u4", ()),
        ("fracsec", ">u4", ()),
    ]
    for i, p in enumerate(config.pmus):
        fields += _pmu_fields(i, p)
    fields.append(("chk", ">u2", ()))
    return np.dtype([(n, t, s) if s else (n, t) for n, t, s in fields])


def _absent(raw: npt.NDArray[np.int16], values: F64) -> F64:
    values[raw == ABSENT_INT16] = np.nan
    return values


def _phasors(arr: np.ndarray, i: int, p: PmuConfig) -> C128:
    raw = arr[f"ph{i}"]
    if p.phasor_float:
        a, b = raw[..., 0].astype(np.float64), raw[..., 1].astype(np.float64)
        out: C128 = (a * np.exp(1j * b)) if p.phasor_polar else (a + 1j * b)
        return out.astype(np.complex128)
    scale = np.array([c.scale for c in p.phasors], dtype=np.float64)
    if p.phasor_polar:
        mag = raw["m"].astype(np.float64) * scale
        ang = raw["a"].astype(np.float64) * 1e-4
        out = (mag * np.exp(1j * ang)).astype(np.complex128)
        out[raw["a"] == ABSENT_INT16] = complex(np.nan, np.nan)
        return out
    re = raw[..., 0].astype(np.float64) * scale
    im = raw[..., 1].astype(np.float64) * scale
    out = (re + 1j * im).astype(np.complex128)
    out[(raw == ABSENT_INT16).any(axis=-1)] = complex(np.nan, np.nan)
    return out


def _check(buf: bytes, size: int, arr: np.ndarray, config: ConfigFrame, crc: bool) -> None:
    """SYNC, frame type, FRAMESIZE and IDCODE of every frame; CHK when ``crc``."""
    if (arr["sync"] >> 8 != SYNC_BYTE).any() or (arr["sync"] & 0xF0).any():
        raise FrameSizeError("a frame of the block is not a data frame (SYNC word)")
    if (arr["size"] != size).any() or (arr["idcode"] != config.idcode).any():
        raise ConfigMismatchError(config.idcode, "block frames do not match the config")
    if crc:
        view = memoryview(buf)
        chk = arr["chk"].tolist()
        for k in range(len(chk)):
            start = k * size
            if crc_hqx(view[start : start + size - 2], 0xFFFF) != chk[k]:
                raise ChecksumError(f"bad CHK in frame {k} of the block")


def decode_data_block(
    frames: Sequence[bytes] | bytes, config: ConfigFrame, check_crc: bool = True
) -> DataBlock:
    """Decode equal-length data frames of ``config`` (a list, or their concatenation).

    Raises :class:`ChecksumError`, :class:`FrameSizeError` or
    :class:`ConfigMismatchError` if any frame is bad; use the streaming decoder to
    skip bad frames instead.
    """
    size = layout_for(config).size
    if isinstance(frames, bytes | bytearray | memoryview):
        buf = bytes(frames)
    else:
        if any(len(f) != size for f in frames):
            raise ConfigMismatchError(config.idcode, f"block frames must be {size} bytes")
        buf = b"".join(frames)
    if len(buf) % size:
        raise FrameSizeError(f"{len(buf)} bytes is not a whole number of {size}-byte frames")
    n = len(buf) // size
    arr = np.frombuffer(buf, dtype=_dtype(config), count=n)
    _check(buf, size, arr, config, check_crc)
    frac = (arr["fracsec"] & 0xFFFFFF).astype(np.int64)
    tb = config.time_base
    times = arr["soc"].astype(np.int64) * 1_000_000_000 + (frac * 1_000_000_000 + tb // 2) // tb
    stat, freq, rocof, phasors, analogs, digitals = [], [], [], [], [], []
    sl_ph, sl_an, sl_dg = [], [], []
    nph = nan = ndg = 0
    for i, p in enumerate(config.pmus):
        stat.append(arr[f"stat{i}"].astype(np.uint16))
        phasors.append(_phasors(arr, i, p))
        f, df = arr[f"freq{i}"], arr[f"dfreq{i}"]
        if p.freq_float:
            freq.append(f.astype(np.float64))
            rocof.append(df.astype(np.float64))
        else:
            freq.append(_absent(f, p.fnom_hz + f.astype(np.float64) * 1e-3))
            rocof.append(_absent(df, df.astype(np.float64) * 1e-2))
        an = arr[f"an{i}"]
        if p.analog_float:
            analogs.append(an.astype(np.float64))
        else:
            scale = np.array([a.scale for a in p.analogs], dtype=np.float64)
            offset = np.array([a.offset for a in p.analogs], dtype=np.float64)
            analogs.append(_absent(an, an.astype(np.float64) * scale + offset))
        digitals.append(arr[f"dg{i}"].astype(np.uint16))
        sl_ph.append(slice(nph, nph + len(p.phasors)))
        sl_an.append(slice(nan, nan + len(p.analogs)))
        sl_dg.append(slice(ndg, ndg + len(p.digitals)))
        nph, nan, ndg = nph + len(p.phasors), nan + len(p.analogs), ndg + len(p.digitals)
    return DataBlock(
        times_ns=times,
        time_quality=(arr["fracsec"] >> 24).astype(np.uint8),
        stat=np.stack(stat, axis=1),
        phasors=np.concatenate(phasors, axis=1),
        freq=np.stack(freq, axis=1),
        rocof=np.stack(rocof, axis=1),
        analogs=np.concatenate(analogs, axis=1),
        digitals=np.concatenate(digitals, axis=1),
        pmu_phasors=tuple(sl_ph),
        pmu_analogs=tuple(sl_an),
        pmu_digitals=tuple(sl_dg),
    )
