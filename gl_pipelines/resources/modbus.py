"""Modbus TCP meter reads: planned, concurrent across connections, retried, read-only.

Meters keep no history, so a read is a snapshot: every configured point's current value with the
time it was actually read. The resource plans the fewest requests per device (`modbus_plan`),
reads them, and returns the canonical long frame in which a failed read is a `bad` row saying why;
one broken meter never costs the readings of the others. It offers no write function on purpose:
plant devices are only ever read.

Inside `with resource.session():` every read shares one event loop and one connection per
host:port, and each device's plan is made once; outside one, a read opens and closes its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import select
import struct
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from dagster import ConfigurableResource
from pydantic import ConfigDict, Field, PrivateAttr
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.config import BIT_TABLES, ModbusDevice, ModbusSource
from gl_pipelines.resources.health import HealthStatus
from gl_pipelines.resources.modbus_plan import AddressRange, ReadBlock, decode_values, plan_reads, split_block

READINGS_COLUMNS = ["ts", "tag", "value", "unit", "quality", "status", "device", "source"]
RESOURCE_VERSION = f"gl-pipelines-modbus/1 pymodbus/{version('pymodbus')}"

EXCEPTION_NAMES = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE",
    11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}
ILLEGAL_DATA_ADDRESS = 2
T = TypeVar("T")
TRANSIENT_EXCEPTION_CODES = {6, 11}
"""Busy, and a gateway whose target did not answer this time: asking again later may succeed.
Every other exception response says the request itself is wrong, so repeating it cannot help."""


class ModbusReadError(RuntimeError):
    """A read that failed; the message names the device and is what its rows carry as `status`."""


class ModbusTransientError(ModbusReadError):
    """The connection dropped or the device did not answer in time; a retry may succeed."""


class ModbusUnreachableError(ModbusTransientError):
    """No TCP connection to the device's host and port."""

    def __init__(self, device: ModbusDevice, reason: str) -> None:
        self.reason = reason
        super().__init__(unreachable_status(device, reason))


class ModbusExceptionResponse(ModbusReadError):
    """The device answered with a Modbus exception code instead of data."""

    def __init__(self, code: int, device: ModbusDevice, block: ReadBlock) -> None:
        self.code = code
        where = AddressRange(block.table, block.address, block.end - 1)
        what = (
            f"point {block.points[0].name} at {where}"
            if len(block.points) == 1
            else f"{where} ({len(block.points)} points)"
        )
        super().__init__(f"exception {code} ({EXCEPTION_NAMES.get(code, 'UNKNOWN')}) from device {device.name}: {what}")


class _DeviceGone(Exception):
    """A device stopped answering mid-read: its remaining blocks fail with `status` without more waiting."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class ModbusSnapshot:
    """One reading of every requested point, plus what an auditor needs to trace it to the devices.

    The frame stays out of the repr: on Python 3.11 `asyncio.run` formats the finished task, result
    included, while restoring the SIGINT handler, and a DataFrame repr costs milliseconds each time."""

    frame: pd.DataFrame = field(repr=False)
    payload_sha256: str
    requests: int
    duration_s: float
    endpoints: tuple[str, ...]
    refused: dict[str, tuple[AddressRange, ...]] = field(default_factory=dict)
    """Per device name, the addresses it has answered "illegal data address" for, this read or an
    earlier one of the same resource: the plan reads around them."""


def endpoint_of(device: ModbusDevice) -> str:
    """Where a device answers. Modbus TCP has no credentials, so nothing needs redacting."""
    return f"modbus://{device.host}:{device.port}/{device.device_id}"


def unreachable_status(device: ModbusDevice, reason: str) -> str:
    return f"unreachable: device {device.name} at {device.host}:{device.port}: {reason}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ModbusExceptionResponse):
        return exc.code in TRANSIENT_EXCEPTION_CODES
    return isinstance(exc, ModbusTransientError)


class ModbusResource(ConfigurableResource):
    """Modbus TCP devices of one site, read as snapshots of their configured points."""

    model_config = ConfigDict(allow_inf_nan=False)  # .inf / .nan in a timeout or rate is a typo, never a setting

    devices_json: str = Field(
        description="The register map: a JSON list of ModbusDevice (see `from_source`), validated on use."
    )
    source_name: str = Field(default="modbus", description="Recorded in each row's `source` column.")
    max_gap: int = Field(default=10, ge=0, le=124, description="Unused registers bridged to merge two reads.")
    max_connections_in_flight: int = Field(
        default=16,
        gt=0,
        description="(host, port) connections polled at once. Devices behind one connection (a gateway) "
        "take turns on it: pymodbus sends one request at a time per connection, as a serial bus would anyway.",
    )
    retry_attempts: int = Field(default=3, ge=1, description="Total tries of a request on transient errors.")
    retry_initial_wait_s: float = Field(default=0.2, ge=0)
    retry_max_wait_s: float = Field(default=5.0, ge=0)
    health_timeout_s: float = Field(default=5.0, gt=0, description="Whole health probe; keeps sensor ticks short.")

    _session: _Session | None = PrivateAttr(default=None)
    _refused: dict[str, set[AddressRange]] = PrivateAttr(default_factory=dict)
    """Per device endpoint, addresses it refused with exception 2: remembered for as long as this
    resource lives (a run, or a process's sensor ticks), so later plans no longer merge across them."""

    @classmethod
    def from_source(cls, source: ModbusSource, **settings) -> ModbusResource:
        """The resource for the site config's `modbus:` section; `settings` override the other fields."""
        devices = "[" + ",".join(device.model_dump_json() for device in source.devices) + "]"
        return cls(devices_json=devices, source_name=source.source_name, max_gap=source.max_gap, **settings)

    def remember_refused(self, refused: dict[str, Sequence[AddressRange]]) -> None:
        """Take addresses refused in an earlier read (per device name, as `ModbusSnapshot.refused`
        gives them) as known: a new process then plans around them from its first read."""
        for device in self.devices:
            self._refused.setdefault(endpoint_of(device), set()).update(refused.get(device.name, ()))

    @property
    def devices(self) -> list[ModbusDevice]:
        return ModbusSource.model_validate_json(f'{{"devices": {self.devices_json}}}').devices

    @contextmanager
    def session(self) -> Iterator[ModbusResource]:
        """`with resource.session():` the reads inside share one event loop and one connection per
        host:port (connected on first use), all closed on exit. Nested use is a no-op.

        Not tied to Dagster's setup/teardown hooks on purpose: a teardown hook makes Dagster treat the
        resource as a context manager, which every sensor and schedule using it must then open with
        `with build_*_context(...)`; and a `meter_readings` run reads once, so it has nothing to reuse.
        """
        if self._session is not None:
            yield self
            return
        self._session = _Session()
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        """Close the session's connections and event loop, if one is open."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def read_points(self, devices: Sequence[ModbusDevice] | None = None) -> ModbusSnapshot:
        """Every point of `devices` (default: all configured) read now; failures are `bad` rows.

        Inside `session()` the connections stay open for the next read; otherwise they are opened
        for this read and closed after it.
        Raises ModbusReadError only when no device returned a single good value.
        """
        if self._session is None:
            with self.session():
                return self.read_points(devices)
        session = self._session
        return session.run(self._read(session.pool, devices))

    async def aread_points(self, devices: Sequence[ModbusDevice] | None = None) -> ModbusSnapshot:
        """`read_points` for callers already in an event loop: connections live for this read only."""
        pool = _Pool()
        try:
            return await self._read(pool, devices)
        finally:
            await pool.aclose()

    def health_check(self, devices: Sequence[ModbusDevice] | None = None) -> HealthStatus:
        """Connect to each device (default: all configured) and read its first point once, on
        connections of its own: a probe must show that the device accepts one now."""
        devices = list(self.devices if devices is None else devices)
        probes = [device.model_copy(update={"points": device.points[:1]}) for device in devices]
        endpoints = ", ".join(dict.fromkeys(endpoint_of(device) for device in devices))
        began = time.perf_counter()
        try:
            snapshot = asyncio.run(asyncio.wait_for(self.aread_points(probes), self.health_timeout_s))
        except (ModbusReadError, TimeoutError) as exc:
            return HealthStatus(False, endpoints, f"{type(exc).__name__}: {exc}", time.perf_counter() - began)
        bad = snapshot.frame[snapshot.frame["quality"] != "good"]
        detail = f"{len(devices) - len(bad)}/{len(devices)} devices answered"
        if len(bad):
            detail += "; " + "; ".join(bad["status"])
        return HealthStatus(bad.empty, endpoints, detail, time.perf_counter() - began)

    async def _read(self, pool: _Pool, devices: Sequence[ModbusDevice] | None) -> ModbusSnapshot:
        devices = list(pool.configured(self) if devices is None else devices)
        if not devices:
            raise ValueError("no Modbus devices to read")
        began = time.perf_counter()
        polls = [_Poll(pool.link(host, port), group) for (host, port), group in _by_endpoint(devices).items()]
        gate = asyncio.Semaphore(self.max_connections_in_flight)

        async def poll(each: _Poll) -> list[_DeviceRead]:
            async with gate:
                try:
                    return [await self._read_device(each, device, pool) for device in each.devices]
                except BaseException:
                    each.link.close()  # cancelled mid-exchange (health timeout): a late answer must not be reused
                    raise

        reads = {read.device.name: read for group in await asyncio.gather(*map(poll, polls)) for read in group}
        ordered = [reads[device.name] for device in devices]
        failed = [read for read in ordered if not read.any_good]
        if len(failed) == len(ordered):
            reasons = "; ".join(
                f"{read.device.name} ({endpoint_of(read.device)}): {read.first_error}" for read in failed
            )
            raise ModbusReadError(f"every Modbus device failed: {reasons}")
        return ModbusSnapshot(
            frame=self._to_frame(ordered),
            payload_sha256=_digest(ordered),
            requests=sum(each.requests for each in polls),
            duration_s=time.perf_counter() - began,
            endpoints=tuple(dict.fromkeys(endpoint_of(device) for device in devices)),
            refused={
                device.name: tuple(sorted(refused))
                for device in devices
                if (refused := self._refused.get(endpoint_of(device)))
            },
        )

    async def _read_device(self, poll: _Poll, device: ModbusDevice, pool: _Pool) -> _DeviceRead:
        """Blocks one after another: a meter answers one request at a time anyway."""
        read = _DeviceRead(device)
        refused = self._refused.setdefault(endpoint_of(device), set())
        blocks = pool.plan(device, self.max_gap, frozenset(refused))
        for index, planned in enumerate(blocks):
            try:
                await self._read_isolating(poll, device, planned, read, refused)
            except _DeviceGone as gone:
                for rest in blocks[index + 1 :]:
                    read.fail(rest, gone.status)
                break
        return read

    async def _read_isolating(
        self,
        poll: _Poll,
        device: ModbusDevice,
        planned: _PlannedBlock,
        read: _DeviceRead,
        refused: set[AddressRange],
        refusal: ModbusExceptionResponse | None = None,
    ) -> bool:
        """Read a block into `read`; True when one request read it whole.

        An "illegal data address" reply for several points is narrowed down by halves until each
        refused address is alone: the rest are read and stored good, each refused point gets a bad
        row naming its own address, and the refused addresses are remembered. `refusal` is the reply
        this block is already known to get (the half after a half that was read fine, with nothing
        between them), which saves asking. A device that stops answering raises _DeviceGone.
        """
        block = planned.block
        if refusal is None:
            try:
                values = await self._read_block(poll, device, block)
            except ModbusExceptionResponse as exc:
                if exc.code != ILLEGAL_DATA_ADDRESS:
                    read.fail(planned, self._status(exc))
                    return False
                refusal = exc
            except ModbusReadError as exc:
                status = self._status(exc)
                if isinstance(exc, ModbusUnreachableError):
                    poll.unreachable = exc.reason + self._tries  # the link's other devices need not wait for it again
                read.fail(planned, status)
                if isinstance(exc, ModbusTransientError):
                    raise _DeviceGone(status) from exc  # gone for now: the rest would fail the same way
                return False
            else:
                read.succeed(planned, values)
                if len(block.points) == 1:  # read fine now: a point on a refused address was fixed
                    refused.difference_update([r for r in refused if r.overlaps(block.table, block.address, block.end)])
                return True
        if len(block.points) == 1:
            refused.add(AddressRange(block.table, block.address, block.end - 1))
            read.fail(planned, str(ModbusExceptionResponse(refusal.code, device, block)))
            return False
        left, right = (_PlannedBlock.of(half) for half in split_block(block))
        try:
            left_whole = await self._read_isolating(poll, device, left, read, refused)
        except _DeviceGone as gone:
            read.fail(right, gone.status)
            raise
        adjoining = left.block.end == right.block.address
        known = ModbusExceptionResponse(refusal.code, device, right.block) if left_whole and adjoining else None
        right_whole = await self._read_isolating(poll, device, right, read, refused, known)
        if left_whole and right_whole:  # both halves read fine: the refused address lies between them
            refused.add(AddressRange(block.table, left.block.end, right.block.address - 1))
        return False

    @property
    def _tries(self) -> str:
        return f" after {self.retry_attempts} {'try' if self.retry_attempts == 1 else 'tries'}"

    def _status(self, exc: ModbusReadError) -> str:
        return str(exc) + (self._tries if _is_transient(exc) else "")

    async def _read_block(self, poll: _Poll, device: ModbusDevice, block: ReadBlock) -> list[int] | list[bool]:
        """The first try goes straight out: tenacity's bookkeeping per attempt (~30 us) costs more than
        a loopback round trip. Only a transient failure enters tenacity, which replays that failure
        as its attempt 1, so the waits and the count of tries are exactly tenacity's."""
        try:
            return await poll.read(device, block)
        except ModbusReadError as exc:
            if not _is_transient(exc) or self.retry_attempts == 1:
                raise
            first: ModbusReadError | None = exc
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.retry_initial_wait_s, max=self.retry_max_wait_s, jitter=self.retry_initial_wait_s
            ),
            reraise=True,
        ):
            with attempt:
                if first is not None:
                    replay, first = first, None
                    raise replay
                values = await poll.read(device, block)
        return values

    def _to_frame(self, reads: list[_DeviceRead]) -> pd.DataFrame:
        """One DataFrame from whole columns joined block by block: row by row, or from lists that
        pandas must scan for a dtype, costs a millisecond per read."""
        chunks = [chunk for read in reads for chunk in read.chunks]
        sizes = [len(chunk.values) for chunk in chunks]
        ts = np.repeat(np.array([chunk.ts_ns for chunk in chunks], dtype=np.int64), sizes)

        def joined(column: str) -> np.ndarray:
            return np.concatenate([getattr(chunk, column) for chunk in chunks] or [np.empty(0, dtype=object)])

        columns = {
            "ts": pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC"),
            "tag": joined("names"),
            "value": joined("values").astype(np.float64),
            "unit": joined("units"),
            "quality": joined("quality"),
            "status": joined("status"),
            "device": np.repeat(np.array([chunk.device for chunk in chunks], dtype=object), sizes),
            "source": np.full(len(ts), self.source_name, dtype=object),
        }
        return pd.DataFrame({name: columns[name] for name in READINGS_COLUMNS}, copy=False)


def _strings(values: Sequence[str]) -> np.ndarray:
    """Python strings as an object array: pandas takes it as is, where a list it would scan for a dtype."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


@dataclass(frozen=True)
class _PlannedBlock:
    """A read request with what turns its reply into rows, computed once per device and session."""

    block: ReadBlock
    names: np.ndarray
    units: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    good: np.ndarray
    ok: np.ndarray

    @classmethod
    def of(cls, block: ReadBlock) -> _PlannedBlock:
        points = block.points
        return cls(
            block,
            names=_strings([p.name for p in points]),
            units=_strings([p.unit for p in points]),
            scale=np.array([p.scale for p in points]),
            offset=np.array([p.offset for p in points]),
            good=_strings(["good"] * len(points)),
            ok=_strings(["ok"] * len(points)),
        )


@dataclass
class _Chunk:
    """One block's rows, column-wise (object arrays of strings; values NaN where bad)."""

    ts_ns: int
    device: str
    names: np.ndarray
    units: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    status: np.ndarray


@dataclass
class _DeviceRead:
    """What one device returned: its rows block by block, and the raw payload of each block for the digest."""

    device: ModbusDevice
    chunks: list[_Chunk] = field(default_factory=list)
    payload: list[bytes] = field(default_factory=list)
    any_good: bool = False
    first_error: str | None = None

    def succeed(self, planned: _PlannedBlock, values: list[int] | list[bool]) -> None:
        now = time.time_ns()
        block = planned.block
        try:
            raw = decode_values(block, values)
        except ValueError as exc:
            self.fail(planned, f"device {self.device.name}: {exc}")
            return
        self.payload.append(self._header(block) + _pack(block, values))
        engineering = raw * planned.scale + planned.offset
        finite = np.isfinite(engineering)
        if finite.all():
            quality, status = planned.good, planned.ok
        else:  # meters send NaN for "no measurement"
            flags = finite.tolist()
            quality = _strings(["good" if ok else "bad" for ok in flags])
            status = _strings(
                [
                    "ok" if ok else f"non-finite value {value} from device {self.device.name}"
                    for ok, value in zip(flags, engineering.tolist(), strict=True)
                ]
            )
            engineering = np.where(finite, engineering, np.nan)
        self.any_good = self.any_good or bool(finite.any())
        self.chunks.append(_Chunk(now, self.device.name, planned.names, planned.units, engineering, quality, status))

    def fail(self, planned: _PlannedBlock, status: str) -> None:
        now = time.time_ns()
        self.first_error = self.first_error or status
        self.payload.append(self._header(planned.block) + b"error " + status.encode())
        n = len(planned.names)
        self.chunks.append(
            _Chunk(
                now,
                self.device.name,
                planned.names,
                planned.units,
                np.full(n, np.nan),
                _strings(["bad"] * n),
                _strings([status] * n),
            )
        )

    def _header(self, block: ReadBlock) -> bytes:
        return f"{endpoint_of(self.device)}|{block.table}|{block.address}|{block.count}|".encode()


def _pack(block: ReadBlock, values: list[int] | list[bool]) -> bytes:
    """Registers as big-endian words, bits as one byte each: the canonical form of what the device sent."""
    if block.table in BIT_TABLES:
        return bytes(bool(bit) for bit in values[: block.count])
    return struct.pack(f">{block.count}H", *values[: block.count])


def _digest(reads: list[_DeviceRead]) -> str:
    digest = hashlib.sha256()
    for read in reads:
        for part in read.payload:
            digest.update(len(part).to_bytes(4, "big") + part)
    return digest.hexdigest()


def _readable(client: AsyncModbusTcpClient) -> bool:
    """Whether the connection's socket has bytes (or an end-of-file) waiting to be read."""
    sock = client.ctx.transport.get_extra_info("socket")
    return bool(select.select([sock.fileno()], [], [], 0)[0])


def _by_endpoint(devices: Sequence[ModbusDevice]) -> dict[tuple[str, int], list[ModbusDevice]]:
    """One connection per (host, port): a gateway serves many device ids over one socket."""
    groups: dict[tuple[str, int], list[ModbusDevice]] = {}
    for device in devices:
        groups.setdefault((device.host, device.port), []).append(device)
    return groups


class _Pool:
    """Open links by (host, port), and each device's read plan: what a session keeps between reads."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, int], _Link] = {}
        self._plans: dict[int, tuple[ModbusDevice, frozenset[AddressRange], list[_PlannedBlock]]] = {}
        self._configured: list[ModbusDevice] | None = None

    def link(self, host: str, port: int) -> _Link:
        return self.links.setdefault((host, port), _Link(host, port))

    def plan(self, device: ModbusDevice, max_gap: int, refused: frozenset[AddressRange]) -> list[_PlannedBlock]:
        """The device's blocks around its refused addresses; kept per device object (held here, so
        its id cannot be reused) until the refused addresses change."""
        cached = self._plans.get(id(device))
        if cached is None or cached[0] is not device or cached[1] != refused:
            blocks = plan_reads(device.points, max_gap, refused)
            cached = device, refused, [_PlannedBlock.of(block) for block in blocks]
            self._plans[id(device)] = cached
        return cached[2]

    def configured(self, resource: ModbusResource) -> list[ModbusDevice]:
        if self._configured is None:
            self._configured = resource.devices
        return self._configured

    async def aclose(self) -> None:
        for link in self.links.values():
            link.close()
        await asyncio.sleep(0)  # the transports finish closing their sockets on the next loop pass


class _Session:
    """An event loop and a pool of connections kept across reads; reads from several threads take turns."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.pool = _Pool()
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            return self.runner.run(coroutine)

    def close(self) -> None:
        with self._lock:
            try:
                if self.pool.links:  # a session that never read has no loop to start just for this
                    self.runner.run(self.pool.aclose())
            finally:
                self.runner.close()


class _Poll:
    """One read's use of a link: the devices behind it, requests sent, and whether it is unreachable this time."""

    def __init__(self, link: _Link, devices: list[ModbusDevice]) -> None:
        self.link, self.devices = link, devices
        self.requests = 0
        self.unreachable: str | None = None

    async def read(self, device: ModbusDevice, block: ReadBlock) -> list[int] | list[bool]:
        if self.unreachable:
            raise ModbusReadError(unreachable_status(device, self.unreachable))
        client = await self.link.connect(device, max(d.timeout_s for d in self.devices))
        self.requests += 1
        return await self.link.request(client, device, block)


class _Link:
    """One TCP connection, opened on first use and again after it was lost or timed out."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._client: AsyncModbusTcpClient | None = None
        self._lost: asyncio.Future[None] | None = None
        """Done once the connection is gone: what a request races its answer against."""

    async def request(
        self, client: AsyncModbusTcpClient, device: ModbusDevice, block: ReadBlock
    ) -> list[int] | list[bool]:
        method = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[block.table]

        async def request():
            return await method(block.address, count=block.count, device_id=device.device_id)

        answer, lost = asyncio.ensure_future(request()), self._lost
        # pymodbus notices a closed socket but keeps waiting out its timeout; the race ends the wait at once.
        done, _ = await asyncio.wait({answer, lost}, timeout=device.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        where = f"device {device.name} ({self.host}:{self.port} id {device.device_id})"
        if answer not in done:
            answer.cancel()
            self.close()  # a late answer must not be taken for the next request's
            if lost in done:
                raise ModbusTransientError(f"connection lost to {where}")
            raise ModbusTransientError(f"timeout: no answer from {where} within {device.timeout_s:g} s")
        try:
            response = answer.result()
        except ModbusException as exc:
            self.close()
            raise ModbusTransientError(f"{where}: {exc}") from exc
        if response.isError():
            raise ModbusExceptionResponse(response.exception_code, device, block)
        return response.bits if block.table in BIT_TABLES else response.registers

    async def connect(self, device: ModbusDevice, timeout_s: float) -> AsyncModbusTcpClient:
        # With no request outstanding there is nothing to read, unless the device closed the connection
        # while it sat idle between reads (or sent what nobody asked for): then start afresh.
        live = self._client is not None and self._client.connected and not self._lost.done()
        if live and not _readable(self._client):
            return self._client
        self.close()
        lost = self._lost = asyncio.get_running_loop().create_future()
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=timeout_s,
            retries=0,  # tenacity retries, with backoff, and counts every request sent
            reconnect_delay=0,  # no background reconnects: we reconnect when we next need the link
            trace_connect=lambda connected: None if connected or lost.done() else lost.set_result(None),
        )
        began = time.monotonic()
        if not await client.connect():  # pymodbus logs the reason and returns False
            client.close()
            limit = client.comm_params.timeout_connect
            if time.monotonic() - began < 0.9 * limit:
                raise ModbusUnreachableError(device, await self._why_not(limit))
            raise ModbusUnreachableError(
                device,
                f"no answer to connect within {limit:g} s (host down or unreachable, or a firewall "
                "dropping packets: check the host and the network)",
            )
        self._client = client
        return client

    async def _why_not(self, timeout_s: float) -> str:
        """Why a connect failed at once (pymodbus keeps the reason to its log): one bare connect tells."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout_s)
        except ConnectionRefusedError:
            return f"connection refused (nothing listening at {self.host}:{self.port}: check the host and port)"
        except TimeoutError:
            return f"no answer to a second connect within {timeout_s:g} s"
        except OSError as exc:
            return f"cannot connect: {exc.strerror or exc!r}"
        writer.close()
        return "cannot connect (failed at once, yet a second connect succeeded)"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
