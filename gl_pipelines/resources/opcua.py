"""OPC UA history extraction: batched, limit-aware, retried, read-only.

The resource talks to one OPC UA server. It reads raw history for many tags over [start, end)
and returns the canonical long frame, whole (`read_raw_history`) or in chunks of at most about
`chunk_values` values (`read_raw_history_chunks`), so a plant-size window never sits in memory at
once; it knows nothing about partitions or the warehouse.
It offers no write method on purpose: SCADA access is read-only.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
from asyncua import Client, ua
from asyncua.crypto import uacrypto
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from dagster import ConfigurableResource
from pydantic import ConfigDict, Field
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.resources.chunks import DEFAULT_CHUNK_VALUES, chunk_plan
from gl_pipelines.resources.health import HealthStatus
from gl_pipelines.resources.opcua_codec import EPOCH_TICKS, RawResult, RawValues, decode_history_read_response
from gl_pipelines.resources.window import keep_window

READINGS_COLUMNS = ["ts", "tag", "value", "unit", "quality", "status_code", "status", "source"]
RESOURCE_VERSION = f"gl-pipelines-opcua/1 asyncua/{version('asyncua')}"
ASYNCUA_TESTED = ">=2.1,<3"  # as pinned in pyproject.toml: the private hook below exists there
RAW_SEND_HOOK = "client.uaclient.session._send_request"

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
# The server turned down the user identity, or this client's application certificate.
USER_REJECTED = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadUserSignatureInvalid,
}
CERTIFICATE_REJECTED = {
    ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid,
    ua.StatusCodes.BadCertificateUriInvalid,
    ua.StatusCodes.BadCertificateTimeInvalid,
    ua.StatusCodes.BadCertificateRevoked,
    ua.StatusCodes.BadCertificateUseNotAllowed,
    ua.StatusCodes.BadSecurityChecksFailed,
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

    frame: pd.DataFrame = field(repr=False)  # asyncio.run formats its result; a DataFrame repr costs ms
    payload_sha256: str
    requests: int
    duration_s: float
    dropped_outside_window: dict[str, int] = field(default_factory=dict)
    """Per tag, values the server sent outside [start, end) (e.g. one stamped at EndTime), not stored."""


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


class OpcUaResource(ConfigurableResource):
    """One OPC UA server, read through raw HistoryRead."""

    model_config = ConfigDict(allow_inf_nan=False)  # .inf / .nan in a timeout or rate is a typo, never a setting

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
    step_retry_wait_s: float = Field(
        default=120.0, ge=0, description="After the retries above fail, wait this long before the step tries again."
    )
    chunk_values: int = Field(
        default=DEFAULT_CHUNK_VALUES,
        gt=0,
        description="Values a chunked read holds at once (tags read in batches, a long window in time slices): "
        "what bounds a SCADA step's memory, whatever the window. About 0.5 KB per value across read, frame "
        "and staging; the default keeps a step under about 1 GB.",
    )

    @property
    def safe_endpoint(self) -> str:
        return redact_url(self.endpoint)

    def read_raw_history(
        self, tags: Sequence[TagRef], start: datetime, end: datetime, *, attempts: int | None = None
    ) -> RawHistory:
        """Every raw value of `tags` in [start, end), bad ones included, as the canonical frame.
        `attempts` overrides retry_attempts (a run a person launched wants the answer now)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        return asyncio.run(self.aread_raw_history(tags, start, end, attempts=attempts))

    async def aread_raw_history(
        self, tags: Sequence[TagRef], start: datetime, end: datetime, *, attempts: int | None = None
    ) -> RawHistory:
        began = time.perf_counter()
        samples, requests = await self._read_retried(tags, start, end, attempts)
        digest = PayloadDigest()
        frame, dropped = self._to_frame(tags, samples, (start, end), (start, end), digest)
        return RawHistory(frame, digest.hexdigest(tags), requests, time.perf_counter() - began, dropped)

    def read_raw_history_chunks(
        self,
        tags: Sequence[TagRef],
        start: datetime,
        end: datetime,
        *,
        sample_interval_s: float,
        attempts: int | None = None,
    ) -> HistoryChunks:
        """The rows of `read_raw_history`, as frames of about `chunk_values` values each (planned from the
        tags' `sample_interval_s`); iterate it once, then read its provenance."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        plan = chunk_plan(tags, start, end, sample_interval_s, self.chunk_values)
        return HistoryChunks(self, tags, (start, end), plan, attempts)

    async def _read_retried(
        self, tags: Sequence[TagRef], start: datetime, end: datetime, attempts: int | None
    ) -> tuple[dict[str, list[RawValues]], int]:
        requests = 0
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(attempts or self.retry_attempts),
            wait=wait_exponential_jitter(multiplier=self.retry_initial_wait_s, max=self.retry_max_wait_s),
            reraise=True,
        ):
            with attempt:
                samples, made = await self._read_once(tags, start, end)
                requests += made
        return samples, requests

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
            await self._secure(client)
        try:
            if self.server_certificate_path:
                await asyncio.wait_for(self._check_server_certificate(), self.connect_timeout_s)
            await asyncio.wait_for(client.connect(), self.connect_timeout_s)
        except TimeoutError as exc:  # a hung server or a firewall dropping packets: no text of its own
            raise OpcUaTransientError(
                f"{self.safe_endpoint}: cannot connect: no answer, timed out after {self.connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise OpcUaTransientError(f"{self.safe_endpoint}: cannot connect: {_connect_reason(exc)}") from exc
        except ua.UaStatusCodeError as exc:
            raise self._refused(exc) from exc
        except ua.UaError as exc:  # e.g. asyncua's "No matching endpoints" for a policy the server lacks
            raise OpcUaError(
                f"{self.safe_endpoint}: cannot connect with security_policy {self.security_policy or 'None'}, "
                f"security_mode {self.security_mode if self.security_policy else 'None'}: {exc}"[:500]
            ) from exc
        return _Session(client)

    async def _secure(self, client: Client) -> None:
        """Load the client certificate and key, naming the setting and file that is wrong."""
        where = f"{self.safe_endpoint}: security_policy {self.security_policy}"
        for name in ("certificate_path", "private_key_path"):
            if not getattr(self, name):
                raise OpcUaError(f"{where} needs {name}")
        for name in ("certificate_path", "private_key_path", "server_certificate_path"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise OpcUaError(f"{where}: {name} {path} does not exist or is not a file")
        parts = [self.security_policy, self.security_mode, self.certificate_path, self.private_key_path]
        if self.server_certificate_path:
            parts.append(self.server_certificate_path)
        try:
            # Servers that check it (node-opcua does) refuse a session whose ApplicationUri is not the
            # certificate's URI; asyncua would send its own default.
            uris = _certificate_uris(await uacrypto.load_certificate(self.certificate_path))
            if uris:
                client.application_uri = uris[0]
            await client.set_security_string(",".join(p or "" for p in parts))
        except Exception as exc:  # unreadable PEM/DER, unknown policy or mode: asyncua raises several kinds
            raise OpcUaError(
                f"{where}: cannot use certificate_path {self.certificate_path} with private_key_path "
                f"{self.private_key_path} in mode {self.security_mode}: {type(exc).__name__}: {exc}"[:500]
            ) from exc

    async def _check_server_certificate(self) -> None:
        """Compare the server's certificate (GetEndpoints needs no security) with the pinned one,
        so a mismatch is named instead of surfacing as a failed handshake."""
        pinned = (await uacrypto.load_certificate(self.server_certificate_path)).public_bytes(Encoding.DER)
        endpoints = await Client(self.endpoint, timeout=self.connect_timeout_s).connect_and_get_server_endpoints()
        served = {bytes(e.ServerCertificate) for e in endpoints if e.ServerCertificate}
        if not any(cert.startswith(pinned) for cert in served):  # a served chain starts with the server's own
            found = ", ".join(sorted(_thumbprint(cert) for cert in served)) or "none"
            raise OpcUaError(
                f"{self.safe_endpoint}: the server's certificate (SHA-1 {found}) does not match "
                f"server_certificate_path {self.server_certificate_path} (SHA-1 {_thumbprint(pinned)}); "
                "the server was replaced or the pinned file is wrong"
            )

    def _refused(self, exc: ua.UaStatusCodeError) -> OpcUaError:
        """A status the server refused the connection or session with, named with what to fix."""
        name = status_name(exc.code)
        if exc.code in TRANSIENT_STATUS:
            return OpcUaTransientError(f"{self.safe_endpoint}: cannot connect: {name}")
        if exc.code in USER_REJECTED:
            who = f"user {self.username!r}" if self.username else "an anonymous session"
            return OpcUaError(
                f"{self.safe_endpoint}: the server rejected {who} ({name}); check the user name and password"
            )
        if exc.code in CERTIFICATE_REJECTED:
            return OpcUaError(
                f"{self.safe_endpoint}: the server refused this client's certificate {self.certificate_path} "
                f"({name}); add it to the server's trusted certificates"
            )
        return OpcUaError(f"{self.safe_endpoint}: cannot connect: {name}")

    async def _read_once(
        self, tags: Sequence[TagRef], start: datetime, end: datetime
    ) -> tuple[dict[str, list[RawValues]], int]:
        async with await self._connected() as client:
            self._raw_send(client)
            server_limit = await client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
            ).read_value()
            per_request = min(self.max_nodes_per_request, server_limit or self.max_nodes_per_request)
            gate = asyncio.Semaphore(self.max_requests_in_flight)
            batches = [tags[i : i + per_request] for i in range(0, len(tags), per_request)]
            results = await asyncio.gather(*(self._read_batch(client, b, start, end, gate) for b in batches))
        samples: dict[str, list[RawValues]] = {}
        for batch_samples, _ in results:
            samples.update(batch_samples)
        return samples, sum(made for _, made in results)

    async def _read_batch(
        self, client: Client, batch: Sequence[TagRef], start: datetime, end: datetime, gate: asyncio.Semaphore
    ) -> tuple[dict[str, list[RawValues]], int]:
        """Read one batch, following continuation points until every node is complete.

        A server may hand back the same continuation point for every page (node-opcua does: the
        token names the read, not the position), so only a repeated point with a page that does not
        move past what we hold is a loop."""
        samples: dict[str, list[RawValues]] = {tag.name: [] for tag in batch}
        pending: dict[TagRef, bytes | None] = dict.fromkeys(batch)
        newest: dict[TagRef, int] = dict.fromkeys(batch, -1)  # latest tick held per node
        requests = 0
        try:
            while pending:
                async with gate:
                    results = await self._history_read(client, pending, start, end)
                requests += 1
                following: dict[TagRef, bytes] = {}
                repeated: list[TagRef] = []
                for (tag, sent_point), result in zip(pending.items(), results, strict=True):
                    self._raise_for_node(tag, result.status)
                    held = newest[tag]
                    if result.data is not None and len(result.data):
                        samples[tag.name].append(result.data)
                        newest[tag] = max(held, int(result.data.ticks.max()))
                    if result.continuation_point:
                        following[tag] = result.continuation_point
                        if result.continuation_point == sent_point and newest[tag] <= held:
                            repeated.append(tag)
                pending = following
                if repeated:
                    names = ", ".join(f"{t.name} ({t.node_id})" for t in repeated[:5])
                    raise OpcUaError(
                        f"{self.safe_endpoint}: tag {names}: server repeated the same continuation point "
                        "without new values; stopped instead of looping"
                    )
        except Exception:
            await self._release(client, {t: p for t, p in pending.items() if p})
            raise
        return samples, requests

    async def _history_read(
        self, client: Client, nodes: dict[TagRef, bytes | None], start: datetime, end: datetime
    ) -> list[RawResult]:
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
        request = ua.HistoryReadRequest()
        request.Parameters = params
        try:
            # asyncua's own history_read would decode every DataValue into objects; we take the
            # response bytes (after its ServiceFault check) and decode them as columns.
            data = await asyncio.wait_for(self._raw_send(client)(request), self.request_timeout_s)
            return decode_history_read_response(data)
        except ua.UaStatusCodeError as exc:
            if exc.code in TRANSIENT_STATUS:
                raise
            raise OpcUaError(f"{self.safe_endpoint}: HistoryRead refused: {status_name(exc.code)}") from exc
        except (ConnectionError, TimeoutError) as exc:
            raise OpcUaTransientError(f"{self.safe_endpoint}: HistoryRead failed: {exc!r}") from exc

    def _raw_send(self, client: Client):
        """asyncua's private send that hands back the response bytes after its ServiceFault check.
        asyncua has no public way to skip decoding; a version without the hook is named, not an AttributeError."""
        send = getattr(getattr(client.uaclient, "session", None), "_send_request", None)
        if send is None:
            raise OpcUaError(
                f"{self.safe_endpoint}: asyncua {version('asyncua')} has no {RAW_SEND_HOOK}, which the fast "
                f"HistoryRead decoder needs; install asyncua{ASYNCUA_TESTED} (the range this project is tested on)"
            )
        return send

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

    def _raise_for_node(self, tag: TagRef, code: int) -> None:
        if code >> 30 == 0:  # Good severity
            return
        if code in TRANSIENT_STATUS:
            raise ua.UaStatusCodeError(code)
        raise OpcUaError(
            f"{self.safe_endpoint}: tag {tag.name} ({tag.node_id}): HistoryRead failed with {status_name(code)}"
        )

    def _to_frame(
        self,
        tags: Sequence[TagRef],
        samples: dict[str, list[RawValues]],
        window: tuple[datetime, datetime],
        read: tuple[datetime, datetime],
        digest: PayloadDigest,
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """All tags' pages as one canonical frame of the rows in the `read` slice of the partition `window`,
        built column-wise (no per-tag DataFrames), and the per-tag count of values dropped outside `window`;
        adds what was read to `digest`."""
        pages = [(tag, page) for tag in tags for page in samples[tag.name] if len(page)]
        if not pages:
            empty = _empty_frame()
            empty["source"] = pd.Series([], dtype=object)
            return empty[READINGS_COLUMNS], {}
        ticks = np.concatenate([page.ticks for _, page in pages])
        codes = np.concatenate([page.codes for _, page in pages])
        counts = [len(page) for _, page in pages]
        tag_of_row = np.repeat(np.arange(len(pages)), counts)
        if (ticks == 0).any():
            tag = pages[tag_of_row[np.flatnonzero(ticks == 0)[0]]][0]
            raise OpcUaError(f"{self.safe_endpoint}: tag {tag.name}: a value came without any timestamp")
        for tag, page in pages:
            digest.update(tag, page)
        if all(isinstance(page.values, np.ndarray) for _, page in pages):
            values, reasons = np.concatenate([page.values for _, page in pages]), {}
        else:
            values, reasons = _numeric([item for _, page in pages for item in list(page.values)])
        quality = quality_of(codes)
        names = {code: status_name(int(code)) for code in np.unique(codes)}
        status = (
            np.array([names[code] for code in codes], dtype=object)
            if len(names) > 1
            else np.full(len(codes), next(iter(names.values())), dtype=object)
        )
        for index, reason in reasons.items():
            quality[index], status[index] = "bad", reason
        frame = pd.DataFrame(
            {
                "ts": pd.to_datetime((ticks - EPOCH_TICKS) * 100, unit="ns", utc=True),
                "tag": np.array([tag.name for tag, _ in pages], dtype=object)[tag_of_row],
                "value": values,
                "unit": np.array([tag.unit for tag, _ in pages], dtype=object)[tag_of_row],
                "quality": quality,
                "status_code": codes.astype(np.int64),
                "status": status,
                "source": self.source_name,
            }
        )
        start, end = window
        windowed = keep_window(frame[READINGS_COLUMNS], start, end, source=self.safe_endpoint, error=OpcUaError)
        frame = windowed.frame
        if read != window:
            # A value of the window outside this slice (e.g. stamped at the slice's end) is the
            # neighbouring slice's: it reads it itself, so it is neither kept here nor counted as dropped.
            ts = frame["ts"]
            frame = frame[((ts >= pd.Timestamp(read[0])) & (ts < pd.Timestamp(read[1]))).to_numpy()]
        return frame, windowed.dropped


class PayloadDigest:
    """SHA-256 of what the server sent: per tag (in the order asked) its NodeId, then the digests of its
    timestamps, status codes and values in the order received. The same for any tag batching or paging of a
    read, so a re-run with another `chunk_values` proves it read the same payload (time slices differ only by
    the bound values a server adds at each slice's end, which are read but not stored)."""

    def __init__(self) -> None:
        self._columns: dict[str, tuple] = {}

    def update(self, tag: TagRef, page: RawValues) -> None:
        ticks, codes, values = self._columns.setdefault(
            tag.node_id, (hashlib.sha256(), hashlib.sha256(), hashlib.sha256())
        )
        ticks.update(page.ticks.tobytes())
        codes.update(page.codes.tobytes())
        if isinstance(page.values, np.ndarray):
            values.update(page.values.tobytes())
        else:
            values.update("".join(f"{item!r}\n" for item in page.values).encode())

    def hexdigest(self, tags: Sequence[TagRef]) -> str:
        digest = hashlib.sha256()
        for tag in tags:
            digest.update(tag.node_id.encode())
            for column in self._columns.get(tag.node_id, ()):
                digest.update(column.digest())
        return digest.hexdigest()


class HistoryChunks:
    """A chunked raw-history read: iterating it yields one canonical frame per planned chunk (each read with
    the resource's retries; the next is read only when asked for), after which it holds the provenance of the
    whole read."""

    def __init__(
        self,
        resource: OpcUaResource,
        tags: Sequence[TagRef],
        window: tuple[datetime, datetime],
        plan: list[tuple[Sequence[TagRef], datetime, datetime]],
        attempts: int | None,
    ) -> None:
        self.resource, self.tags, self.window, self.plan, self.attempts = resource, tags, window, plan, attempts
        self.requests = 0
        self.duration_s = 0.0
        self.dropped_outside_window: dict[str, int] = {}
        self._digest = PayloadDigest()

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for tags, start, end in self.plan:
            began = time.perf_counter()
            samples, requests = asyncio.run(self.resource._read_retried(tags, start, end, self.attempts))
            frame, dropped = self.resource._to_frame(tags, samples, self.window, (start, end), self._digest)
            del samples
            self.requests += requests
            for tag, count in dropped.items():
                self.dropped_outside_window[tag] = self.dropped_outside_window.get(tag, 0) + count
            self.duration_s += time.perf_counter() - began
            yield frame

    @property
    def payload_sha256(self) -> str:
        return self._digest.hexdigest(self.tags)


def _certificate_uris(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return names.get_values_for_type(x509.UniformResourceIdentifier)


def _thumbprint(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest()


def _connect_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening on that host and port)"
    if isinstance(exc, socket.gaierror):
        return f"host name not resolved ({exc.strerror or exc})"
    return str(exc) or type(exc).__name__


def _numeric(raw: list[object]) -> tuple[np.ndarray, dict[int, str]]:
    """Values as float64; non-numeric ones become NaN with a reason keyed by row position."""
    if all(type(item) is float or type(item) is int or item is None for item in raw):
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
