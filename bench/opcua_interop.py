"""Our OPC UA read against plain asyncua on bytes neither of us encoded: the node-opcua server.

The node-opcua interop server (tests/interop/opcua_server, node-opcua's own historian) serves
N_TAGS Double tags x one hour at 1 s (3,601 values each: node-opcua includes the value at EndTime)
with MaxNodesPerHistoryReadData = 50. In one run, best of 5 with the order alternating:

- ours: `OpcUaResource.read_raw_history` of the hour, its defaults (batches of the server's limit,
  up to 4 requests in flight, the fast decoder, the canonical frame cut to [start, end));
- raw: plain asyncua, `client.uaclient.history_read` with the same batches all in flight on one
  session, values left as asyncua decoded them (no frame, no windowing).

`opcua_asset_vs_raw_independent` = ours / raw (wall). CPU seconds of this process are printed
alongside since they stay steady when other work shares the machine.

Run: `python bench/opcua_interop.py` (needs Node.js >= 20; installs the npm lock file on first use).
Prints one JSON object per figure per line and writes them to bench/results/opcua_interop.jsonl.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import Samples, emit, quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncua import Client, ua  # noqa: E402

from gl_pipelines.resources.opcua import OpcUaResource, TagRef  # noqa: E402
from tests.interop.node_opcua import NODE_OPCUA_VERSION, bench_tags, node_opcua_server  # noqa: E402

BENCH = "opcua_interop"
N_TAGS = 100
INTERVAL_S = 1
SERVER_LIMIT = 50
REPEATS = 5
START = datetime(2026, 11, 1, 9, tzinfo=UTC)
END = START + timedelta(hours=1)


async def raw_read(endpoint: str, node_ids: list[str]) -> int:
    """Plain asyncua: batches of the server's limit, all in flight, continuation points followed."""
    async with Client(endpoint, timeout=60, watchdog_intervall=60) as client:
        limit = await client.get_node(
            ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
        ).read_value()
        batches = [node_ids[i : i + limit] for i in range(0, len(node_ids), limit)]

        async def batch(ids: list[str]) -> int:
            count, points = 0, dict.fromkeys(ids)
            while points:
                params = ua.HistoryReadParameters()
                params.HistoryReadDetails = ua.ReadRawModifiedDetails(
                    IsReadModified=False, StartTime=START, EndTime=END, NumValuesPerNode=10_000, ReturnBounds=False
                )
                params.TimestampsToReturn = ua.TimestampsToReturn.Source
                params.ReleaseContinuationPoints = False
                params.NodesToRead = [
                    ua.HistoryReadValueId(NodeId=ua.NodeId.from_string(n), ContinuationPoint=p)
                    for n, p in points.items()
                ]
                results = await client.uaclient.history_read(params)
                following = {}
                for node_id, result in zip(points, results, strict=True):
                    result.StatusCode.check()
                    count += len(result.HistoryData.DataValues or [])
                    if result.ContinuationPoint:
                        following[node_id] = result.ContinuationPoint
                points = following
            return count

        return sum(await asyncio.gather(*(batch(b) for b in batches)))


def timed(func) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    quiet()
    tags = bench_tags(N_TAGS, INTERVAL_S, START)
    refs = [TagRef(t.name, t.node_id, t.unit) for t in tags]
    began = time.perf_counter()
    with node_opcua_server(tags, max_nodes_per_history_read=SERVER_LIMIT) as server:
        startup_s = time.perf_counter() - began
        resource = OpcUaResource(endpoint=server.endpoint, source_name="node-opcua")
        ours, raw = Samples(), Samples()
        rows = values = 0
        for repeat in range(REPEATS):
            order = [("ours", ours), ("raw", raw)] if repeat % 2 == 0 else [("raw", raw), ("ours", ours)]
            for name, samples in order:
                if name == "ours":
                    wall, cpu, history = timed(lambda: resource.read_raw_history(refs, START, END))
                    rows = len(history.frame)
                else:
                    wall, cpu, values = timed(lambda: asyncio.run(raw_read(server.endpoint, [t.node_id for t in tags])))
                samples.wall.append(wall)
                samples.cpu.append(cpu)
                samples.server_cpu.append(0.0)
    assert rows == N_TAGS * 3600 and values == N_TAGS * 3601, (rows, values)
    emit(
        BENCH,
        [
            {
                "figure": "opcua_asset_vs_raw_independent",
                "value": round(ours.best / raw.best, 3),
                "unit": "ratio",
                "target": "<= 1.0",
                "server": f"node-opcua {NODE_OPCUA_VERSION} (Node.js {os.popen('node --version').read().strip()})",
                "ours": {"wall_s": [round(x, 4) for x in ours.wall], "cpu_s": round(min(ours.cpu), 4)},
                "raw": {"wall_s": [round(x, 4) for x in raw.wall], "cpu_s": round(min(raw.cpu), 4)},
                "tags": N_TAGS,
                "values_per_read": values,
                "rows_stored": rows,
                "server_limit": SERVER_LIMIT,
                "server_startup_s": round(startup_s, 1),
                "stat": "best wall of 5, order alternating; cpu = least CPU seconds of this process",
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        ],
    )


if __name__ == "__main__":
    main()
