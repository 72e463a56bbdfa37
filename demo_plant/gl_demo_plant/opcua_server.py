"""Demo plant, OPC UA part: a real asyncua server on loopback that serves raw history.

History is computed on request from `plant_model`, so any past window is available. The
server enforces the limits real servers have (MaxNodesPerHistoryReadData, values per node
per response with continuation points) and can inject the faults tests need.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from asyncua import Server, ua
from asyncua.common.utils import Buffer

from gl_demo_plant import plant_model
from gl_demo_plant.plant_model import DEFAULT_SEED, SAMPLE_INTERVAL_S, TagModel
from gl_demo_plant.threaded import ThreadedServer
from gl_pipelines.resources.opcua_codec import HISTORY_DATA_BINARY, encode_history_data

log = logging.getLogger(__name__)

STATUS_BAD_SENSOR_FAILURE = ua.StatusCodes.BadSensorFailure
_LIMIT_NODE = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData


@dataclass
class OpcUaFaults:
    """Faults the test suite can switch on while the server runs (plain attributes, thread-safe enough)."""

    bad_status_every: dict[str, int] = field(default_factory=dict)
    """Tag name -> every n-th sample (by timestamp) is served with BadSensorFailure and no value."""
    out_of_range: dict[str, float] = field(default_factory=dict)
    """Tag name -> value served instead of the model value (e.g. far above the tag's range)."""
    non_numeric_every: dict[str, int] = field(default_factory=dict)
    """Tag name -> every n-th sample is a String 'ERR' with Good status, as a misconfigured gateway does."""
    outside_window: set[str] = field(default_factory=set)
    """Tags that get one extra sample stamped a day after the requested window (a server ignoring it)."""
    end_bound: set[str] = field(default_factory=set)
    """Tags whose last page also carries the sample stamped exactly at EndTime, as node-opcua serves it."""
    drop_after_reads: int | None = None
    """Close every client connection when this many more HistoryRead calls have arrived (one shot)."""
    repeat_continuation_point: bool = False
    """Hand back the continuation point the client sent instead of advancing (a server bug seen in the field)."""


@dataclass
class OpcUaStats:
    """What the server saw, so tests can assert batching and continuation-point handling."""

    history_reads: int = 0
    nodes_per_read: list[int] = field(default_factory=list)
    released_continuation_points: int = 0
    rejected_too_many_operations: int = 0


class DemoOpcUaServer:
    """The boiler (plus `n_synthetic` tags) behind a real OPC UA endpoint."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4840,
        *,
        seed: int = DEFAULT_SEED,
        n_synthetic: int = 1000,
        max_nodes_per_history_read: int = 100,
        max_values_per_node: int = 5000,
        sample_interval_s: int = SAMPLE_INTERVAL_S,
    ) -> None:
        self.host, self.port, self.seed = host, port, seed
        self.sample_interval_s = sample_interval_s
        self.max_nodes_per_history_read = max_nodes_per_history_read
        self.max_values_per_node = max_values_per_node
        self.tags: dict[str, TagModel] = plant_model.catalogue(n_synthetic)
        self._by_nodeid = {ua.NodeId.from_string(node_id): tag for node_id, tag in self.tags.items()}
        self.faults = OpcUaFaults()
        self.stats = OpcUaStats()
        self._server: Server | None = None
        self._live_task: asyncio.Task | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/gl-demo"

    async def start(self) -> None:
        for name in ("asyncua", "asyncua.server"):
            logging.getLogger(name).setLevel(logging.WARNING)
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("gl-pipelines demo plant")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace("urn:gl-pipelines:demo-plant")
        assert ns == 2, "demo NodeIds assume namespace index 2"
        await self._build_address_space(server)
        self._server = server
        await self._publish_history_read_limit()
        server.iserver.history_manager.read_history = self._read_history
        await server.start()
        self.port = server.bserver.port  # the real one when asked for port 0
        self._loop = asyncio.get_running_loop()
        self._live_task = asyncio.create_task(self._update_live_values())
        log.info("demo OPC UA server on %s serving %d tags", self.endpoint, len(self.tags))

    async def stop(self) -> None:
        if self._live_task:
            self._live_task.cancel()
        if self._server:
            await self._server.stop()
            self._server = None

    def set_history_read_limit(self, max_nodes: int) -> None:
        """Change MaxNodesPerHistoryReadData, both enforced and advertised (callable from any thread)."""
        self.max_nodes_per_history_read = max_nodes
        asyncio.run_coroutine_threadsafe(self._publish_history_read_limit(), self._loop).result(timeout=10)

    async def _publish_history_read_limit(self) -> None:
        assert self._server is not None
        limit = ua.DataValue(ua.Variant(self.max_nodes_per_history_read, ua.VariantType.UInt32))
        await self._server.write_attribute_value(ua.NodeId(_LIMIT_NODE), limit)

    def drop_connections(self) -> None:
        """Close every client socket, as a server restart or a network cut does."""
        assert self._server is not None
        for transport in list(self._server.iserver.asyncio_transports):
            transport.close()

    async def _build_address_space(self, server: Server) -> None:
        objects = server.nodes.objects
        folders: dict[str, object] = {}
        now = np.array([int(datetime.now(UTC).timestamp())])
        self._variables = {}
        for node_id, tag in self.tags.items():
            folder_name = tag.name.split(".")[0]
            if folder_name not in folders:
                folders[folder_name] = await objects.add_folder(f"ns=2;s={folder_name}", folder_name)
            variable = await folders[folder_name].add_variable(
                node_id, tag.name, float(tag.values(now, self.seed)[0]), ua.VariantType.Double
            )
            await variable.write_attribute(
                ua.AttributeIds.AccessLevel,
                ua.DataValue(
                    ua.Variant(ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask, ua.VariantType.Byte)
                ),
            )
            await variable.write_attribute(
                ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
            )
            if folder_name != "Synthetic":
                self._variables[tag.name] = (variable, tag)

    async def _update_live_values(self) -> None:
        """Keep the boiler's current values moving, for clients that read rather than HistoryRead."""
        while True:
            await asyncio.sleep(self.sample_interval_s)
            now = np.array([int(datetime.now(UTC).timestamp())])
            for variable, tag in self._variables.values():
                await variable.write_value(float(tag.values(now, self.seed)[0]))

    async def _read_history(self, params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        self.stats.history_reads += 1
        self.stats.nodes_per_read.append(len(params.NodesToRead))
        if self.faults.drop_after_reads is not None:
            self.faults.drop_after_reads -= 1
            if self.faults.drop_after_reads <= 0:
                self.faults.drop_after_reads = None
                self.drop_connections()
        if len(params.NodesToRead) > self.max_nodes_per_history_read:
            self.stats.rejected_too_many_operations += 1
            raise ua.uaerrors.BadTooManyOperations()
        if params.ReleaseContinuationPoints:
            self.stats.released_continuation_points += sum(1 for rv in params.NodesToRead if rv.ContinuationPoint)
            return [ua.HistoryReadResult() for _ in params.NodesToRead]
        details = params.HistoryReadDetails
        if not isinstance(details, ua.ReadRawModifiedDetails) or details.IsReadModified:
            return [_result(ua.StatusCodes.BadHistoryOperationUnsupported) for _ in params.NodesToRead]
        return [self._read_node(rv, details) for rv in params.NodesToRead]

    def _read_node(self, rv: ua.HistoryReadValueId, details: ua.ReadRawModifiedDetails) -> ua.HistoryReadResult:
        tag = self._by_nodeid.get(rv.NodeId)
        if tag is None:
            return _result(ua.StatusCodes.BadNodeIdUnknown)
        start = details.StartTime
        if rv.ContinuationPoint:
            start = ua.ua_binary.Primitives.DateTime.unpack(Buffer(rv.ContinuationPoint))
        start, end = _aware(start), _aware(details.EndTime)
        limit = self.max_values_per_node
        if details.NumValuesPerNode:
            limit = min(limit, details.NumValuesPerNode)
        times = plant_model.sample_times(start, end, self.sample_interval_s)
        continuation = None
        if len(times) > limit:
            continuation = plant_model.to_datetime(times[limit])
            times = times[:limit]
        if self.faults.repeat_continuation_point and rv.ContinuationPoint:
            continuation = start
        extra = []
        if continuation is None and tag.name in self.faults.end_bound:
            extra.append(int(end.timestamp()))
        if continuation is None and tag.name in self.faults.outside_window:
            extra.append(int(end.timestamp()) + 86_400)
        body = self._encode(tag, times, extra=np.array(extra, dtype=np.int64))
        result = _result(ua.StatusCodes.Good)
        result.HistoryData = ua.ExtensionObject(TypeId=HISTORY_DATA_BINARY, Body=body)
        if continuation is not None:
            result.ContinuationPoint = ua.ua_binary.Primitives.DateTime.pack(continuation)
        return result

    def _encode(self, tag: TagModel, times: np.ndarray, *, extra: np.ndarray) -> bytes:
        """The HistoryData body for `times` plus the `extra` (out-of-window) times, with any faults
        switched on for this tag applied."""
        times = np.concatenate([times, extra]).astype(times.dtype)
        values = tag.values(times, self.seed)
        codes = tag.status_codes(times, self.seed)
        faults = self.faults
        if tag.name in faults.out_of_range:
            values = np.full_like(values, faults.out_of_range[tag.name])
        slots = times // self.sample_interval_s
        no_value = np.zeros(len(times), dtype=bool)
        if bad_every := faults.bad_status_every.get(tag.name):
            no_value = slots % bad_every == 0
            codes = np.where(no_value, STATUS_BAD_SENSOR_FAILURE, codes).astype(np.uint32)
        text = {}
        if text_every := faults.non_numeric_every.get(tag.name):
            text = {int(i): "ERR" for i in np.flatnonzero((slots % text_every == 0) & ~no_value)}
        return encode_history_data(times, values, codes, no_value, text)


def _result(code: int) -> ua.HistoryReadResult:
    result = ua.HistoryReadResult()
    result.StatusCode = ua.StatusCode(code)
    return result


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ThreadedDemoOpcUaServer(ThreadedServer[DemoOpcUaServer]):
    """A DemoOpcUaServer on its own event loop in a daemon thread (for tests and the demo)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(DemoOpcUaServer(**kwargs), name="demo-opcua")
