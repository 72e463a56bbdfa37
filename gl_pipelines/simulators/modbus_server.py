"""Demo plant, Modbus part: one pymodbus TCP server on loopback answering for every meter of the site.

Real meters keep no history, so neither does this server: each read computes the meter's value
from the wall clock (`meter_model`) and encodes it exactly as the register map says (type,
byte/word order, scale, offset, rollover). The plant is read-only to us, so every write is
refused and counted. Faults (exception responses, dropped connections, a counter about to roll
over, a meter reset) can be switched on while it runs.

Built on pymodbus's SimDevice API (3.16 deprecates the old datastore classes): each device has
one zero-filled block per table spanning its map, and a SimDevice `action` fills the requested
points into the block just before pymodbus answers, so gaps in the map read as 0.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gl_pipelines.config import BIT_TABLES, ModbusDevice, ModbusPoint, ModbusSource
from gl_pipelines.resources.modbus_codec import encode_registers
from gl_pipelines.simulators.meter_model import ValueFunction, value_function
from gl_pipelines.simulators.plant_model import DEFAULT_SEED
from gl_pipelines.simulators.threaded import ThreadedServer

log = logging.getLogger(__name__)

_TABLE_BY_FUNCTION = {1: "coil", 2: "discrete", 3: "holding", 4: "input", 23: "holding"}
_TABLES = ("coil", "discrete", "holding", "input")  # the order SimDevice wants its four blocks in
_INTEGER_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})
_RAW_LIMITS = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "float32": (-3.4e38, 3.4e38),
    "float64": (-1.7e308, 1.7e308),
}


@dataclass
class ModbusFaults:
    """Faults the test suite can switch on while the server runs (plain attributes)."""

    exception_for: dict[str, int] = field(default_factory=dict)
    """Device name -> Modbus exception code answered to every read (2 illegal address, 6 device busy,
    0x0A gateway path unavailable, 0x0B gateway target failed to respond)."""
    drop_after_requests: int | None = None
    """Close every client connection when this many more requests have arrived (one shot); the
    request that trips it gets no answer."""
    counter_shift: dict[str, float] = field(default_factory=dict)
    """Totalizer point name -> raw counts added (modulo rollover), e.g. to put it just before a rollover."""
    reset_at: dict[str, datetime] = field(default_factory=dict)
    """Totalizer point name -> the meter was reset then: from that moment it counts up from 0 again."""


@dataclass
class ModbusStats:
    """What the server saw, so tests can assert request counts and that nobody wrote."""

    requests: int = 0
    requests_by_device: dict[str, int] = field(default_factory=dict)
    writes_rejected: int = 0


@dataclass(frozen=True)
class _Served:
    point: ModbusPoint
    value: ValueFunction


@dataclass(frozen=True)
class _Table:
    """One table of one device, points sorted by address so a request finds its points by bisection."""

    starts: list[int]
    points: list[_Served]

    def overlapping(self, low: int, high: int) -> Sequence[_Served]:
        """Points with at least one register (or bit) in [low, high); a point spans at most 4 registers."""
        first = bisect.bisect_left(self.starts, low - 3)
        last = bisect.bisect_left(self.starts, high)
        return [s for s in self.points[first:last] if s.point.address + s.point.register_count > low]


class DemoModbusServer:
    """Every device of `source` behind one Modbus TCP endpoint, each under its own device id.

    The devices' own host/port fields are ignored: the caller points them at (host, port).
    Port 0 picks a free port, readable from `port` once started.
    """

    def __init__(
        self, source: ModbusSource, host: str = "127.0.0.1", port: int = 5020, seed: int = DEFAULT_SEED
    ) -> None:
        self.source, self.host, self.port, self.seed = source, host, port, seed
        self.faults = ModbusFaults()
        self.stats = ModbusStats()
        self._names = {device.device_id: device.name for device in source.devices}
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        devices = [self._sim_device(device) for device in self.source.devices]
        if 0 not in self._names:
            devices.append(self._absent_unit())
        self._server = ModbusTcpServer(devices, address=(self.host, self.port), trace_pdu=self._on_pdu)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]
        log.info("demo Modbus server on %s:%d serving %d devices", self.host, self.port, len(self.source.devices))

    async def stop(self) -> None:
        if self._server:
            await self._server.shutdown()
            self._server = None

    def drop_connections(self) -> None:
        """Close every client socket, as a gateway restart or a network cut does."""
        assert self._server is not None
        for connection in list(self._server.active_connections.values()):
            connection.close()

    def _sim_device(self, device: ModbusDevice) -> SimDevice:
        tables: dict[str, _Table] = {}
        blocks = []
        for table in _TABLES:
            points = sorted((p for p in device.points if p.table == table), key=lambda p: p.address)
            served = [_Served(p, value_function(p, self.seed, device.name)) for p in points]
            tables[table] = _Table([p.address for p in points], served)
            size = max((p.address + p.register_count for p in points), default=1)
            blocks.append([_zero_block(size, bits=table in BIT_TABLES)])
        action = functools.partial(self._on_access, device.name, tables)
        return SimDevice(device.device_id, simdata=tuple(blocks), action=action)

    def _absent_unit(self) -> SimDevice:
        """Device id 0 is pymodbus's catch-all for unconfigured ids; it spans every address so that
        `_on_access` can answer them as a gateway does (0x0B, target failed to respond)."""
        tables = tuple([_zero_block(65_536, bits=table in BIT_TABLES)] for table in _TABLES)
        return SimDevice(0, simdata=tables, action=functools.partial(self._on_access, None, {}))

    def _on_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        """pymodbus's trace hook sees every request before any device does: count it, maybe drop."""
        if sending:
            return pdu
        self.stats.requests += 1
        if name := self._names.get(pdu.dev_id):
            self.stats.requests_by_device[name] = self.stats.requests_by_device.get(name, 0) + 1
        if self.faults.drop_after_requests is not None:
            self.faults.drop_after_requests -= 1
            if self.faults.drop_after_requests <= 0:
                self.faults.drop_after_requests = None
                self.drop_connections()
                return None  # pymodbus then never handles the request
        return pdu

    async def _on_access(
        self,
        device: str | None,
        tables: dict[str, _Table],
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """SimDevice action: refuse writes, answer injected exceptions, else fill the requested points."""
        if set_values is not None:
            self.stats.writes_rejected += 1
            return ExcCodes.ILLEGAL_FUNCTION
        if device is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if code := self.faults.exception_for.get(device):
            return ExcCodes(code)
        table = _TABLE_BY_FUNCTION[function_code]
        now = datetime.now(UTC).timestamp()
        if table in BIT_TABLES:
            # pymodbus hands bit tables over packed 16 to a register, `count` in registers.
            low = address // 16 * 16
            for served in tables[table].overlapping(low, low + 16 * count):
                bit = served.point.address
                mask = 1 << (bit % 16)
                slot = bit // 16 - start_address
                on = bool(served.value(now))
                registers[slot] = registers[slot] | mask if on else registers[slot] & ~mask
            return None
        for served in tables[table].overlapping(address, address + count):
            point = served.point
            words = encode_registers(self._raw(served, now), point.type, point.byte_order, point.word_order)
            slot = point.address - start_address
            registers[slot : slot + len(words)] = words
        return None

    def _raw(self, served: _Served, now: float) -> float | int:
        """Engineering value -> raw register value: (value - offset) / scale, faults, rollover, type range."""
        point = served.point
        raw = (float(served.value(now)) - point.offset) / point.scale
        if point.totalizer:
            reset = self.faults.reset_at.get(point.name)
            if reset is not None and now >= reset.timestamp():
                raw -= (served.value(reset.timestamp()) - point.offset) / point.scale
            raw += self.faults.counter_shift.get(point.name, 0.0)
        integer = point.type in _INTEGER_TYPES
        if integer:
            raw = round(raw)
        if point.totalizer and point.rollover:
            raw %= int(point.rollover) if integer else point.rollover
        low, high = _RAW_LIMITS[point.type]
        return min(max(raw, low), high)


def _zero_block(size: int, *, bits: bool) -> SimData:
    """A table from address 0 to the end of the map: unmapped registers read as 0, past the end is illegal.

    Values go in as a list with count=1: pymodbus 3.16 multiplies a bit block by `count` twice
    while checking it, which is quadratic for large coil maps."""
    if bits:
        return SimData(0, values=[False] * (-(-size // 16) * 16), datatype=DataType.BITS)
    return SimData(0, count=size, values=0, datatype=DataType.REGISTERS)


class ThreadedDemoModbusServer(ThreadedServer[DemoModbusServer]):
    """A DemoModbusServer on its own event loop in a daemon thread (for tests and the demo)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(DemoModbusServer(**kwargs), name="demo-modbus")
