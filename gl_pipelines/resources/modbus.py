"""Modbus TCP meter reads: planned, concurrent across connections, retried, read-only.

Meters keep no history, so a read is a snapshot: every configured point's current value with the
time it was actually read. The resource plans the fewest requests per device (`modbus_plan`),
reads them, and returns the canonical long frame in which a failed read is a `bad` row saying why;
one broken meter never costs the readings of the others. It offers no write function on purpose:
plant devices are only ever read.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.config import BIT_TABLES, ModbusDevice, ModbusPoint, ModbusSource
from gl_pipelines.resources.health import HealthStatus
from gl_pipelines.resources.modbus_plan import ReadBlock, decode_block, plan_reads

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
        last = block.end - 1
        super().__init__(
            f"exception {code} ({EXCEPTION_NAMES.get(code, 'UNKNOWN')}) from device {device.name} "
            f"({block.table} {block.address}..{last})"
        )


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


def endpoint_of(device: ModbusDevice) -> str:
    """Where a device answers. Modbus TCP has no credentials, so nothing needs redacting."""
    return f"modbus://{device.host}:{device.port}/{device.device_id}"


def unreachable_status(device: ModbusDevice, reason: str) -> str:
    return f"unreachable: device {device.name} at {device.host}:{device.port}: {reason}"


def engineering_value(point: ModbusPoint, raw: float | int | bool) -> float:
    """Raw register value -> the point's engineering unit (bits become 0/1)."""
    return float(raw) * point.scale + point.offset


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ModbusExceptionResponse):
        return exc.code in TRANSIENT_EXCEPTION_CODES
    return isinstance(exc, ModbusTransientError)


class ModbusResource(ConfigurableResource):
    """Modbus TCP devices of one site, read as snapshots of their configured points."""

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

    @classmethod
    def from_source(cls, source: ModbusSource, **settings) -> ModbusResource:
        """The resource for the site config's `modbus:` section; `settings` override the other fields."""
        devices = "[" + ",".join(device.model_dump_json() for device in source.devices) + "]"
        return cls(devices_json=devices, source_name=source.source_name, max_gap=source.max_gap, **settings)

    @property
    def devices(self) -> list[ModbusDevice]:
        return ModbusSource.model_validate_json(f'{{"devices": {self.devices_json}}}').devices

    def read_points(self, devices: Sequence[ModbusDevice] | None = None) -> ModbusSnapshot:
        """Every point of `devices` (default: all configured) read now; failures are `bad` rows.

        Raises ModbusReadError only when no device returned a single good value.
        """
        return asyncio.run(self.aread_points(devices))

    async def aread_points(self, devices: Sequence[ModbusDevice] | None = None) -> ModbusSnapshot:
        devices = list(self.devices if devices is None else devices)
        if not devices:
            raise ValueError("no Modbus devices to read")
        began = time.perf_counter()
        links = _links_for(devices)
        gate = asyncio.Semaphore(self.max_connections_in_flight)

        async def poll(link: _Link) -> list[_DeviceRead]:
            async with gate:
                try:
                    return [await self._read_device(link, device) for device in link.devices]
                finally:
                    link.close()

        reads = {read.device.name: read for group in await asyncio.gather(*map(poll, links)) for read in group}
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
            requests=sum(link.requests for link in links),
            duration_s=time.perf_counter() - began,
            endpoints=tuple(dict.fromkeys(endpoint_of(device) for device in devices)),
        )

    def health_check(self, devices: Sequence[ModbusDevice] | None = None) -> HealthStatus:
        """Connect to each device (default: all configured) and read its first point once."""
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

    async def _read_device(self, link: _Link, device: ModbusDevice) -> _DeviceRead:
        """Blocks one after another: a meter answers one request at a time anyway."""
        read = _DeviceRead(device)
        blocks = plan_reads(device.points, self.max_gap)
        for index, block in enumerate(blocks):
            try:
                values = await self._read_block(link, device, block)
            except ModbusReadError as exc:
                tries = f" after {self.retry_attempts} {'try' if self.retry_attempts == 1 else 'tries'}"
                status = str(exc) + (tries if _is_transient(exc) else "")
                if isinstance(exc, ModbusUnreachableError):
                    link.unreachable = exc.reason + tries  # the link's other devices need not wait for it again
                if isinstance(exc, ModbusTransientError):
                    # The device is gone for now: its other blocks fail the same way, without more waiting.
                    for rest in blocks[index:]:
                        read.fail(rest, status)
                    break
                read.fail(block, status)
                continue
            read.succeed(block, values)
        return read

    async def _read_block(self, link: _Link, device: ModbusDevice, block: ReadBlock) -> list[int] | list[bool]:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.retry_initial_wait_s, max=self.retry_max_wait_s, jitter=self.retry_initial_wait_s
            ),
            reraise=True,
        ):
            with attempt:
                values = await link.read(device, block)
        return values

    def _to_frame(self, reads: list[_DeviceRead]) -> pd.DataFrame:
        """One DataFrame built from whole columns: adding columns one by one costs ms per read."""
        rows = [row for read in reads for row in read.rows]
        ts, tag, value, unit, quality, status, device = zip(*rows, strict=True) if rows else ([],) * 7
        columns = {
            "ts": pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True),
            "tag": list(tag),
            "value": np.asarray(value, dtype=np.float64),
            "unit": list(unit),
            "quality": list(quality),
            "status": list(status),
            "device": list(device),
            "source": [self.source_name] * len(rows),
        }
        return pd.DataFrame(columns, columns=READINGS_COLUMNS)


@dataclass
class _DeviceRead:
    """What one device returned: a row per point, and the raw payload of each block for the digest."""

    device: ModbusDevice
    rows: list[tuple] = field(default_factory=list)
    payload: list[bytes] = field(default_factory=list)
    any_good: bool = False
    first_error: str | None = None

    def succeed(self, block: ReadBlock, values: list[int] | list[bool]) -> None:
        now = time.time_ns()
        try:
            raw = decode_block(block, values)
        except ValueError as exc:
            self.fail(block, f"device {self.device.name}: {exc}")
            return
        self.payload.append(self._header(block) + _pack(block, values))
        for point in block.points:
            value = engineering_value(point, raw[point.name])
            if math.isfinite(value):
                self.rows.append((now, point.name, value, point.unit, "good", "ok", self.device.name))
                self.any_good = True
            else:  # meters send NaN for "no measurement"
                status = f"non-finite value {value} from device {self.device.name}"
                self.rows.append((now, point.name, None, point.unit, "bad", status, self.device.name))

    def fail(self, block: ReadBlock, status: str) -> None:
        now = time.time_ns()
        self.first_error = self.first_error or status
        self.payload.append(self._header(block) + b"error " + status.encode())
        self.rows += [(now, p.name, None, p.unit, "bad", status, self.device.name) for p in block.points]

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


def _links_for(devices: Sequence[ModbusDevice]) -> list[_Link]:
    """One connection per (host, port): a gateway serves many device ids over one socket."""
    links: dict[tuple[str, int], _Link] = {}
    for device in devices:
        links.setdefault((device.host, device.port), _Link(device.host, device.port)).devices.append(device)
    return list(links.values())


class _Link:
    """One TCP connection, opened on first use and again after it was lost or timed out."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.devices: list[ModbusDevice] = []
        self.requests = 0
        self.unreachable: str | None = None
        self._client: AsyncModbusTcpClient | None = None
        self._lost = asyncio.Event()

    async def read(self, device: ModbusDevice, block: ReadBlock) -> list[int] | list[bool]:
        if self.unreachable:
            raise ModbusReadError(unreachable_status(device, self.unreachable))
        client = await self._connect(device)
        method = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[block.table]

        async def request():
            return await method(block.address, count=block.count, device_id=device.device_id)

        self.requests += 1
        answer, lost = asyncio.ensure_future(request()), asyncio.ensure_future(self._lost.wait())
        # pymodbus notices a closed socket but keeps waiting out its timeout; the race ends the wait at once.
        done, _ = await asyncio.wait({answer, lost}, timeout=device.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
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

    async def _connect(self, device: ModbusDevice) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        lost = self._lost = asyncio.Event()
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=max(d.timeout_s for d in self.devices),
            retries=0,  # tenacity retries, with backoff, and counts every request sent
            reconnect_delay=0,  # no background reconnects: we reconnect when we next need the link
            trace_connect=lambda connected: None if connected else lost.set(),
        )
        if not await client.connect():  # pymodbus logs the reason and returns False
            client.close()
            raise ModbusUnreachableError(
                device, f"cannot connect (refused, or no answer within {client.comm_params.timeout_connect:g} s)"
            )
        self._client = client
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
