"""Poll scheduling (sans-IO, pure): which device's read goes next on one connection.

Every device polls on its own monotonic grid ``t0 + k * interval``: a late cycle never
shifts the grid, so there is no drift. A cycle is the device's planned reads in order.
When a tick comes while the previous cycle is still running, that tick is an *overrun*:
counted and skipped (the running cycle finishes, the next starts on a later tick).

A Modbus TCP gateway in front of a serial line serves one request at a time, so the
connection has one outstanding request (clause 4.1 of the Modbus Messaging on TCP/IP
guide allows more, serial gateways do not). Devices with a cycle in progress take turns,
one read each (round robin), so a device with many reads cannot starve the others.
"""

from __future__ import annotations

__all__ = ["DeviceSchedule", "Scheduler"]

from dataclasses import dataclass, field


@dataclass(slots=True)
class DeviceSchedule:
    """The poll state of one device: its grid, its cycle position, its counters."""

    interval_ns: int
    reads: int  # planned reads per cycle
    next_due_ns: int = 0
    pos: int = -1  # index of the next read in the running cycle; -1 = idle
    cycles: int = 0
    overruns: int = 0
    cycle_start_ns: int = 0

    @property
    def busy(self) -> bool:
        return self.pos >= 0


@dataclass(slots=True)
class Scheduler:
    """Round robin over devices with a cycle in progress; ticks on each device's grid."""

    devices: list[DeviceSchedule] = field(default_factory=list)
    overruns: int = 0  # of every device, kept here so reading it is O(1) per cycle
    _turn: int = 0
    _wake: int = 0

    def start(self, now_ns: int) -> None:
        """A new connection: idle devices are due now. A cycle the last connection cut
        goes on from the read that was cut: a device that closes the connection after
        every answer (Modbus Messaging on TCP/IP 4.2.1 lets a server close it) still
        completes its cycles, one read per connection. Its ticks that pass meanwhile
        count as overruns, as for any cycle still running."""
        for d in self.devices:
            if not d.busy:
                d.next_due_ns = now_ns
        self._wake = now_ns

    def tick(self, now_ns: int) -> None:
        """Start the cycles that are due at ``now_ns``; count the overruns."""
        if now_ns < self._wake:
            return  # nothing due: the common case between ticks, kept O(1)
        for d in self.devices:
            if now_ns < d.next_due_ns:
                continue
            missed = (now_ns - d.next_due_ns) // d.interval_ns
            lost = missed + 1 if d.busy else missed
            if not d.busy:
                d.pos = 0
                d.cycle_start_ns = now_ns
            d.overruns += lost
            self.overruns += lost
            d.next_due_ns += (missed + 1) * d.interval_ns
        self._wake = self.wake_ns()

    def next_read(self) -> tuple[int, int] | None:
        """(device index, read index) of the next read, or None when every device is idle."""
        n = len(self.devices)
        for k in range(n):
            i = (self._turn + k) % n
            d = self.devices[i]
            if d.busy:
                self._turn = (i + 1) % n
                return i, d.pos
        return None

    def done(self, device: int) -> bool:
        """Mark the device's current read done; True when that finished its cycle."""
        d = self.devices[device]
        d.pos += 1
        if d.pos >= d.reads:
            d.pos = -1
            d.cycles += 1
            return True
        return False

    def wake_ns(self) -> int:
        """When the next idle device becomes due."""
        return min(d.next_due_ns for d in self.devices)
