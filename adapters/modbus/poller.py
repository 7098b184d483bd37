"""The async Modbus poller: a ``Source`` reading several devices over one connection.

A thin shell over pymodbus: the sans-IO ``Scheduler`` picks the next read, pymodbus
sends it (one outstanding request), ``decode_read`` turns the answer into values and
``DeviceState`` into rows. Framing is Modbus TCP (MBAP) or Modbus RTU carried over TCP
(serial gateways in transparent mode: the RTU frame with its CRC, no MBAP header).

Faults, each counted in ``ModbusStats`` and logged with a stable event name:
timeouts (``modbus_timeout``), exception responses (``modbus_exception``; an illegal
address invalidates only that read's points), garbage (``modbus_garbage``: bytes came
back but no valid response, or a response that does not fit its request), connection
loss (``modbus_disconnected``, then reconnect with exponential backoff and jitter).
"""

from __future__ import annotations

__all__ = ["ModbusPoller", "ModbusSourceConfig", "ModbusStats"]

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from adapters.modbus.decode import DecodeError
from adapters.modbus.device import DeviceConfig, DeviceState, stream_info
from adapters.modbus.plan import ReadRequest
from adapters.modbus.profile import Table
from adapters.modbus.responses import register_raw_responses
from adapters.modbus.schedule import DeviceSchedule, Scheduler
from edgepipe.core import Clock, Sink, SourceStatus, StatusKind, TransportError

log = structlog.get_logger()
# pymodbus logs every timeout at ERROR through stdlib logging; our own events say it once.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ModbusSourceConfig:
    """Typed options of one Modbus source (``adapters.modbus.source`` maps the TOML)."""

    name: str
    host: str
    port: int
    devices: tuple[DeviceConfig, ...]
    framer: Literal["socket", "rtu"] = "socket"
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


@dataclass(slots=True)
class ModbusStats:
    requests: int = 0
    responses: int = 0
    timeouts: int = 0
    exceptions: int = 0
    garbage: int = 0
    connects: int = 0
    disconnects: int = 0
    rows: int = 0
    stale_rows: int = 0
    overruns: int = 0


_Read = Callable[..., Awaitable[Any]]


class ModbusPoller:
    """Polls the devices of one connection until cancelled; reconnects on its own."""

    def __init__(self, config: ModbusSourceConfig, clock: Clock) -> None:
        self.name = config.name
        self.config = config
        self.clock = clock
        self.stats = ModbusStats()
        self.devices = [DeviceState(d) for d in config.devices]
        self.scheduler = Scheduler(
            [
                DeviceSchedule(round(d.profile.poll_interval_s * _NS), len(s.plan))
                for d, s in zip(config.devices, self.devices, strict=True)
            ]
        )
        self._rx_bytes = 0
        self._client: AsyncModbusTcpClient | None = None

    @property
    def timeout_s(self) -> float:
        return max(d.profile.timeout_s for d in self.config.devices)

    async def run(self, sink: Sink) -> None:
        """Connect, poll, and reconnect with backoff and jitter until cancelled."""
        for dev in self.config.devices:
            sink.on_stream(stream_info(self.name, dev))
        attempt = 0
        while True:
            rows = self.stats.rows
            try:
                await self._run_once(sink)
            except TransportError as exc:
                self.stats.disconnects += 1
                log.warning("modbus_disconnected", source=self.name, error=str(exc))
                for dev in self.config.devices:
                    sink.on_status(self._status(dev.stream, StatusKind.DISCONNECTED, str(exc)))
            finally:
                self._close()
            attempt = 0 if self.stats.rows > rows else attempt + 1
            await asyncio.sleep(self.backoff_s(attempt))

    def backoff_s(self, attempt: int) -> float:
        """Exponential backoff from ``reconnect_min_s``, capped, with +-20 % jitter so a
        fleet of boxes does not hammer a restarted gateway in step."""
        grown = self.config.reconnect_min_s * 2.0 ** max(attempt - 1, 0)
        base = min(grown, self.config.reconnect_max_s)
        return base * random.uniform(0.8, 1.2)

    async def _run_once(self, sink: Sink) -> None:
        client = self._connect_client()
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as exc:
            raise TransportError(f"{self._where}: {exc}") from exc
        if not ok:
            raise TransportError(f"{self._where}: connection refused or timed out")
        self.stats.connects += 1
        log.info("modbus_connected", source=self.name, where=self._where)
        for dev in self.config.devices:
            sink.on_status(self._status(dev.stream, StatusKind.CONNECTED, self._where))
        self.scheduler.start(self.clock.monotonic_ns())
        await self._poll(client, sink)

    async def _poll(self, client: AsyncModbusTcpClient, sink: Sink) -> None:
        # The per-read path runs once per response, each time after the wait for the
        # gateway has let other processes cool the caches, so it is kept short: bound
        # readers per table, reads addressed by plan index, the read awaited inline (no
        # coroutine per read), every rarer outcome in its own method.
        readers = {t: (get(client), t.is_bits) for t, get in _READERS.items()}
        scheduler, devices, clock, stats = self.scheduler, self.devices, self.clock, self.stats
        task = asyncio.current_task()
        assert task is not None
        while True:
            if task.cancelling():
                # Python 3.11's wait_for (inside pymodbus) swallows a cancellation that
                # lands in the loop iteration where the answer arrived; polling on would
                # make stopping the service hang
                raise asyncio.CancelledError
            scheduler.tick(clock.monotonic_ns())
            nxt = scheduler.next_read()
            if nxt is None:
                await clock.sleep_until_ns(scheduler.wake_ns())
                continue
            di, ri = nxt
            state = devices[di]
            req = state.plan[ri]
            read, is_bits = readers[req.table]
            stats.requests += 1
            rx_before = self._rx_bytes
            try:
                rr = await read(req.address, count=req.count, device_id=req.unit_id)
            except (ConnectionException, ModbusIOException) as exc:
                self._failed(client, state, req, exc, rx_before)
            else:
                self._answered(state, ri, req, rr, is_bits)
            if scheduler.done(di):
                self._emit(state, sink)
                if state.replan():
                    scheduler.devices[di].reads = len(state.plan)
                    log.info("modbus_replanned", source=self.name, stream=state.dev.stream,
                             reads=len(state.plan))  # fmt: skip

    def _failed(
        self,
        client: AsyncModbusTcpClient,
        state: DeviceState,
        req: ReadRequest,
        exc: ModbusException,
        rx_before: int,
    ) -> None:
        """A read raised: a lost connection ends the session, anything else is a timeout
        (or garbage, when bytes came back that made no response)."""
        if isinstance(exc, ConnectionException) or not client.connected:
            raise TransportError(f"{self._where}: {exc}") from exc
        self._timeout(state, req, garbage=self._rx_bytes > rx_before)

    def _answered(
        self, state: DeviceState, ri: int, req: ReadRequest, rr: Any, is_bits: bool
    ) -> None:
        now = self.clock.time_ns()
        if int(getattr(rr, "function_code", 0)) & 0x7F != req.function_code:
            # The answer to another request (a confused gateway): the function code must
            # be the request's, or it with 0x80 for an exception (MODBUS Application
            # Protocol v1.1b3 sections 4.1 and 7).
            self._wrong_function(state, req, rr)
        elif rr.isError():
            self._refused(state, req, rr)
        else:
            try:
                if is_bits:
                    state.apply_at(ri, rr.bits, now)
                else:
                    state.apply_raw_at(ri, rr.raw, now)
                self.stats.responses += 1
            except DecodeError as exc:
                self.stats.garbage += 1
                log.warning("modbus_garbage", source=self.name, stream=state.dev.stream,
                            error=str(exc))  # fmt: skip

    def _wrong_function(self, state: DeviceState, req: ReadRequest, rr: Any) -> None:
        self.stats.garbage += 1
        log.warning("modbus_garbage", source=self.name, stream=state.dev.stream,
                    unit=req.unit_id, fc=req.function_code,
                    error=f"answer has function code {int(rr.function_code):#04x}")  # fmt: skip

    def _refused(self, state: DeviceState, req: ReadRequest, rr: Any) -> None:
        code = int(getattr(rr, "exception_code", 0))
        self.stats.exceptions += 1
        log.warning(
            "modbus_exception", source=self.name, stream=state.dev.stream, unit=req.unit_id,
            fc=req.function_code, address=req.address, code=code,
        )  # fmt: skip
        state.refuse(req, code)

    def _timeout(self, state: DeviceState, req: ReadRequest, garbage: bool) -> None:
        if garbage:
            self.stats.garbage += 1
            event = "modbus_garbage"
        else:
            self.stats.timeouts += 1
            event = "modbus_timeout"
        log.warning(event, source=self.name, stream=state.dev.stream, unit=req.unit_id,
                    fc=req.function_code, address=req.address)  # fmt: skip

    def _emit(self, state: DeviceState, sink: Sink) -> None:
        row = state.row(self.clock.time_ns())
        self.stats.rows += 1
        if state.stale:
            self.stats.stale_rows += 1
        self.stats.overruns = self.scheduler.overruns
        sink.on_batch(row)

    def _connect_client(self) -> AsyncModbusTcpClient:
        self._close()

        def trace(sending: bool, data: bytes) -> bytes:
            if not sending:
                self._rx_bytes += len(data)
            return data

        self._client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            framer=FramerType.RTU if self.config.framer == "rtu" else FramerType.SOCKET,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # reconnecting is ours: backoff with jitter, counted
            trace_packet=trace,
        )
        register_raw_responses(self._client)
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @property
    def _where(self) -> str:
        return f"{self.config.framer}://{self.config.host}:{self.config.port}"

    def _status(self, stream: str, kind: StatusKind, detail: str) -> SourceStatus:
        return SourceStatus(self.name, stream, kind, self.clock.time_ns(), detail)


_READERS: dict[Table, Callable[[AsyncModbusTcpClient], _Read]] = {
    Table.COIL: lambda c: c.read_coils,
    Table.DISCRETE_INPUT: lambda c: c.read_discrete_inputs,
    Table.HOLDING: lambda c: c.read_holding_registers,
    Table.INPUT: lambda c: c.read_input_registers,
}
