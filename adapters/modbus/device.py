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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adapters.modbus.decode import ReadDecoder
from adapters.modbus.plan import ReadRequest, plan_reads
from adapters.modbus.profile import DeviceProfile, PointType
from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, StreamInfo

#: Exception codes that refuse the addresses themselves (MODBUS v1.1b3 clause 7).
REFUSED = frozenset({2, 3})
_BITS = (PointType.BOOL, PointType.BIT)


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


class DeviceState:
    """Values, freshness and validity of one device's points."""

    def __init__(self, dev: DeviceConfig) -> None:
        self.dev = dev
        self.plan: tuple[ReadRequest, ...] = plan_reads(dev.profile, dev.unit_id)
        self._split: set[ReadRequest] = set()
        self._decoders: dict[ReadRequest, tuple[ReadDecoder, np.ndarray]] = {}
        points = dev.profile.points
        # channel index of each point (-1 for strings: no number for the pipeline)
        numeric = [i for i, p in enumerate(points) if p.numeric]
        self.channel = {pi: ci for ci, pi in enumerate(numeric)}
        n = len(numeric)
        self.values = np.full(n, np.nan)
        self.updated_ns = np.zeros(n, dtype=np.int64)  # 0 = never
        self.invalid = np.zeros(n, dtype=bool)
        self.texts: dict[str, str] = {}
        self.deadband = np.array([points[i].deadband for i in numeric])
        self.cycle_error = False

    def _decoder(self, request: ReadRequest) -> tuple[ReadDecoder, np.ndarray]:
        entry = self._decoders.get(request)
        if entry is None:
            dec = ReadDecoder(request, self.dev.profile.points)
            channels = np.array([self.channel[i] for i in dec.fast.tolist()], dtype=np.intp)
            entry = self._decoders[request] = (dec, channels)
        return entry

    def apply_read(
        self, request: ReadRequest, values: Sequence[int] | Sequence[bool], now_ns: int
    ) -> None:
        """A successful read's raw registers (bits): decode and take them (deadband holds
        small changes). ``DecodeError`` when the answer does not fit the request."""
        dec, ch = self._decoder(request)
        fast, slow = dec.decode(values)
        if len(ch):
            old = self.values[ch]
            take = np.isnan(old) | (np.abs(fast - old) > self.deadband[ch]) | self.invalid[ch]
            self.values[ch] = np.where(take, fast, old)
            self.updated_ns[ch] = now_ns
            self.invalid[ch] = False
        if slow:
            self.apply(request, slow, now_ns)

    def apply(self, request: ReadRequest, decoded: dict[int, float | str], now_ns: int) -> None:
        """A successful read: take the values (deadband holds small changes)."""
        for pi, value in decoded.items():
            if isinstance(value, str):
                self.texts[self.dev.profile.points[pi].name] = value
                continue
            ci = self.channel[pi]
            old = self.values[ci]
            if np.isnan(old) or abs(value - old) > self.deadband[ci] or self.invalid[ci]:
                self.values[ci] = value
            self.updated_ns[ci] = now_ns
            self.invalid[ci] = False

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
                self.invalid[ci] = True
                self.values[ci] = np.nan

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
        return True

    def row(self, now_ns: int) -> SampleBatch:
        """The row for a finished cycle, stamped ``now_ns`` (receipt time)."""
        quality = Quality.RECEIPT_TIME
        stale = (now_ns - self.updated_ns > self.dev.profile.stale_ns) & ~self.invalid
        if stale.any():
            quality |= Quality.STALE
        if self.cycle_error:
            quality |= Quality.DEVICE_ERROR
        if self.invalid.all():
            quality |= Quality.INVALID
        self.cycle_error = False
        values = self.values.copy()  # stale points keep their last value; the row says so
        return SampleBatch(
            stream=self.dev.stream,
            times_ns=np.array([now_ns], dtype=np.int64),
            values=values.reshape(1, -1),
            quality=np.array([int(quality)], dtype=np.uint16),
            device_time=False,
        )

    def stale_points(self, now_ns: int) -> list[str]:
        names = [p.name for p in self.dev.profile.numeric_points()]
        stale = now_ns - self.updated_ns > self.dev.profile.stale_ns
        return [n for n, s in zip(names, stale, strict=True) if s]
