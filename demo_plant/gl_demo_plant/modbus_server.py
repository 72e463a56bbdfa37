"""Demo plant, Modbus part: one pymodbus TCP server on loopback answering for every meter of the site.

Real meters keep no history, so neither does this server: each read computes the meter's value
from the wall clock (`meter_model`) and encodes it exactly as the register map says (type,
byte/word order, scale, offset, rollover). The plant is read-only to us, so every write is
refused and counted. Faults (exception responses, dropped connections, a counter about to roll
over, a meter reset) can be switched on while it runs.

Built on pymodbus's SimDevice API (3.16 deprecates the old datastore classes): each device has
one zero-filled block per table spanning its map, and a SimDevice `action` fills the requested
points into the block just before pymodbus answers, so gaps in the map read as 0. A block of many
points is computed and encoded with numpy in a few steps per register layout; a one-point request
takes a plain-Python path, which is faster for one value.

`response_delay_s` (default 0) holds every answer, to stand in for a real meter's answer time.
"""

from __future__ import annotations

import asyncio
import bisect
import errno
import functools
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gl_demo_plant.meter_model import ValueBank
from gl_demo_plant.plant_model import DEFAULT_SEED
from gl_demo_plant.threaded import ThreadedServer
from gl_pipelines.config import BIT_TABLES, ModbusDevice, ModbusPoint, ModbusSource
from gl_pipelines.resources.modbus_codec import NUMPY_TYPES, encode_registers

log = logging.getLogger(__name__)


async def listen(server: ModbusTcpServer, what: str, host: str, port: int) -> int:
    """Start `server` in the background and return the port it listens on. pymodbus only logs why a bind
    failed and raises a bare RuntimeError ("please check address"); this names the server, the address and
    the reason (e.g. the port is held by another process)."""
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        reason = _bind_error(host, port)
        code, text = (reason.errno, reason.strerror) if reason else (errno.EADDRINUSE, "pymodbus could not bind it")
        raise OSError(code, f"{what} cannot listen on {host}:{port}: {text}") from exc
    return server.transport.sockets[0].getsockname()[1]


def _bind_error(host: str, port: int) -> OSError | None:
    """Why (host, port) cannot be bound, asked again as asyncio's server binds (SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


_TABLE_BY_FUNCTION = {1: "coil", 2: "discrete", 3: "holding", 4: "input", 23: "holding"}
SIM_TABLES = ("coil", "discrete", "holding", "input")  # the order SimDevice wants its four blocks in
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
    illegal_addresses: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    """Device name -> (table, address) pairs of holding/input registers that do not exist: a read
    covering any of them is answered 2 (illegal data address), as a map with holes is."""
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
    connections_opened: int = 0


class _Table:
    """One table of one device, answered a block at a time with numpy.

    Points are sorted by address so a request finds its points by bisection; per layout (type,
    byte order, word order) the points' positions and register addresses are kept as arrays so a
    block's registers are encoded in a few vectorized steps rather than point by point.
    """

    def __init__(self, points: list[ModbusPoint], seed: int, device: str) -> None:
        self.points = sorted(points, key=lambda p: p.address)
        self.starts = [p.address for p in self.points]
        self.ends = [p.address + p.register_count for p in self.points]
        self.index = {p.name: i for i, p in enumerate(self.points)}
        self.bank = ValueBank(self.points, seed, device)
        self.offset = np.array([p.offset for p in self.points])
        self.scale = np.array([p.scale for p in self.points])
        self.integer = np.array([p.type in _INTEGER_TYPES for p in self.points])
        self.rollover = np.array([_rollover(p) for p in self.points])
        self.rolls = bool(self.rollover.any())
        limits = [_RAW_LIMITS.get(p.type, (0, 1)) for p in self.points]
        self.low = np.array([float(low) for low, _ in limits])
        self.high = np.array([_float_below(high) for _, high in limits])
        self.rollover_list, self.low_list, self.high_list = (a.tolist() for a in (self.rollover, self.low, self.high))
        self.layouts = [
            _Layout.of(self.points, key)
            for key in dict.fromkeys(_layout_key(p) for p in self.points if p.type != "bool")
        ]

    def overlapping(self, low: int, high: int) -> tuple[int, int]:
        """Positions [lo, hi) of the points with at least one register (or bit) in [low, high);
        a point spans at most 4 registers."""
        lo = bisect.bisect_left(self.starts, low - 3)
        hi = bisect.bisect_left(self.starts, high)
        while lo < hi and self.ends[lo] <= low:
            lo += 1
        return lo, hi

    def registers(self, now: float, lo: int, hi: int, faults: ModbusFaults) -> tuple[int, list[int]]:
        """(first address, register values) holding points [lo, hi) at `now`; registers between
        points read as 0. One point takes the scalar path: numpy's fixed cost per call would make
        a one-point request slower than plain Python."""
        if hi - lo == 1:
            point = self.points[lo]
            raw = self.raw_one(now, lo, faults)
            return point.address, encode_registers(raw, point.type, point.byte_order, point.word_order)
        raw = self.raw(now, lo, hi, faults)
        first, end = self.starts[lo], max(self.ends[lo:hi])
        block = np.zeros(end - first, dtype=np.int64)
        for layout in self.layouts:
            if encoded := layout.encode(raw, lo, hi):
                addresses, words = encoded
                block[addresses - first] = words
        return first, block.tolist()

    def raw(self, now: float, lo: int, hi: int, faults: ModbusFaults) -> np.ndarray:
        """Engineering values of points [lo, hi) -> raw register values: (value - offset) / scale,
        faults, rounding for integer types, rollover, the type's range."""
        part = slice(lo, hi)
        raw = (self.bank.values(now, lo, hi) - self.offset[part]) / self.scale[part]
        for name in {*faults.reset_at, *faults.counter_shift}:
            i = self.index.get(name, -1)
            if lo <= i < hi:
                raw[i - lo] += self._fault_shift(now, i, faults)
        raw = np.where(self.integer[part], np.rint(raw), raw)  # rint rounds half to even, as round() does
        if self.rolls:
            rollover = self.rollover[part]
            raw = np.where(rollover > 0, np.mod(raw, np.where(rollover > 0, rollover, 1.0)), raw)
        return np.minimum(np.maximum(raw, self.low[part]), self.high[part])

    def raw_one(self, now: float, i: int, faults: ModbusFaults) -> float:
        """`raw` for the single point i, in plain Python floats."""
        point = self.points[i]
        raw = (float(self.bank.functions[i](now)) - point.offset) / point.scale + self._fault_shift(now, i, faults)
        if point.type in _INTEGER_TYPES:
            raw = float(round(raw))
        if rollover := self.rollover_list[i]:
            raw %= rollover
        return min(max(raw, self.low_list[i]), self.high_list[i])

    def _fault_shift(self, now: float, i: int, faults: ModbusFaults) -> float:
        """Raw counts the injected faults add to totalizer i: minus its count at a past reset, plus a shift."""
        point = self.points[i]
        if not point.totalizer:
            return 0.0
        shift = faults.counter_shift.get(point.name, 0.0)
        reset = faults.reset_at.get(point.name)
        if reset is not None and now >= reset.timestamp():
            shift -= (float(self.bank.functions[i](reset.timestamp())) - point.offset) / point.scale
        return shift


def _layout_key(point: ModbusPoint) -> tuple[str, str, str]:
    return point.type, point.byte_order, point.word_order


@dataclass(frozen=True)
class _Layout:
    """The points of a table that share one register layout."""

    dtype: np.dtype
    byte_swap: bool
    word_swap: bool
    positions: np.ndarray
    """Indices into the table's sorted points (also as a list: bisect on a list beats numpy for one lookup)."""
    position_list: list[int]
    registers: np.ndarray
    """Per point, the addresses of its registers, in the order the device holds the value's words."""

    @classmethod
    def of(cls, points: list[ModbusPoint], key: tuple[str, str, str]) -> _Layout:
        data_type, byte_order, word_order = key
        positions = np.array([i for i, p in enumerate(points) if _layout_key(p) == key])
        width = points[positions[0]].register_count
        addresses = np.array([points[i].address for i in positions])
        return cls(
            dtype=np.dtype(">" + NUMPY_TYPES[data_type]),
            byte_swap=byte_order == "little",
            word_swap=word_order == "little",
            positions=positions,
            position_list=positions.tolist(),
            registers=addresses[:, None] + np.arange(width),
        )

    def encode(self, raw: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(register addresses, register values) of this layout's points among positions [lo, hi)."""
        first, last = bisect.bisect_left(self.position_list, lo), bisect.bisect_left(self.position_list, hi)
        if first == last:
            return None
        values = raw[self.positions[first:last] - lo].astype(self.dtype)
        words = values.view(">u2").reshape(last - first, -1)  # big-endian words, most significant first
        if self.word_swap:
            words = words[:, ::-1]
        if self.byte_swap:
            words = words.byteswap()
        return self.registers[first:last], words


def _rollover(point: ModbusPoint) -> float:
    """The raw count a totalizer wraps at (an integer type wraps at a whole count); 0 for none."""
    if not (point.totalizer and point.rollover):
        return 0.0
    return float(int(point.rollover)) if point.type in _INTEGER_TYPES else point.rollover


def _float_below(limit: float) -> float:
    """The largest float not above `limit` (float(2**64 - 1) rounds up to 2**64, which no uint64 holds)."""
    value = float(limit)
    return float(np.nextafter(value, 0.0)) if value > limit else value


class DemoModbusServer:
    """Every device of `source` behind one Modbus TCP endpoint, each under its own device id.

    The devices' own host/port fields are ignored: the caller points them at (host, port).
    Port 0 picks a free port, readable from `port` once started.
    """

    def __init__(
        self,
        source: ModbusSource,
        host: str = "127.0.0.1",
        port: int = 5020,
        seed: int = DEFAULT_SEED,
        response_delay_s: float = 0.0,
    ) -> None:
        self.source, self.host, self.port, self.seed = source, host, port, seed
        self.response_delay_s = response_delay_s
        """Every request that reaches a device is answered this much later: real meters take
        milliseconds (serial gateways tens of them), where loopback answers in about 0.1 ms."""
        self.faults = ModbusFaults()
        self.stats = ModbusStats()
        self._names = {device.device_id: device.name for device in source.devices}
        self._server: ModbusTcpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        devices = [self._sim_device(device) for device in self.source.devices]
        if 0 not in self._names:
            devices.append(self._absent_unit())
        self._server = ModbusTcpServer(
            devices, address=(self.host, self.port), trace_pdu=self._on_pdu, trace_connect=self._on_connect
        )
        self.port = await listen(self._server, "the demo Modbus server", self.host, self.port)
        self._loop = asyncio.get_running_loop()
        log.info("demo Modbus server on %s:%d serving %d devices", self.host, self.port, len(self.source.devices))

    async def stop(self) -> None:
        if self._server:
            await self._server.shutdown()
            self._server = None

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return len(self._server.active_connections) if self._server else 0

    def drop_connections(self) -> None:
        """Close every client socket, as a gateway restart or a network cut does. Callable from any
        thread: the sockets belong to the server's event loop, so from another thread the close is
        handed to that loop and waited for."""
        assert self._server is not None and self._loop is not None
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            for connection in list(self._server.active_connections.values()):
                connection.close()
            return

        async def drop() -> None:
            self.drop_connections()
            await asyncio.sleep(0)  # the transports close their sockets on the next loop pass

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(timeout=10)

    def _sim_device(self, device: ModbusDevice) -> SimDevice:
        tables = {
            table: _Table([p for p in device.points if p.table == table], self.seed, device.name)
            for table in SIM_TABLES
        }
        action = functools.partial(self._on_access, device.name, tables)
        return SimDevice(device.device_id, simdata=sim_blocks(device.points), action=action)

    def _absent_unit(self) -> SimDevice:
        """Device id 0 is pymodbus's catch-all for unconfigured ids; it spans every address so that
        `_on_access` can answer them as a gateway does (0x0B, target failed to respond)."""
        tables = tuple([_zero_block(65_536, bits=table in BIT_TABLES)] for table in SIM_TABLES)
        return SimDevice(0, simdata=tables, action=functools.partial(self._on_access, None, {}))

    def _on_connect(self, connected: bool) -> None:
        self.stats.connections_opened += connected

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
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if set_values is not None:
            self.stats.writes_rejected += 1
            return ExcCodes.ILLEGAL_FUNCTION
        if device is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if code := self.faults.exception_for.get(device):
            return ExcCodes(code)
        name = _TABLE_BY_FUNCTION[function_code]
        holes = self.faults.illegal_addresses.get(device, ())
        if any(table == name and address <= hole < address + count for table, hole in holes):
            return ExcCodes.ILLEGAL_ADDRESS
        table = tables[name]
        now = datetime.now(UTC).timestamp()
        if name in BIT_TABLES:
            # pymodbus hands bit tables over packed 16 to a register, `count` in registers.
            low = address // 16 * 16
            lo, hi = table.overlapping(low, low + 16 * count)
            for point, value in zip(table.points[lo:hi], table.bank.functions[lo:hi], strict=True):
                on = bool(value(now))
                mask = 1 << (point.address % 16)
                slot = point.address // 16 - start_address
                registers[slot] = registers[slot] | mask if on else registers[slot] & ~mask
            return None
        lo, hi = table.overlapping(address, address + count)
        if lo < hi:
            first, words = table.registers(now, lo, hi, self.faults)
            registers[first - start_address : first - start_address + len(words)] = words
        return None


def sim_blocks(points: Sequence[ModbusPoint]) -> tuple[list[SimData], ...]:
    """SimDevice's four blocks (SIM_TABLES order), each zero from address 0 to the end of the points mapped in it."""
    return tuple(
        [
            _zero_block(
                max((p.address + p.register_count for p in points if p.table == table), default=1),
                bits=table in BIT_TABLES,
            )
        ]
        for table in SIM_TABLES
    )


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
