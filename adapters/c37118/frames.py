"""The frames of IEEE C37.118.2-2011 as frozen, slotted records.

Config records keep the raw unit words (PHUNIT, ANUNIT, PHSCALE) they were decoded from
so that re-encoding is byte-identical. Data records hold engineering units: phasors as
rectangular complex numbers in V or A, frequency in Hz, ROCOF in Hz/s; absent values
(int16 0x8000, float NaN) are NaN.

Data records are built on the hot path (hundreds of thousands per second), so they do
no validation beyond what the codec already guarantees.
"""

from __future__ import annotations

__all__ = [
    "PhasorChannel",
    "AnalogChannel",
    "DigitalWord",
    "PmuConfig",
    "ConfigFrame",
    "PmuData",
    "DataFrame",
    "HeaderFrame",
    "CommandFrame",
    "Frame",
]

from dataclasses import dataclass, field
from typing import Any

from adapters.c37118.constants import (
    DataError,
    Format,
    FrameType,
    Stat,
    TimeQuality,
    TriggerReason,
    UnlockedTime,
)

_U24 = 0xFFFFFF
_CURRENT_BIT_PHSCALE = 0x0800  # CFG-3 PHSCALE word: bit 3 of the phasor type byte


class _TimeFields:
    """FRACSEC helpers shared by every frame with a header (clause 6.2, Table 3)."""

    __slots__ = ()
    fracsec: int
    soc: int

    @property
    def fraction(self) -> int:
        return self.fracsec & _U24

    @property
    def time_quality(self) -> TimeQuality:
        return TimeQuality(self.fracsec >> 24)

    @property
    def message_time_quality(self) -> int:
        """Table 4: 0 = clock locked to UTC, 0xF = clock failure."""
        return (self.fracsec >> 24) & 0x0F

    @property
    def leap_second_pending(self) -> bool:
        return bool((self.fracsec >> 24) & TimeQuality.LEAP_SECOND_PENDING)

    @property
    def leap_second_occurred(self) -> bool:
        return bool((self.fracsec >> 24) & TimeQuality.LEAP_SECOND_OCCURRED)

    @property
    def leap_second_delete(self) -> bool:
        """Direction of the leap second: False = add, True = delete."""
        return bool((self.fracsec >> 24) & TimeQuality.LEAP_SECOND_DELETE)

    def time_ns(self, time_base: int) -> int:
        """Event time in ns since the UNIX epoch: SOC + FRACSEC/TIME_BASE."""
        return (
            self.soc * 1_000_000_000
            + ((self.fracsec & _U24) * 1_000_000_000 + time_base // 2) // time_base
        )


@dataclass(frozen=True, slots=True)
class PhasorChannel:
    """One phasor channel of a PMU (Table 9 CHNAM/PHUNIT; CFG-3 Table 11 PHSCALE).

    ``scale`` is the engineering value of one int16 count in V or A: PHUNIT's 24-bit
    factor times 10^-5 for CFG-1/2, the float magnitude factor of PHSCALE for CFG-3. It
    is ignored for float phasors but still carried and re-encoded. ``phunit`` is the raw
    PHUNIT word (computed from ``scale`` when not given); ``phscale`` the raw first word
    of a CFG-3 PHSCALE (flags, phasor type, user byte); ``angle_offset`` its angle
    adjustment in radians, carried but not applied.
    """

    name: str
    is_current: bool
    scale: float
    phunit: int | None = None
    phscale: int = 0
    angle_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.phunit is None:
            factor = round(self.scale * 1e5) & _U24
            object.__setattr__(self, "phunit", (int(self.is_current) << 24) | factor)
        elif not 0 <= self.phunit <= 0xFFFFFFFF:
            raise ValueError(f"PHUNIT {self.phunit:#x} does not fit 32 bits")

    @property
    def unit(self) -> str:
        return "A" if self.is_current else "V"


@dataclass(frozen=True, slots=True)
class AnalogChannel:
    """One analog channel (Table 9 ANUNIT; CFG-3 ANSCALE).

    ``kind``: 0 point-on-wave, 1 RMS, 2 peak (ANUNIT upper byte). ``scale`` multiplies
    int16 counts (ANUNIT's signed 24-bit factor, or the CFG-3 float factor) and
    ``offset`` is added after scaling (CFG-3 only). ``anunit`` is the raw word.
    """

    name: str
    kind: int
    scale: float
    anunit: int | None = None
    offset: float = 0.0

    def __post_init__(self) -> None:
        if self.anunit is None:
            factor = round(self.scale) & _U24
            object.__setattr__(self, "anunit", ((self.kind & 0xFF) << 24) | factor)
        elif not 0 <= self.anunit <= 0xFFFFFFFF:
            raise ValueError(f"ANUNIT {self.anunit:#x} does not fit 32 bits")


@dataclass(frozen=True, slots=True)
class DigitalWord:
    """One 16-bit digital status word: its 16 bit labels (bit 0 first) and DIGUNIT masks
    (``normal`` status and ``valid`` inputs, Table 9)."""

    labels: tuple[str, ...]
    normal: int = 0
    valid: int = 0xFFFF

    def __post_init__(self) -> None:
        if len(self.labels) != 16:
            raise ValueError(f"a digital word has 16 labels, got {len(self.labels)}")


@dataclass(frozen=True, slots=True)
class PmuConfig:
    """One PMU block of a configuration frame (Table 9; CFG-3 Table 11 extras).

    The CFG-3 fields (``g_pmu_id``, ``lat``/``lon``/``elev`` in degrees and metres,
    ``svc_class`` "M" or "P", ``window`` and ``group_delay`` in µs, or in multiples of
    the nominal period when negative) are zero when the config came from CFG-1/2.
    """

    station: str
    idcode: int
    fmt: Format
    phasors: tuple[PhasorChannel, ...]
    analogs: tuple[AnalogChannel, ...] = ()
    digitals: tuple[DigitalWord, ...] = ()
    fnom_hz: float = 60.0
    cfgcnt: int = 0
    g_pmu_id: bytes = bytes(16)
    lat: float = 0.0
    lon: float = 0.0
    elev: float = 0.0
    svc_class: str = ""
    window: int = 0
    group_delay: int = 0

    def __post_init__(self) -> None:
        if self.fnom_hz not in (50.0, 60.0):
            raise ValueError(f"FNOM must be 50 or 60 Hz, got {self.fnom_hz}")
        if not 0 <= self.idcode <= 0xFFFF or not 0 <= self.cfgcnt <= 0xFFFF:
            raise ValueError("IDCODE and CFGCNT are unsigned 16-bit")
        if len(self.g_pmu_id) != 16:
            raise ValueError("G_PMU_ID is 16 bytes")

    @property
    def phasor_polar(self) -> bool:
        return bool(self.fmt & Format.PHASOR_POLAR)

    @property
    def phasor_float(self) -> bool:
        return bool(self.fmt & Format.PHASOR_FLOAT)

    @property
    def analog_float(self) -> bool:
        return bool(self.fmt & Format.ANALOG_FLOAT)

    @property
    def freq_float(self) -> bool:
        return bool(self.fmt & Format.FREQ_FLOAT)

    @property
    def data_size(self) -> int:
        """Bytes of this PMU's block in a data frame (clause 6.3, Table 5)."""
        ph = 8 if self.phasor_float else 4
        fq = 4 if self.freq_float else 2
        an = 4 if self.analog_float else 2
        return 2 + ph * len(self.phasors) + 2 * fq + an * len(self.analogs) + 2 * len(self.digitals)


@dataclass(frozen=True, slots=True)
class ConfigFrame(_TimeFields):
    """A CFG-1, CFG-2 or CFG-3 frame (clause 6.4).

    ``time_base`` is the 24-bit FRACSEC divisor; ``time_base_flags`` its reserved upper
    byte. ``data_rate`` as on the wire: positive frames per second, negative seconds per
    frame.
    """

    frame_type: FrameType
    version: int
    idcode: int
    soc: int
    fracsec: int
    time_base: int
    pmus: tuple[PmuConfig, ...]
    data_rate: int
    time_base_flags: int = 0
    _data_size: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.frame_type not in (FrameType.CFG1, FrameType.CFG2, FrameType.CFG3):
            raise ValueError(f"not a configuration frame type: {self.frame_type}")
        if not 0 < self.time_base <= _U24:
            raise ValueError(f"TIME_BASE must be 1..2^24-1, got {self.time_base}")
        if not self.pmus:
            raise ValueError("a configuration frame describes at least one PMU")
        if not -32768 <= self.data_rate <= 32767:
            raise ValueError("DATA_RATE is signed 16-bit")
        size = 16 + sum(p.data_size for p in self.pmus)
        object.__setattr__(self, "_data_size", size)

    @property
    def rate_hz(self) -> float:
        """Frames per second (0.0 when DATA_RATE is 0)."""
        if self.data_rate > 0:
            return float(self.data_rate)
        if self.data_rate < 0:
            return -1.0 / self.data_rate
        return 0.0

    @property
    def data_frame_size(self) -> int:
        """FRAMESIZE of the data frames this config describes."""
        return self._data_size

    @property
    def cfgcnt(self) -> tuple[int, ...]:
        return tuple(p.cfgcnt for p in self.pmus)


@dataclass(frozen=True, slots=True)
class PmuData:
    """One PMU block of a data frame (clause 6.3, Table 5), in engineering units."""

    stat: int
    phasors: tuple[complex, ...]
    freq_hz: float
    rocof: float
    analogs: tuple[float, ...] = ()
    digitals: tuple[int, ...] = ()

    @property
    def data_error(self) -> DataError:
        return DataError(self.stat >> 14)

    @property
    def sync_lost(self) -> bool:
        return bool(self.stat & Stat.SYNC_LOST)

    @property
    def sorted_by_arrival(self) -> bool:
        return bool(self.stat & Stat.SORT_BY_ARRIVAL)

    @property
    def trigger(self) -> bool:
        return bool(self.stat & Stat.TRIGGER)

    @property
    def config_changed(self) -> bool:
        return bool(self.stat & Stat.CONFIG_CHANGED)

    @property
    def data_modified(self) -> bool:
        return bool(self.stat & Stat.DATA_MODIFIED)

    @property
    def time_quality(self) -> int:
        """STAT bits 08-06, PMU time quality (Table 8)."""
        return (self.stat >> 6) & 0x7

    @property
    def unlock_time(self) -> UnlockedTime:
        return UnlockedTime((self.stat >> 4) & 0x3)

    @property
    def trigger_reason(self) -> int:
        """STAT bits 03-00; a :class:`TriggerReason` value or 8-15 (user defined)."""
        code = self.stat & 0xF
        return TriggerReason(code) if code < 8 else code


@dataclass(frozen=True, slots=True)
class DataFrame(_TimeFields):
    """A data frame (clause 6.3): one :class:`PmuData` per PMU of its config.

    The streaming decoder builds it lazily from the checked frame bytes: the fields are
    unpacked on first access, so frames that are only counted or forwarded cost little.
    """

    version: int
    idcode: int
    soc: int
    fracsec: int
    pmus: tuple[PmuData, ...]
    _raw: bytes | None = field(default=None, repr=False, compare=False)
    _layout: Any = field(default=None, repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        # Only reached for a field slot not filled yet, i.e. a lazily decoded frame.
        layout = object.__getattribute__(self, "_layout")
        if layout is None or name.startswith("__"):
            raise AttributeError(name)
        layout.fill(self, object.__getattribute__(self, "_raw"))
        return object.__getattribute__(self, name)

    @property
    def frame_type(self) -> FrameType:
        return FrameType.DATA

    @property
    def raw(self) -> bytes | None:
        """The whole frame (SYNC to CHK) as received and CRC-checked by the decoder;
        None for a frame built in code (``encode`` it with its config instead)."""
        raw: bytes | None = object.__getattribute__(self, "_raw")
        return raw


@dataclass(frozen=True, slots=True)
class HeaderFrame(_TimeFields):
    """A header frame (clause 6.6): free ASCII text about the PMU."""

    version: int
    idcode: int
    soc: int
    fracsec: int
    text: str

    @property
    def frame_type(self) -> FrameType:
        return FrameType.HEADER


@dataclass(frozen=True, slots=True)
class CommandFrame(_TimeFields):
    """A command frame (clause 6.5); ``extended`` is the extended frame data of CMD 8."""

    version: int
    idcode: int
    soc: int
    fracsec: int
    command: int
    extended: bytes = b""

    @property
    def frame_type(self) -> FrameType:
        return FrameType.COMMAND


Frame = DataFrame | ConfigFrame | HeaderFrame | CommandFrame
