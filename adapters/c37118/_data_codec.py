"""Data frames (clause 6.3, Table 5), compiled once per configuration.

Data frame layout after the common header, repeated for each PMU of the config::

    STAT(2) PHASORS(4 or 8 each) FREQ(2/4) DFREQ(2/4) ANALOG(2/4 each) DIGITAL(2 each)

Integer encodings: rectangular phasors are two int16 counts times the PHUNIT factor;
polar phasors an unsigned 16-bit magnitude count and an int16 angle in 10^-4 rad; FREQ
is the deviation from FNOM in mHz and DFREQ the ROCOF in Hz/s times 100. 0x8000 marks
absent data (2011 clause 6.3).

One :class:`DataLayout` holds a ``struct.Struct`` for the whole frame and one builder
per PMU, so decoding a frame is one ``unpack_from`` plus a few C-level maps.
"""

from __future__ import annotations

__all__ = ["DataLayout", "layout_for"]

import cmath
import math
import struct
from collections.abc import Callable
from itertools import repeat
from operator import mul
from typing import Any

from adapters.c37118.constants import ABSENT_INT16
from adapters.c37118.frames import ConfigFrame, DataFrame, PmuConfig, PmuData

_NAN = math.nan
_rect = cmath.rect
_ANGLE = 1e-4  # int16 polar angle unit, radians


def _setter(name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = vars(DataFrame)[name].__set__
    return setter


# Slot setters: they fill a frozen record without its __init__ (the decoder's hot path).
_new = object.__new__
_set_raw = _setter("_raw")
_set_layout = _setter("_layout")
_set_version = _setter("version")
_set_idcode = _setter("idcode")
_set_soc = _setter("soc")
_set_fracsec = _setter("fracsec")
_set_pmus = _setter("pmus")

Builder = Callable[[tuple[Any, ...]], PmuData]


def _pmu_format(p: PmuConfig) -> str:
    ph = ("ff" if p.phasor_float else ("Hh" if p.phasor_polar else "hh")) * len(p.phasors)
    fq = "ff" if p.freq_float else "hh"
    an = ("f" if p.analog_float else "h") * len(p.analogs)
    return "H" + ph + fq + an + "H" * len(p.digitals)


def _phasor_fn(p: PmuConfig, a: int) -> Callable[[tuple[Any, ...]], tuple[complex, ...]]:
    b = a + 2 * len(p.phasors)
    if p.phasor_float:
        if p.phasor_polar:
            return lambda v: _safe_rect(v[a:b:2], v[a + 1 : b : 2])
        return lambda v: tuple(map(complex, v[a:b:2], v[a + 1 : b : 2]))
    scales = tuple(c.scale for c in p.phasors)
    if p.phasor_polar:

        def polar(v: tuple[Any, ...]) -> tuple[complex, ...]:
            angles = v[a + 1 : b : 2]
            out = tuple(map(_rect, map(mul, v[a:b:2], scales), map(mul, angles, repeat(_ANGLE))))
            # int16 angles are finite, so cmath.rect cannot fail here.
            if ABSENT_INT16 in angles:
                nan = complex(_NAN, _NAN)
                out = tuple(
                    nan if t == ABSENT_INT16 else z for z, t in zip(out, angles, strict=True)
                )
            return out

        return polar

    def rect(v: tuple[Any, ...]) -> tuple[complex, ...]:
        re, im = v[a:b:2], v[a + 1 : b : 2]
        out = tuple(map(complex, map(mul, re, scales), map(mul, im, scales)))
        if ABSENT_INT16 in v[a:b]:
            nan = complex(_NAN, _NAN)
            out = tuple(
                nan if ABSENT_INT16 in (x, y) else z for z, x, y in zip(out, re, im, strict=True)
            )
        return out

    return rect


def _rect_or_nan(mag: float, ang: float) -> complex:
    try:
        return _rect(mag, ang)
    except (ValueError, OverflowError):  # an infinite angle has no direction
        return complex(_NAN, _NAN)


def _safe_rect(mags: tuple[float, ...], angs: tuple[float, ...]) -> tuple[complex, ...]:
    try:
        return tuple(map(_rect, mags, angs))
    except (ValueError, OverflowError):
        return tuple(map(_rect_or_nan, mags, angs))


def _int_or_nan(x: int, factor: float, offset: float = 0.0) -> float:
    return _NAN if x == ABSENT_INT16 else x * factor + offset


def _builder(p: PmuConfig, start: int) -> Builder:
    """A function turning the unpacked tuple into this PMU's :class:`PmuData`."""
    phasors = _phasor_fn(p, start + 1)
    f = start + 1 + 2 * len(p.phasors)
    a0, a1 = f + 2, f + 2 + len(p.analogs)
    d1 = a1 + len(p.digitals)
    fnom = p.fnom_hz
    if p.analog_float:

        def analogs(v: tuple[Any, ...]) -> tuple[float, ...]:
            return v[a0:a1]
    else:
        ascale = tuple(c.scale for c in p.analogs)
        aoff = tuple(c.offset for c in p.analogs)

        def analogs(v: tuple[Any, ...]) -> tuple[float, ...]:
            return tuple(map(_int_or_nan, v[a0:a1], ascale, aoff))

    if p.freq_float:

        def build(v: tuple[Any, ...]) -> PmuData:
            return PmuData(v[start], phasors(v), v[f], v[f + 1], analogs(v), v[a1:d1])
    else:

        def build(v: tuple[Any, ...]) -> PmuData:
            fr, df = v[f], v[f + 1]
            return PmuData(
                v[start],
                phasors(v),
                _NAN if fr == ABSENT_INT16 else fnom + fr * 0.001,
                _NAN if df == ABSENT_INT16 else df * 0.01,
                analogs(v),
                v[a1:d1],
            )

    return build


class DataLayout:
    """How the data frames of one configuration are laid out; decodes and encodes them."""

    __slots__ = ("_builders", "_struct", "config", "size")

    def __init__(self, config: ConfigFrame) -> None:
        self.config = config
        fmt = ">2xHHII" + "".join(_pmu_format(p) for p in config.pmus)
        self._struct = struct.Struct(fmt)
        self.size = self._struct.size + 2
        builders = []
        start = 4
        for p in config.pmus:
            builders.append(_builder(p, start))
            start += len(_pmu_format(p))
        self._builders = tuple(builders)

    def decode(self, frame: bytes, version: int) -> DataFrame:
        """Decode a frame whose size, sync and CHK are already checked."""
        v = self._struct.unpack_from(frame)
        return DataFrame(version, v[1], v[2], v[3], tuple([b(v) for b in self._builders]))

    def lazy(self, frame: bytes) -> DataFrame:
        """A :class:`DataFrame` decoded on first access (frame already checked)."""
        obj = _new(DataFrame)
        _set_raw(obj, frame)
        _set_layout(obj, self)
        return obj

    def fill(self, obj: DataFrame, frame: bytes) -> None:
        """Decode the fields of a lazy ``obj`` from ``frame``."""
        v = self._struct.unpack_from(frame)
        _set_version(obj, frame[1] & 0x0F)
        _set_idcode(obj, v[1])
        _set_soc(obj, v[2])
        _set_fracsec(obj, v[3])
        _set_pmus(obj, tuple([b(v) for b in self._builders]))

    def encode_body(self, frame: DataFrame) -> list[Any]:
        """The values to pack after SYNC and FRAMESIZE (CHK excluded)."""
        if len(frame.pmus) != len(self.config.pmus):
            raise ValueError(f"config has {len(self.config.pmus)} PMUs, frame {len(frame.pmus)}")
        values: list[Any] = [self.size, frame.idcode, frame.soc, frame.fracsec]
        for p, d in zip(self.config.pmus, frame.pmus, strict=True):
            _encode_pmu(p, d, values)
        return values

    def pack(self, values: list[Any]) -> bytes:
        return self._struct.pack(*values)


def _count(x: float) -> int:
    return ABSENT_INT16 if math.isnan(x) else round(x)


def _encode_pmu(p: PmuConfig, d: PmuData, out: list[Any]) -> None:
    if (len(d.phasors), len(d.analogs), len(d.digitals)) != (
        len(p.phasors),
        len(p.analogs),
        len(p.digitals),
    ):
        raise ValueError(f"PMU {p.idcode}: data does not match its config channel counts")
    out.append(d.stat)
    for c, z in zip(p.phasors, d.phasors, strict=True):
        if p.phasor_polar:
            mag, ang = abs(z), cmath.phase(z)
            if p.phasor_float:
                out += (mag, ang)
            elif math.isnan(mag):
                out += (0x8000, ABSENT_INT16)
            else:
                out += (round(mag / c.scale), round(ang / _ANGLE))
        elif p.phasor_float:
            out += (z.real, z.imag)
        else:
            out += (_count(z.real / c.scale), _count(z.imag / c.scale))
    if p.freq_float:
        out += (d.freq_hz, d.rocof)
    else:
        out += (_count((d.freq_hz - p.fnom_hz) * 1000.0), _count(d.rocof * 100.0))
    if p.analog_float:
        out += d.analogs
    else:
        out += (
            _count((x - a.offset) / a.scale) if a.scale else _count(x)
            for a, x in zip(p.analogs, d.analogs, strict=True)
        )
    out += d.digitals


_LAYOUTS: dict[tuple[int, tuple[int, ...], int], DataLayout] = {}


def layout_for(config: ConfigFrame) -> DataLayout:
    """The cached layout of ``config`` (keyed by IDCODE, CFGCNTs and identity)."""
    key = (config.idcode, config.cfgcnt, id(config))
    layout = _LAYOUTS.get(key)
    # The layout holds the config, so its id cannot be reused while cached.
    if layout is None or layout.config is not config:
        if len(_LAYOUTS) > 256:  # bounded: configs churn only on reconfiguration
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = DataLayout(config)
    return layout
