"""Which columns of a stream feed which feature: computed once per ``StreamInfo``.

C37.118 streams (IEEE C37.118.2-2011 6.4, CFG-2 CHNAM/PHUNIT) name their phasors but do
not say which three form a set; the adapter reports ``phasor`` and ``phase`` per column.
A three-phase set is the first A, B and C magnitude columns of one quantity (voltage or
current, told apart by unit); without one, a positive-sequence ("1") phasor is used,
else the mean of whatever phases exist.
"""

from __future__ import annotations

__all__ = ["Layout", "PhasorSet", "layout_of"]

from dataclasses import dataclass

from edgepipe.core import ChannelInfo, ChannelKind, StreamInfo

_VOLT_UNITS = frozenset({"v", "kv"})
_AMP_UNITS = frozenset({"a", "ka"})


@dataclass(frozen=True, slots=True)
class PhasorSet:
    """Magnitude (and angle, -1 if none) columns of one quantity.

    ``mode`` is "abc" (Fortescue possible), "pos" (a positive-sequence column) or "mean"
    (mean of the available phases); ``nominal`` is the per-unit base, 0 = unknown.
    """

    mode: str
    mags: tuple[int, ...]
    angles: tuple[int, ...]
    nominal: float

    @property
    def has_angles(self) -> bool:
        return bool(self.angles) and all(a >= 0 for a in self.angles)


@dataclass(frozen=True, slots=True)
class Layout:
    voltage: PhasorSet | None
    current: PhasorSet | None
    freq: int  # column, -1 = none
    rocof: int
    f_nominal: float  # Hz, 0 = unknown
    channels: int


def _angle_columns(channels: tuple[ChannelInfo, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, c in enumerate(channels):
        if c.kind is ChannelKind.ANGLE and c.phasor and c.phasor not in out:
            out[c.phasor] = i
    return out


def _phasor_set(channels: tuple[ChannelInfo, ...], units: frozenset[str]) -> PhasorSet | None:
    angles = _angle_columns(channels)
    mags = [
        (i, c)
        for i, c in enumerate(channels)
        if c.kind is ChannelKind.MAGNITUDE and c.unit.lower() in units
    ]
    if not mags:
        return None
    by_phase: dict[str, tuple[int, ChannelInfo]] = {}
    for i, c in mags:
        by_phase.setdefault(c.phase.upper(), (i, c))
    if all(p in by_phase for p in "ABC"):
        chosen = [by_phase[p] for p in "ABC"]
        mode = "abc"
    elif "1" in by_phase:
        chosen = [by_phase["1"]]
        mode = "pos"
    else:
        chosen = [(i, c) for i, c in mags]
        mode = "mean"
    nominals = [c.nominal for _, c in chosen]
    nominal = sum(nominals) / len(nominals) if all(n > 0 for n in nominals) else 0.0
    return PhasorSet(
        mode=mode,
        mags=tuple(i for i, _ in chosen),
        angles=tuple(angles.get(c.phasor, -1) if c.phasor else -1 for _, c in chosen),
        nominal=nominal,
    )


def _first(channels: tuple[ChannelInfo, ...], kind: ChannelKind) -> int:
    return next((i for i, c in enumerate(channels) if c.kind is kind), -1)


_CACHE: dict[int, tuple[StreamInfo, Layout]] = {}
_INTERNED: dict[Layout, Layout] = {}


def layout_of(info: StreamInfo) -> Layout:
    """The layout of ``info``, cached by identity (a stream keeps its ``StreamInfo``);
    equal layouts are returned as the same object."""
    hit = _CACHE.get(id(info))
    if hit is not None and hit[0] is info:
        return hit[1]
    ch = info.channels
    freq = _first(ch, ChannelKind.FREQUENCY)
    f_nom = ch[freq].nominal if freq >= 0 and ch[freq].nominal > 0 else info.nominal_hz
    layout = Layout(
        voltage=_phasor_set(ch, _VOLT_UNITS),
        current=_phasor_set(ch, _AMP_UNITS),
        freq=freq,
        rocof=_first(ch, ChannelKind.ROCOF),
        f_nominal=max(f_nom, 0.0),
        channels=len(ch),
    )
    if len(_CACHE) > 4096:  # bounded: streams come and go on reconfiguration
        _CACHE.clear()
        _INTERNED.clear()
    # One object per distinct layout, so callers can group windows by identity cheaply.
    layout = _INTERNED.setdefault(layout, layout)
    _CACHE[id(info)] = (info, layout)
    return layout
