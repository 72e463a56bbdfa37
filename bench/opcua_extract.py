"""Extract 1,000 tags x 1 hour at 10-second resolution (360k values) from the demo plant into the warehouse.

The demo plant runs in its own process. In one run this script measures, each best of 5 with the
order alternating between repetitions (each repetition reads its own past hour, so every asset run
writes a new partition; the baselines read the same hour as the asset in that repetition):

- the asset end to end: `dagster.materialize` of `scada_readings` alone (no checks) into a temporary
  DuckDB file with a test instance (SQLite), and the same with its two blocking checks;
- the raw baseline: plain asyncua, batched HistoryRead of the server's MaxNodesPerHistoryReadData
  nodes per request, every batch in flight at once on one session, following continuation points,
  values kept as asyncua decoded them (no normalizing, no writing). It runs in this process (which
  has Dagster, pandas and GX loaded, like the asset) and again in a fresh process that imports
  only asyncua (`asset_vs_raw_read_lean`): the protocol library on its own;
- the naive baseline: `Node.read_raw_history(start, end)` tag by tag, sequentially;
- peak memory of one asset run in a fresh process: its VmHWM (what ru_maxrss reports, minus the
  parent's peak that Linux carries over fork/exec into ru_maxrss).

Wall clock is what the ratios use; CPU seconds of the reader and of the demo plant are printed
alongside because they stay steady when other work shares the machine and wall times do not.

Run: `python bench/opcua_extract.py`. Prints one JSON object per figure per line and writes them to
bench/results/opcua_extract.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import QUIET_RUN_CONFIG, Samples, demo_plant, emit, plant_day_hours, quiet, scada_definitions, site_config

BENCH = "opcua_extract"
N_TAGS = 1000
REPEATS = 5
HOUR = timedelta(hours=1)
EXPECTED_VALUES = N_TAGS * 360


def synthetic_node_ids(n: int) -> list[str]:
    return [f"ns=2;s=Synthetic.T{i:04d}" for i in range(1, n + 1)]


async def raw_history_read(endpoint: str, node_ids: list[str], start: datetime, end: datetime) -> int:
    """Plain asyncua, concurrent: all batches of MaxNodesPerHistoryReadData nodes in flight on one session.

    (Concurrent beat sequential here: the server encodes one batch while the client decodes another.)
    """
    from asyncua import Client, ua

    async with Client(endpoint, timeout=60, watchdog_intervall=60) as client:
        limit_node = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
        limit = await client.get_node(limit_node).read_value() or len(node_ids)
        details = ua.ReadRawModifiedDetails(
            IsReadModified=False, StartTime=start, EndTime=end, NumValuesPerNode=0, ReturnBounds=False
        )

        async def read_batch(batch: list[ua.NodeId]) -> dict[ua.NodeId, list[ua.DataValue]]:
            history: dict[ua.NodeId, list[ua.DataValue]] = {node: [] for node in batch}
            pending: dict[ua.NodeId, bytes | None] = dict.fromkeys(batch)
            while pending:
                params = ua.HistoryReadParameters(
                    HistoryReadDetails=details,
                    TimestampsToReturn=ua.TimestampsToReturn.Source,
                    ReleaseContinuationPoints=False,
                    NodesToRead=[ua.HistoryReadValueId(NodeId=n, ContinuationPoint=p) for n, p in pending.items()],
                )
                results = await client.uaclient.history_read(params)
                for node, result in zip(pending, results, strict=True):
                    result.StatusCode.check()
                    history[node].extend(result.HistoryData.DataValues)
                pending = {n: r.ContinuationPoint for n, r in zip(pending, results, strict=True) if r.ContinuationPoint}
            return history

        nodes = [ua.NodeId.from_string(node_id) for node_id in node_ids]
        batches = [nodes[i : i + limit] for i in range(0, len(nodes), limit)]
        parts = await asyncio.gather(*(read_batch(batch) for batch in batches))
    return sum(len(values) for part in parts for values in part.values())


async def naive_tag_by_tag(endpoint: str, node_ids: list[str], start: datetime, end: datetime) -> int:
    """What a first script does: one Node.read_raw_history per tag, one after the other."""
    from asyncua import Client

    async with Client(endpoint, timeout=60) as client:
        history = {node_id: await client.get_node(node_id).read_raw_history(start, end) for node_id in node_ids}
    return sum(len(values) for values in history.values())


def timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """(wall seconds, this process's CPU seconds, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, since ru_maxrss keeps the parent's peak across fork/exec on Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def materialize_hour(assets, resources, instance, key: str, *, with_checks_of=None) -> int:
    """One partition of scada_readings (plus its checks if given); returns the stored row count."""
    from dagster import materialize

    result = materialize(
        [*assets, *(with_checks_of or [])],
        selection=["scada_readings"],
        partition_key=key,
        resources=resources,
        instance=instance,
        run_config=QUIET_RUN_CONFIG,
    )
    if with_checks_of:
        evaluations = result.get_asset_check_evaluations()
        expected = sum(
            key.asset_key.path == ["scada_readings"] for checks in with_checks_of for key in checks.check_keys
        )
        if len(evaluations) != expected or not all(e.passed for e in evaluations):
            raise RuntimeError(f"checks did not all pass: {[(e.check_name, e.passed) for e in evaluations]}")
    (materialization,) = result.asset_materializations_for_node("scada_readings")
    return int(materialization.metadata["dagster/row_count"].value)


def child_raw(endpoint: str, start: str) -> None:
    """Fresh process with only asyncua loaded: one short warm-up read, then the timed raw read."""
    begin = datetime.fromisoformat(start)
    node_ids = synthetic_node_ids(N_TAGS)
    asyncio.run(raw_history_read(endpoint, node_ids[:1], begin, begin + timedelta(minutes=1)))
    wall, cpu, count = timed(asyncio.run, raw_history_read(endpoint, node_ids, begin, begin + HOUR))
    print(json.dumps({"wall": wall, "cpu": cpu, "values": count}))


def child_memory(endpoint: str, key: str) -> None:
    """Fresh process: load definitions, then one 1,000-tag asset run; report peak RSS before and after it."""
    quiet()
    from dagster import instance_for_test

    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        readings, _, resources = scada_definitions(site_config(endpoint, N_TAGS, boiler=False), Path(tmp) / "w.duckdb")
        before = peak_rss_mb()
        rows = materialize_hour([readings], resources, instance, key)
        peak = peak_rss_mb()
    print(json.dumps({"peak_mb": peak, "before_run_mb": before, "rows": rows}))


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, timeout=180
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    quiet()
    import psutil
    from dagster import instance_for_test

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    node_ids = synthetic_node_ids(N_TAGS)
    samples = {name: Samples() for name in ("asset", "asset_with_checks", "raw", "raw_lean", "naive")}
    with (
        demo_plant(N_TAGS) as (endpoint, server_pid),
        tempfile.TemporaryDirectory() as tmp,
        instance_for_test() as instance,
    ):
        server = psutil.Process(server_pid)
        readings, checks, resources = scada_definitions(
            site_config(endpoint, N_TAGS, boiler=False), Path(tmp) / "warehouse.duckdb"
        )

        hours = plant_day_hours(readings)

        def measure(name: str, rep: int) -> None:
            key, start, end = hours[rep]
            server_cpu = sum(server.cpu_times()[:2])
            if name == "raw":
                wall, cpu, count = timed(asyncio.run, raw_history_read(endpoint, node_ids, start, end))
            elif name == "raw_lean":
                got = run_child("--raw-child", endpoint, start.isoformat())
                wall, cpu, count = got["wall"], got["cpu"], got["values"]
            elif name == "naive":
                wall, cpu, count = timed(asyncio.run, naive_tag_by_tag(endpoint, node_ids, start, end))
            elif name == "asset":
                wall, cpu, count = timed(materialize_hour, [readings], resources, instance, key)
            else:  # its own hour, so the with-checks run never replaces an asset-only partition
                checked = hours[12 + rep][0]
                wall, cpu, count = timed(
                    materialize_hour, [readings], resources, instance, checked, with_checks_of=checks
                )
            if count != EXPECTED_VALUES:
                raise RuntimeError(f"{name} got {count} values, expected {EXPECTED_VALUES}")
            got = samples[name]
            got.wall.append(wall)
            got.cpu.append(cpu)
            got.server_cpu.append(sum(server.cpu_times()[:2]) - server_cpu)

        # Warm-up, untimed: first-use imports and connections would otherwise land on whoever goes first.
        asyncio.run(raw_history_read(endpoint, node_ids, *hours[23][1:]))
        materialize_hour([readings], resources, instance, hours[23][0])

        order = ["raw", "naive", "asset", "asset_with_checks", "raw_lean"]
        for rep in range(REPEATS):
            for name in order if rep % 2 == 0 else order[::-1]:
                measure(name, rep)

        memory = run_child("--memory-child", endpoint, hours[20][0])
        if memory["rows"] != EXPECTED_VALUES:
            raise RuntimeError(f"memory run stored {memory['rows']} rows")

    asset = samples["asset"]
    context = {
        "tags": N_TAGS,
        "values": EXPECTED_VALUES,
        "stat": f"best wall of {REPEATS}; cpu = least CPU seconds of the reader / the demo plant process",
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }

    def ratio(figure: str, baseline: str, target: str, **extra) -> dict:
        return {
            "figure": figure,
            "value": round(asset.best / samples[baseline].best, 3),
            "unit": "ratio",
            "target": target,
            **extra,
            "asset": asset.summary(),
            baseline: samples[baseline].summary(),
            **context,
        }

    emit(
        BENCH,
        [
            {
                "figure": "asset_values_per_second",
                "value": round(EXPECTED_VALUES / asset.best, 1),
                "unit": "values/s",
                "target": None,
                "asset": asset.summary(),
                **context,
            },
            ratio("asset_vs_raw_read", "raw", "<= 1.25", raw_mode="concurrent; in this (Dagster-loaded) process"),
            ratio("asset_vs_raw_read_lean", "raw_lean", "<= 1.25", raw_mode="concurrent; fresh process, asyncua only"),
            ratio("asset_vs_naive", "naive", "<= 0.5"),
            {
                "figure": "asset_with_checks_seconds",
                "value": round(samples["asset_with_checks"].best, 3),
                "unit": "s",
                "target": None,
                "asset_with_checks": samples["asset_with_checks"].summary(),
                **context,
            },
            {
                "figure": "peak_memory_mb",
                "value": round(memory["peak_mb"], 1),
                "unit": "MB",
                "target": None,
                "method": "VmHWM (peak RSS) of a fresh process running one asset materialization",
                "before_run_mb": round(memory["before_run_mb"], 1),
                "tags": N_TAGS,
                "values": EXPECTED_VALUES,
            },
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-child", nargs=2, metavar=("ENDPOINT", "START"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=2, metavar=("ENDPOINT", "PARTITION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        child_raw(*args.raw_child)
    elif args.memory_child:
        child_memory(*args.memory_child)
    else:
        main()
