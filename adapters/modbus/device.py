"""Per-device value state (sans-IO, pure): decoded reads in, one ``SampleBatch`` row out.

Each numeric point is one channel. A point keeps its last value between reads; a read
that fails (timeout, garbage) leaves it untouched, and once a point has not been
refreshed for ``stale_after_s`` the row is flagged ``STALE``. A point whose address the
device refuses (exception 2 "illegal data address", 3 "illegal data value") is
``INVALID``: its channel is NaN until a read succeeds again, and the other points go on.
Rows are stamped with the arrival time of the cycle's last response
(``Quality.RECEIPT_TIME``): Modbus carries no time of its own.
"""

from __future__ import annotations

__all__ = ["REFUSED", "DeviceConfig", "DeviceState", "stream_info"]

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from math import isnan

import numpy as np

from adapters.modbus.decode import DecodeError, ReadDecoder
from adapters.modbus.plan import ReadRequest, plan_reads
from adapters.modbus.profile import DeviceProfile, PointType
from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo

#: Exception codes that refuse the addresses themselves (MODBUS v1.1b3 clause 7).
REFUSED = frozenset({2, 3})
_BITS = (PointType.BOOL, PointType.BIT)
_RECEIPT, _STALE = int(Quality.RECEIPT_TIME), int(Quality.STALE)
_DEVICE_ERROR, _INVALID = int(Quality.DEVICE_ERROR), int(Quality.INVALID)
# a read's decoder, the channel of each of its fast values, and their deadbands
# and (first, last + 1) channel when they are consecutive without deadband
_Compiled = tuple[ReadDecoder, list[int], list[float], tuple[int, int] | None]


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One device behind the connection; ``unit_id`` overrides the profile's."""

    profile: DeviceProfile
    unit_id: int
    asset: str
    stream: str


def stream_info(source: str, dev: DeviceConfig) -> StreamInfo:
    """The stream of one device: one ANALOG (DIGITAL for bits) channel per numeric point."""
    channels = tuple(
        ChannelInfo(
            p.name,
            ChannelKind.DIGITAL
            if p.type in (PointType.BOOL, PointType.BIT)
            else ChannelKind.ANALOG,
            p.unit,
        )
        for p in dev.profile.numeric_points()
    )
    return StreamInfo(
        stream=dev.stream, source=source, asset=dev.asset, channels=channels,
        rate_hz=1.0 / dev.profile.poll_interval_s, kind=dev.profile.kind,
        params=dev.profile.params,
    )  # fmt: skip


@lru_cache(maxsize=512)
def _compile(profile: DeviceProfile, shape: ReadRequest) -> _Compiled:
    """One read's decoder, channels, deadbands and block span. Shared by every device of
    the same profile (``shape`` has unit 0): fifty meters behind one gateway then touch
    one set of decoders per poll round, not fifty, which keeps the per-read working set
    small when each read starts on caches the sleep between rounds has cooled."""
    dec = ReadDecoder(shape, profile.points)
    numeric = [i for i, p in enumerate(profile.points) if p.numeric]
    channel = {pi: ci for ci, pi in enumerate(numeric)}
    channels = [channel[i] for i in dec.fast]
    deadbands = [profile.points[i].deadband for i in dec.fast]
    lo = channels[0] if channels else 0
    block = channels == list(range(lo, lo + len(channels))) and not any(deadbands)
    return dec, channels, deadbands, (lo, lo + len(channels)) if block else None


class DeviceState:
    """Values, freshness and validity of one device's points."""

    def __init__(self, dev: DeviceConfig) -> None:
        self.dev = dev
        self.plan: tuple[ReadRequest, ...] = plan_reads(dev.profile, dev.unit_id)
        self._split: set[ReadRequest] = set()
        self._compiled: list[_Compiled | None] = [None] * len(self.plan)  # by plan index
        points = dev.profile.points
        # channel index of each point (-1 for strings: no number for the pipeline)
        numeric = [i for i, p in enumerate(points) if p.numeric]
        self.channel = {pi: ci for ci, pi in enumerate(numeric)}
        n = len(numeric)
        # Plain lists, not arrays: a read touches a few dozen values, where numpy's
        # per-call cost outweighs the work; the row's arrays are built once per cycle.
        self.values: list[float] = [math.nan] * n
        self.updated_ns: list[int] = [0] * n  # 0 = never
        # a lower bound of min(updated_ns): while it is inside the stale limit no point
        # can be stale, and the row skips the scan (every write lowers it if needed, so
        # a clock stepped back cannot hide a stale point)
        self._oldest_ns = 0
        self.invalid: set[int] = set()  # channels refused by the device (NaN)
        self.texts: dict[str, str] = {}
        self.deadband = [points[i].deadband for i in numeric]
        self.cycle_error = False
        self.stale = False  # of the last row

    def _decoder(self, request: ReadRequest) -> _Compiled:
        return _compile(self.dev.profile, replace(request, unit_id=0))

    def apply_read(
        self, request: ReadRequest, values: Sequence[int] | Sequence[bool], now_ns: int
    ) -> None:
        """A successful read's raw registers (bits): decode and take them (deadband holds
        small changes). ``DecodeError`` when the answer does not fit the request."""
        self._check_count(request, len(values))
        compiled = self._decoder(request)
        self._take(request, compiled, compiled[0].decode(values), now_ns)

    def apply_at(self, index: int, values: Sequence[int] | Sequence[bool], now_ns: int) -> None:
        """``apply_read`` of ``plan[index]``: the poller's path, no hashing of requests."""
        request, entry = self.plan[index], self._compiled_at(index)
        self._check_count(request, len(values))
        self._take(request, entry, entry[0].decode(values), now_ns)

    def apply_raw_at(self, index: int, raw: bytes, now_ns: int) -> None:
        """``apply_at`` of a register read's answer as the bytes on the wire
        (``adapters.modbus.responses``): read in place, no list of registers."""
        request, entry = self.plan[index], self._compiled_at(index)
        if len(raw) != 2 * request.count:  # byte count = 2 x N (Application Protocol 6.3)
            raise DecodeError(
                f"unit {request.unit_id} fc {request.function_code} @{request.address}: "
                f"asked {request.count} registers, got {len(raw)} bytes"
            )
        self._take(request, entry, entry[0].decode_raw(raw), now_ns)

    def _compiled_at(self, index: int) -> _Compiled:
        entry = self._compiled[index]
        if entry is None:
            entry = self._compiled[index] = self._decoder(self.plan[index])
        return entry

    @staticmethod
    def _check_count(request: ReadRequest, got: int) -> None:
        if got < request.count:  # here, not in the shared decoder: names the unit
            raise DecodeError(
                f"unit {request.unit_id} fc {request.function_code} @{request.address}: "
                f"asked {request.count} values, got {got}"
            )

    def _take(
        self,
        request: ReadRequest,
        compiled: _Compiled,
        decoded: tuple[Sequence[float], dict[int, float | str]],
        now_ns: int,
    ) -> None:
        _, channels, deadbands, span = compiled
        fast, slow = decoded
        if now_ns < self._oldest_ns:  # noqa: PLR1730 - per read: a compare, not a call
            self._oldest_ns = now_ns
        if span is not None and not self.invalid:
            # The common case, as slice assignments: consecutive channels, no deadband,
            # none invalid. Same outcome as ``_take_each``: a NaN answer (a float
            # register's "not available") replaces the value, so the point reads as
            # absent, not as its past.
            lo, hi = span
            self.values[lo:hi] = fast
            self.updated_ns[lo:hi] = [now_ns] * (hi - lo)
        else:
            self._take_each(channels, fast, deadbands, now_ns)
        if slow:
            self.apply(request, slow, now_ns)

    def _take_each(
        self, channels: list[int], fast: Sequence[float], deadbands: list[float], now_ns: int
    ) -> None:
        vals, updated, invalid = self.values, self.updated_ns, self.invalid
        for ci, value, band in zip(channels, fast, deadbands, strict=True):
            old = vals[ci]
            # a NaN answer is taken: the point is absent now, not what it was
            if abs(value - old) > band or isnan(old) or isnan(value) or ci in invalid:
                vals[ci] = value
            updated[ci] = now_ns
        if invalid:
            invalid.difference_update(channels)

    def apply(self, request: ReadRequest, decoded: dict[int, float | str], now_ns: int) -> None:
        """A successful read: take the values (deadband holds small changes)."""
        for pi, value in decoded.items():
            if isinstance(value, str):
                self.texts[self.dev.profile.points[pi].name] = value
                continue
            ci = self.channel[pi]
            old = self.values[ci]
            stale_band = abs(value - old) <= self.deadband[ci]
            if isnan(old) or isnan(value) or not stale_band or ci in self.invalid:
                self.values[ci] = value
            self.updated_ns[ci] = now_ns
            self._oldest_ns = min(self._oldest_ns, now_ns)
            self.invalid.discard(ci)

    def refuse(self, request: ReadRequest, code: int) -> None:
        """An exception response. Codes 2 and 3 (illegal data address/value, clause 7)
        refuse the addresses: the read's points become invalid (NaN). Other codes (device
        failure, busy, gateway) say the device is in trouble: the row gets DEVICE_ERROR."""
        if code not in REFUSED:
            self.cycle_error = True
            return
        if len(request.points) > 1:
            self._split.add(request)  # find the culprit: read its points one by one
        for pi in request.points:
            ci = self.channel.get(pi)
            if ci is not None:
                self.invalid.add(ci)
                self.values[ci] = math.nan

    def replan(self) -> bool:
        """At a cycle's end, split refused merged reads into one read per point, so a
        single bad address costs only its own point. True when the plan changed."""
        if not self._split:
            return False
        points = self.dev.profile.points
        plan: list[ReadRequest] = []
        for r in self.plan:
            if r not in self._split:
                plan.append(r)
                continue
            for i in r.points:
                p = points[i]
                plan.append(ReadRequest(r.unit_id, r.table, p.address, p.count, (i,)))
        self._split.clear()
        self.plan = tuple(plan)
        self._compiled = [None] * len(plan)
        return True

    def row(self, now_ns: int) -> SampleBatch:
        """The row for a finished cycle, stamped ``now_ns`` (receipt time)."""
        quality = _RECEIPT  # plain ints: IntFlag arithmetic costs a microsecond a step
        limit = now_ns - self.dev.profile.stale_ns
        invalid = self.invalid
        if invalid:
            stale = any(t < limit for i, t in enumerate(self.updated_ns) if i not in invalid)
        elif self._oldest_ns >= limit or not self.updated_ns:
            stale = False
        else:
            self._oldest_ns = min(self.updated_ns)
            stale = self._oldest_ns < limit
        self.stale = stale
        if stale:
            quality |= _STALE
        if self.cycle_error:
            quality |= _DEVICE_ERROR
        if len(invalid) == len(self.values):
            quality |= _INVALID
        self.cycle_error = False
        values = np.array(self.values, dtype=np.float64, ndmin=2)
        # An f32/f64 register holding an infinity is a device's "no value" (or damage), as
        # NaN is: absent, not a reading (an inf would score as an extreme alert).
        values[np.isinf(values)] = np.nan
        # stale points keep their last value; the row says so
        return SampleBatch(
            stream=self.dev.stream,
            times_ns=np.array([now_ns], dtype=np.int64),
            values=values,
            quality=np.array([quality], dtype=np.uint16),
            device_time=False,
        )

    def stale_points(self, now_ns: int) -> list[str]:
        names = [p.name for p in self.dev.profile.numeric_points()]
        limit = now_ns - self.dev.profile.stale_ns
        return [n for n, t in zip(names, self.updated_ns, strict=True) if t < limit]
