"""Peak memory of `historian_recorded` (PI Web API): one plant day of synthetic tags at 1 s, chunked vs not.

The demo PI Web API runs in its own process, serving `--tags` synthetic tags at a 1-second interval, computed on
request from its deterministic model. Each measured run is a fresh process that materializes one UTC day of
`historian_recorded` with its two blocking checks into a temporary DuckDB warehouse (extracted page by page,
staged chunk by chunk, checked and published) and reports its peak RSS (VmHWM). In the same script run the
baseline is the same day with chunking off (`chunk_values` larger than the window: every tag's day read before
any is staged, as the asset read it before chunking), so the figure is the ratio of the two peaks above the
process's RSS before the run.

Kept apart from bench/peak_memory.py (OPC UA, and the Iceberg warehouse), which another change was editing.
Run: `python bench/historian_memory.py [--tags 20] [--chunk-values 250000]` (250,000: the historians' default).
Prints one JSON object per figure per line and writes them to bench/results/historian_memory.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import QUIET_RUN_CONFIG, emit, peak_rss_mb, quiet, require_checks_passed, started_process

from gl_pipelines.resources.historian import HISTORIAN_CHUNK_VALUES

BENCH = "historian_memory"
SAMPLE_INTERVAL_S = 1
PER_TAG = 86_400 // SAMPLE_INTERVAL_S
CHUNKING_OFF = 10**12  # more values than any window: the whole day is one chunk


def child_server(tags: int) -> None:
    """The demo PI Web API with `tags` synthetic tags at 1 s, until terminated."""
    from gl_demo_plant.http_server import HttpServerThread
    from gl_demo_plant.pi_web_api import DemoPiWebApi

    api = DemoPiWebApi(n_synthetic=tags, sample_interval_s=SAMPLE_INTERVAL_S)
    with HttpServerThread(api.app, name="bench-pi") as server:
        print(f"ready {server.url}/piwebapi", flush=True)
        while True:
            time.sleep(3600)


def child_run(url: str, tags: int, chunk_values: int) -> None:
    """Fresh process: one checked UTC day of `historian_recorded`; print peak RSS, rows and time."""
    quiet()
    import duckdb
    from dagster import instance_for_test, materialize

    from gl_pipelines.assets.historian import build_historian_assets
    from gl_pipelines.assets.partitions import site_daily_partitions
    from gl_pipelines.config import CheckThresholds, HistorianSource
    from gl_pipelines.resources.historian import historian_from_source
    from gl_pipelines.resources.warehouse import WarehouseStaging, warehouse_io_manager

    source = HistorianSource(
        base_url=url,
        source_name="bench-pi",
        data_server="DEMO-PI",
        sample_interval_s=SAMPLE_INTERVAL_S,
        auth_mode="none",
        chunk_values=chunk_values,
        tags=[{"name": f"Synthetic.T{i:04d}", "unit": "percent", "min": 0, "max": 100} for i in range(1, tags + 1)],
    )
    day = site_daily_partitions("UTC").get_last_partition_key()
    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        warehouse = str(Path(tmp) / "w.duckdb")
        before = peak_rss_mb()
        began = time.perf_counter()
        result = materialize(
            build_historian_assets(source, CheckThresholds(), "UTC"),
            partition_key=day,
            resources={
                "historian": historian_from_source(source),
                "warehouse": warehouse_io_manager(warehouse),
                "warehouse_staging": WarehouseStaging(database=warehouse),
            },
            instance=instance,
            run_config=QUIET_RUN_CONFIG,
        )
        wall = time.perf_counter() - began
        peak = peak_rss_mb()
        require_checks_passed(result)
        with duckdb.connect(warehouse, read_only=True) as con:
            (stored,) = con.execute("select count(*) from plant.historian_recorded").fetchone()
        if stored != tags * PER_TAG:
            raise RuntimeError(f"stored {stored} rows, expected {tags * PER_TAG}")
    print(json.dumps({"peak_mb": peak, "before_run_mb": before, "rows": stored, "wall_s": wall}))


def measure(url: str, tags: int, chunk_values: int) -> dict:
    command = [sys.executable, __file__, "--child-run", url, "--tags", str(tags), "--chunk-values", str(chunk_values)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"run with chunk_values={chunk_values} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--chunk-values", type=int, default=HISTORIAN_CHUNK_VALUES)
    parser.add_argument("--child-server", action="store_true")
    parser.add_argument("--child-run")
    args = parser.parse_args()
    if args.child_server:
        child_server(args.tags)
        return
    if args.child_run:
        child_run(args.child_run, args.tags, args.chunk_values)
        return
    server = [sys.executable, __file__, "--child-server", "--tags", str(args.tags)]
    with started_process(server, "ready", 120) as (_, line):
        url = line.split()[1]
        off = measure(url, args.tags, CHUNKING_OFF)
        chunked = measure(url, args.tags, args.chunk_values)
    values = args.tags * PER_TAG
    above = {name: run["peak_mb"] - run["before_run_mb"] for name, run in (("off", off), ("chunked", chunked))}
    emit(
        BENCH,
        [
            {
                "figure": "peak_rss_above_loaded_chunked_vs_off",
                "value": round(above["chunked"] / above["off"], 3),
                "unit": "ratio",
                "detail": f"{args.tags} tags x 1 day at 1 s = {values:,} values; chunk_values {args.chunk_values} "
                f"/ chunking off",
            },
            {"figure": "peak_rss_mb_chunking_off", "value": round(off["peak_mb"], 1), "unit": "MB", "run": off},
            {"figure": "peak_rss_mb_chunked", "value": round(chunked["peak_mb"], 1), "unit": "MB", "run": chunked},
            {
                "figure": "wall_chunked_vs_off",
                "value": round(chunked["wall_s"] / off["wall_s"], 3),
                "unit": "ratio",
                "detail": "same day, same process shape",
            },
        ],
    )


if __name__ == "__main__":
    main()
