"""OPC UA history extraction: batched, limit-aware, retried, read-only.

The resource talks to one OPC UA server. It reads raw history for many tags over [start, end)
and returns the canonical long frame; it knows nothing about partitions or the warehouse.
It offers no write method on purpose: SCADA access is read-only.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
from asyncua import Client, ua
from dagster import ConfigurableResource
from pydantic import Field
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.resources.health import HealthStatus

READINGS_COLUMNS = ["ts", "tag", "value", "unit", "quality", "status_code", "status", "source"]
RESOURCE_VERSION = f"gl-pipelines-opcua/1 asyncua/{version('asyncua')}"

# Service results that mean "the link or the session went away", worth a reconnect and retry.
TRANSIENT_STATUS = {
    ua.StatusCodes.BadTimeout,
    ua.StatusCodes.BadConnectionClosed,
    ua.StatusCodes.BadServerNotConnected,
    ua.StatusCodes.BadSessionClosed,
    ua.StatusCodes.BadSessionIdInvalid,
    ua.StatusCodes.BadCommunicationError,
    ua.StatusCodes.BadServerHalted,
    ua.StatusCodes.BadTooManySessions,
    ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadNoCommunication,
}


class OpcUaError(RuntimeError):
    """Extraction failed; the message names the endpoint and, where known, the tag."""


class OpcUaTransientError(OpcUaError):
    """The connection dropped or a request timed out; a retry may succeed."""


@dataclass(frozen=True)
class TagRef:
    """A tag to read: the site name stored in the warehouse, its NodeId and engineering unit."""

    name: str
    node_id: str
    unit: str


@dataclass(frozen=True)
class RawHistory:
    """Canonical readings plus what an auditor needs to trace them back to the server."""

    frame: pd.DataFrame
    payload_sha256: str
    requests: int
    duration_s: float


def redact_url(url: str) -> str:
    """The endpoint without any user:password@ part, safe for logs and metadata."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def quality_of(status_codes: np.ndarray) -> np.ndarray:
    """OPC UA severity bits (top two) -> good / uncertain / bad."""
    severity = (status_codes.astype(np.uint32) >> 30) & 0b11
    return np.select([severity == 0, severity == 1], ["good", "uncertain"], "bad").astype(object)


def status_name(code: int) -> str:
    try:
        return ua.status_codes.get_name_and_doc(code)[0]
    except KeyError:
        return f"0x{code:08X}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in TRANSIENT_STATUS
    return isinstance(exc, OpcUaTransientError | OSError | TimeoutError | asyncio.TimeoutError | ConnectionError)


class _TagSamples:
    """Accumulates one tag's DataValues across continuation-point pages."""

    __slots__ = ("stamps", "values", "codes")

    def __init__(self) -> None:
        self.stamps: list[datetime | None] = []
        self.values: list[object] = []
        self.codes: list[int] = []

    def extend(self, datavalues: Sequence[ua.DataValue]) -> None:
        for dv in datavalues:
            self.stamps.append(dv.SourceTimestamp or dv.ServerTimestamp)
            self.values.append(dv.Value.Value if dv.Value is not None else None)
            self.codes.append(dv.StatusCode.value if dv.StatusCode is not None else 0)


class OpcUaResource(ConfigurableResource):
    """One OPC UA server, read through raw HistoryRead."""

    endpoint: str = Field(description="opc.tcp:// URL of the server (no credentials in it).")
    source_name: str = Field(default="opcua", description="Recorded in each row's `source` column.")
    username: str | None = Field(default=None, description="User name; set from EnvVar in deployments.")
    password: str | None = Field(default=None, description="Password: always an EnvVar, never literal.")
    security_policy: str | None = Field(default=None, description="e.g. Basic256Sha256; None = no security.")
    security_mode: str = Field(default="SignAndEncrypt", description="Sign or SignAndEncrypt.")
    certificate_path: str | None = Field(default=None, description="Client certificate (DER/PEM).")
    private_key_path: str | None = Field(default=None, description="Client private key (PEM).")
    server_certificate_path: str | None = Field(default=None, description="Pinned server certificate.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    health_timeout_s: float = Field(default=5.0, gt=0, description="Whole health probe; keeps sensor ticks short.")
    request_timeout_s: float = Field(default=60.0, gt=0, description="Per HistoryRead request.")
    max_nodes_per_request: int = Field(default=200, gt=0, description="Capped by the server's own limit.")
    max_values_per_node: int = Field(default=10_000, ge=0, description="NumValuesPerNode per page.")
    max_requests_in_flight: int = Field(default=4, gt=0, description="Concurrent requests on the session.")
    retry_attempts: int = Field(default=4, ge=1, description="Total tries on connection/timeouts.")
    retry_initial_wait_s: float = Field(default=0.5, ge=0)
    retry_max_wait_s: float = Field(default=10.0, ge=0)

    @property
    def safe_endpoint(self) -> str:
        return redact_url(self.endpoint)

    def read_raw_history(self, tags: Sequence[TagRef], start: datetime, end: datetime) -> RawHistory:
        """Every raw value of `tags` in [start, end), bad ones included, as the canonical frame."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        return asyncio.run(self.aread_raw_history(tags, start, end))

    async def aread_raw_history(self, tags: Sequence[TagRef], start: datetime, end: datetime) -> RawHistory:
        began = time.perf_counter()
        requests = 0
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential_jitter(multiplier=self.retry_initial_wait_s, max=self.retry_max_wait_s),
            reraise=True,
        ):
            with attempt:
                samples, made = await self._read_once(tags, start, end)
                requests += made
        frame, digest = self._to_frame(tags, samples, start, end)
        return RawHistory(frame, digest, requests, time.perf_counter() - began)

    def health_check(self) -> HealthStatus:
        """Connect and read the server state: what a sensor asks before launching runs."""

        async def probe() -> str:
            async with await self._connected() as client:
                state = await client.get_node(ua.ObjectIds.Server_ServerStatus_State).read_value()
                return ua.ServerState(state).name

        began = time.perf_counter()
        try:
            state = asyncio.run(asyncio.wait_for(probe(), self.health_timeout_s))
        except Exception as exc:
            return HealthStatus(False, self.safe_endpoint, f"{type(exc).__name__}: {exc}", time.perf_counter() - began)
        return HealthStatus(
            state == "Running", self.safe_endpoint, f"server state {state}", time.perf_counter() - began
        )

    async def _connected(self) -> Client:
        # asyncua's watchdog probes the server every second by default and gives up on the session
        # if the probe is slow; a server busy encoding big history responses is slow, not dead.
        client = Client(self.endpoint, timeout=self.request_timeout_s, watchdog_intervall=self.request_timeout_s)
        client.session_timeout = 600_000  # ms; a read needs minutes at most, and servers commonly cap it there
        if self.username:
            client.set_user(self.username)
        if self.password:
            client.set_password(self.password)
        if self.security_policy:
            parts = [self.security_policy, self.security_mode, self.certificate_path, self.private_key_path]
            if self.server_certificate_path:
                parts.append(self.server_certificate_path)
            await client.set_security_string(",".join(p or "" for p in parts))
        try:
            await asyncio.wait_for(client.connect(), self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise OpcUaTransientError(f"{self.safe_endpoint}: cannot connect: {exc or type(exc).__name__}") from exc
        return _Session(client)

    async def _read_once(
        self, tags: Sequence[TagRef], start: datetime, end: datetime
    ) -> tuple[dict[str, _TagSamples], int]:
        async with await self._connected() as client:
            server_limit = await client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
            ).read_value()
            per_request = min(self.max_nodes_per_request, server_limit or self.max_nodes_per_request)
            gate = asyncio.Semaphore(self.max_requests_in_flight)
            batches = [tags[i : i + per_request] for i in range(0, len(tags), per_request)]
            results = await asyncio.gather(*(self._read_batch(client, b, start, end, gate) for b in batches))
        samples: dict[str, _TagSamples] = {}
        for batch_samples, _ in results:
            samples.update(batch_samples)
        return samples, sum(made for _, made in results)

    async def _read_batch(
        self, client: Client, batch: Sequence[TagRef], start: datetime, end: datetime, gate: asyncio.Semaphore
    ) -> tuple[dict[str, _TagSamples], int]:
        """Read one batch, following continuation points until every node is complete."""
        samples = {tag.name: _TagSamples() for tag in batch}
        pending: dict[TagRef, bytes | None] = dict.fromkeys(batch)
        requests = 0
        try:
            while pending:
                async with gate:
                    results = await self._history_read(client, pending, start, end)
                requests += 1
                following: dict[TagRef, bytes] = {}
                repeated: list[TagRef] = []
                for (tag, sent_point), result in zip(pending.items(), results, strict=True):
                    self._raise_for_node(tag, result.StatusCode)
                    samples[tag.name].extend(result.HistoryData.DataValues if result.HistoryData else [])
                    if result.ContinuationPoint:
                        following[tag] = result.ContinuationPoint
                        if result.ContinuationPoint == sent_point:
                            repeated.append(tag)
                pending = following
                if repeated:
                    names = ", ".join(f"{t.name} ({t.node_id})" for t in repeated[:5])
                    raise OpcUaError(
                        f"{self.safe_endpoint}: tag {names}: server repeated the same continuation point; "
                        "stopped instead of looping"
                    )
        except Exception:
            await self._release(client, {t: p for t, p in pending.items() if p})
            raise
        return samples, requests

    async def _history_read(
        self, client: Client, nodes: dict[TagRef, bytes | None], start: datetime, end: datetime
    ) -> list[ua.HistoryReadResult]:
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = ua.ReadRawModifiedDetails(
            IsReadModified=False,
            StartTime=start,
            EndTime=end,
            NumValuesPerNode=self.max_values_per_node,
            ReturnBounds=False,
        )
        params.TimestampsToReturn = ua.TimestampsToReturn.Source
        params.ReleaseContinuationPoints = False  # asyncua's default is True
        params.NodesToRead = [
            ua.HistoryReadValueId(NodeId=ua.NodeId.from_string(tag.node_id), ContinuationPoint=point)
            for tag, point in nodes.items()
        ]
        try:
            return await asyncio.wait_for(client.uaclient.history_read(params), self.request_timeout_s)
        except ua.UaStatusCodeError as exc:
            if exc.code in TRANSIENT_STATUS:
                raise
            raise OpcUaError(f"{self.safe_endpoint}: HistoryRead refused: {status_name(exc.code)}") from exc
        except (ConnectionError, TimeoutError) as exc:
            raise OpcUaTransientError(f"{self.safe_endpoint}: HistoryRead failed: {exc!r}") from exc

    async def _release(self, client: Client, points: dict[TagRef, bytes]) -> None:
        """Tell the server to free continuation points we will not follow (best effort)."""
        if not points:
            return
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = ua.ReadRawModifiedDetails(IsReadModified=False)
        params.ReleaseContinuationPoints = True
        params.NodesToRead = [
            ua.HistoryReadValueId(NodeId=ua.NodeId.from_string(t.node_id), ContinuationPoint=p)
            for t, p in points.items()
        ]
        try:
            await asyncio.wait_for(client.uaclient.history_read(params), self.request_timeout_s)
        except Exception:  # the link may be gone already; the server frees them with the session
            return

    def _raise_for_node(self, tag: TagRef, status: ua.StatusCode | None) -> None:
        if status is None or status.is_good():
            return
        code = status.value
        if code in TRANSIENT_STATUS:
            raise ua.UaStatusCodeError(code)
        raise OpcUaError(
            f"{self.safe_endpoint}: tag {tag.name} ({tag.node_id}): HistoryRead failed with {status_name(code)}"
        )

    def _to_frame(
        self, tags: Sequence[TagRef], samples: dict[str, _TagSamples], start: datetime, end: datetime
    ) -> tuple[pd.DataFrame, str]:
        parts = []
        digest = hashlib.sha256()
        for tag in tags:
            got = samples[tag.name]
            if any(stamp is None for stamp in got.stamps):
                raise OpcUaError(f"{self.safe_endpoint}: tag {tag.name}: a value came without any timestamp")
            stamps = pd.DatetimeIndex(got.stamps)
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            codes = np.asarray(got.codes, dtype=np.uint32)
            values, reasons = _numeric(got.values)
            digest.update(tag.node_id.encode())
            digest.update(stamps.asi8.tobytes())
            digest.update(codes.tobytes())
            digest.update(repr(got.values).encode())
            quality = quality_of(codes)
            status = pd.Series(codes).map(status_name).to_numpy(dtype=object)
            if reasons:
                for index, reason in reasons.items():
                    quality[index], status[index] = "bad", reason
            parts.append(
                pd.DataFrame(
                    {
                        "ts": stamps,
                        "tag": tag.name,
                        "value": values,
                        "unit": tag.unit,
                        "quality": quality,
                        "status_code": codes.astype(np.int64),
                        "status": status,
                    }
                )
            )
        frame = pd.concat(parts, ignore_index=True) if parts else _empty_frame()
        frame["source"] = self.source_name
        outside = frame[(frame["ts"] < pd.Timestamp(start)) | (frame["ts"] >= pd.Timestamp(end))]
        if len(outside):
            first = outside.iloc[0]
            raise OpcUaError(
                f"{self.safe_endpoint}: tag {first['tag']}: server returned {len(outside)} value(s) outside the "
                f"requested window [{start.isoformat()}, {end.isoformat()}), first at {first['ts'].isoformat()}"
            )
        return frame[READINGS_COLUMNS], digest.hexdigest()


def _numeric(raw: list[object]) -> tuple[np.ndarray, dict[int, str]]:
    """Values as float64; non-numeric ones become NaN with a reason keyed by row position."""
    if all(type(item) is float or item is None for item in raw):
        return np.asarray(raw, dtype=np.float64), {}
    values = np.full(len(raw), np.nan)
    reasons = {}
    for index, item in enumerate(raw):
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, int | float):
            reasons[index] = f"non-numeric value {item!r}"[:120]
        else:
            values[index] = float(item)
    return values, reasons


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex([], tz="UTC"),
            "tag": pd.Series([], dtype=object),
            "value": pd.Series([], dtype=np.float64),
            "unit": pd.Series([], dtype=object),
            "quality": pd.Series([], dtype=object),
            "status_code": pd.Series([], dtype=np.int64),
            "status": pd.Series([], dtype=object),
        }
    )


class _Session:
    """`async with` for a connected client that always disconnects, even after a dropped link."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def __aenter__(self) -> Client:
        return self.client

    async def __aexit__(self, *exc) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5)
        except Exception:  # a dropped link cannot close cleanly; nothing left to free on our side
            return
