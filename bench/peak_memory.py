"""Peak memory of `scada_readings` at plant scale: one hour of 5,000 tags at 1 s (18 M values).

The demo OPC UA server runs in its own process, serving 5,000 synthetic tags at a 1-second sample interval,
computed on request from its deterministic model (no stored history). Each measured run is a fresh process
that loads the definitions, then materializes one hour of `scada_readings` with its two blocking checks into
a temporary DuckDB warehouse: extracted, staged, checked and published. Its peak RSS (VmHWM) before and after
the run is recorded, and the stored row count is checked against tags x 3,600.

The plant-scale run is repeated with `chunk_values` 250,000, then also with $GL_DUCKDB_MEMORY_LIMIT 256MB, to
show which setting sets the peak. In the same script run, as the baseline, 1,000 tags x 1 h at 1 s (3.6 M
values) are run twice: with chunking off (`chunk_values` larger than the window: the whole window read into one
frame, as the asset read it before this change; staging, checks and publish are today's) and with the default
chunk size, so the bytes per value above the process baseline can be compared.

Run: `python bench/peak_memory.py [--tags 5000]`. Prints one JSON object per figure per line and writes them
to bench/results/peak_memory.jsonl. Takes several minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import QUIET_RUN_CONFIG, emit, free_port, plant_day_hours, quiet, scada_definitions, started_process

from gl_pipelines.resources.opcua import DEFAULT_CHUNK_VALUES
from gl_pipelines.resources.warehouse import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV

BENCH = "peak_memory"
SAMPLE_INTERVAL_S = 1
PER_TAG = 3600 // SAMPLE_INTERVAL_S
BASELINE_TAGS = 1000
SMALL_CHUNK = 250_000
SMALL_DUCKDB = "256MB"
CHUNKING_OFF = 10**12  # more values than any window: the whole window is one chunk


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's peak across fork/exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_server(tags: int) -> None:
    """The demo OPC UA server with `tags` synthetic tags at 1 s, until terminated."""
    from gl_demo_plant.opcua_server import ThreadedDemoOpcUaServer

    with ThreadedDemoOpcUaServer(port=free_port(), n_synthetic=tags, sample_interval_s=SAMPLE_INTERVAL_S) as plant:
        print(f"ready {plant.endpoint}", flush=True)
        while True:
            time.sleep(3600)


def site_of(endpoint: str, tags: int):
    """The demo site reading `tags` synthetic tags at 1 s from `endpoint`."""
    from gl_pipelines.config import DEMO_SITE_CONFIG, OpcUaSource, OpcUaTag, load_site_config

    demo = load_site_config(DEMO_SITE_CONFIG)
    source = OpcUaSource(
        endpoint=endpoint,
        source_name=demo.opcua.source_name,
        sample_interval_s=SAMPLE_INTERVAL_S,
        tags=[
            OpcUaTag(name=f"Synthetic.T{i:04d}", node_id=f"ns=2;s=Synthetic.T{i:04d}", unit="percent", min=0, max=100)
            for i in range(1, tags + 1)
        ],
    )
    return demo.model_copy(update={"opcua": source})


def child_run(endpoint: str, tags: int, chunk_values: int) -> None:
    """Fresh process: load definitions, then one checked hour of `scada_readings`; print peak RSS and time."""
    quiet()
    import duckdb
    from dagster import instance_for_test, materialize

    from gl_pipelines.resources.opcua import OpcUaResource

    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        warehouse = Path(tmp) / "w.duckdb"
        readings, checks, resources = scada_definitions(site_of(endpoint, tags), warehouse)
        resources["opcua"] = OpcUaResource(endpoint=endpoint, chunk_values=chunk_values)
        key = plant_day_hours(readings)[6][0]
        before = peak_rss_mb()
        began = time.perf_counter()
        result = materialize(
            [readings, *checks],
            selection=["scada_readings"],
            partition_key=key,
            resources=resources,
            instance=instance,
            run_config=QUIET_RUN_CONFIG,
        )
        wall = time.perf_counter() - began
        peak = peak_rss_mb()
        evaluations = result.get_asset_check_evaluations()
        if not result.success or len(evaluations) != 2 or not all(e.passed for e in evaluations):
            raise RuntimeError(f"run failed or checks did not pass: {[(e.check_name, e.passed) for e in evaluations]}")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (stored,) = con.execute("select count(*) from plant.scada_readings").fetchone()
            (staged,) = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'staging'"
            ).fetchone()
        if stored != tags * PER_TAG or staged:
            raise RuntimeError(f"stored {stored} rows (expected {tags * PER_TAG}), {staged} staging tables left")
    print(json.dumps({"peak_mb": peak, "before_run_mb": before, "rows": stored, "wall_s": wall}))


def measure(endpoint: str, tags: int, chunk_values: int, duckdb_memory: str | None = None) -> dict:
    environment = dict(os.environ)
    if duckdb_memory:
        environment[MEMORY_LIMIT_ENV] = duckdb_memory
    else:
        environment.pop(MEMORY_LIMIT_ENV, None)
    out = subprocess.run(
        [sys.executable, __file__, "--run-child", endpoint, str(tags), str(chunk_values)],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
        env=environment,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    got["duckdb_memory_limit"] = duckdb_memory or DEFAULT_MEMORY_LIMIT
    got["bytes_per_value_above_baseline"] = round((got["peak_mb"] - got["before_run_mb"]) * 2**20 / got["rows"], 1)
    return got


def main(tags: int) -> None:
    began, load_before = time.perf_counter(), os.getloadavg()
    command = [sys.executable, __file__, "--server-child", str(tags)]
    with started_process(command, "ready", timeout_s=600) as (_, line):
        endpoint = line.split()[1]
        unchunked = measure(endpoint, BASELINE_TAGS, CHUNKING_OFF)
        chunked_small = measure(endpoint, BASELINE_TAGS, DEFAULT_CHUNK_VALUES)
        plant = measure(endpoint, tags, DEFAULT_CHUNK_VALUES)
        plant_small_chunks = measure(endpoint, tags, SMALL_CHUNK)
        plant_small = measure(endpoint, tags, SMALL_CHUNK, SMALL_DUCKDB)
    context = {
        "method": "VmHWM (peak RSS) of a fresh process running one checked hour of scada_readings (extract, stage, "
        "2 blocking checks, publish) into a temporary DuckDB file; demo OPC UA server in its own process",
        "loadavg_1m_5m_15m": {"before": [round(x, 2) for x in load_before], "after": list(os.getloadavg())},
        "cpus": os.cpu_count(),
    }
    values = plant["rows"]
    figure = "peak_rss_mb_18m_values" if values == 18_000_000 else f"peak_rss_mb_{values / 1e6:g}m_values"
    baseline_ratio = chunked_small["bytes_per_value_above_baseline"] / unchunked["bytes_per_value_above_baseline"]
    emit(
        BENCH,
        [
            {
                "figure": figure,
                "value": round(plant["peak_mb"], 1),
                "unit": "MB",
                "target": "<= 2048",
                "tags": tags,
                "values": values,
                "chunk_values": DEFAULT_CHUNK_VALUES,
                "run": plant,
                **context,
            },
            {
                "figure": f"{figure}_chunk_{SMALL_CHUNK // 1000}k",
                "value": round(plant_small_chunks["peak_mb"], 1),
                "unit": "MB",
                "target": None,
                "tags": tags,
                "values": plant_small_chunks["rows"],
                "chunk_values": SMALL_CHUNK,
                "run": plant_small_chunks,
                **context,
            },
            {
                "figure": f"{figure}_chunk_{SMALL_CHUNK // 1000}k_duckdb_{SMALL_DUCKDB.lower()}",
                "value": round(plant_small["peak_mb"], 1),
                "unit": "MB",
                "target": None,
                "tags": tags,
                "values": plant_small["rows"],
                "chunk_values": SMALL_CHUNK,
                "run": plant_small,
                **context,
            },
            {
                "figure": "values_per_second",
                "value": round(values / plant["wall_s"], 1),
                "unit": "values/s",
                "target": None,
                "what": "values extracted, checked and stored per second of the whole materialization",
                "tags": tags,
                "values": values,
                **context,
            },
            {
                "figure": "bytes_per_value_chunked_vs_unchunked_3_6m",
                "value": round(baseline_ratio, 3),
                "unit": "ratio",
                "target": None,
                "what": f"peak RSS above the loaded-definitions baseline per value, {BASELINE_TAGS} tags x 1 h at 1 s, "
                f"chunk_values {DEFAULT_CHUNK_VALUES} / chunking off",
                "chunked": chunked_small,
                "unchunked": unchunked,
                **context,
            },
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=5000, help="synthetic tags of the plant-scale run")
    parser.add_argument("--server-child", type=int, metavar="TAGS", help=argparse.SUPPRESS)
    parser.add_argument("--run-child", nargs=3, metavar=("ENDPOINT", "TAGS", "CHUNK_VALUES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_child:
        child_server(args.server_child)
    elif args.run_child:
        child_run(args.run_child[0], int(args.run_child[1]), int(args.run_child[2]))
    else:
        main(args.tags)
