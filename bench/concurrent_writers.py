"""8 hourly partitions of scada_readings: 4 concurrent writers into the shared warehouse vs one after another
into the DuckDB file.

The demo plant (the 6 boiler tags plus 100 synthetic ones) runs in its own process. Baseline: the 8 partitions
materialized one after another (8 runs) in this process into a temporary DuckDB file, as the `duckdb_warehouse`
pool (limit 1) makes them run today. Ours: the same 8 partitions as 8 runs spread over 4 worker processes
running at once, each with its own Dagster instance, writing the shared warehouse (Iceberg, catalog in a
scratch PostgreSQL database on 127.0.0.1:5432, Parquet files in a temporary folder). Both ways go through the
project's own definitions: extraction, blocking checks (staged and validated), publish. The workers are started
before the first run, so neither way pays for imports or process starts in its timing. After one untimed warm-up
repetition, best wall of 3, order swapped between repetitions (each rewrites the partitions written before).
Afterwards the sorted rows of both warehouses must be identical.

Run: `python bench/concurrent_writers.py`. Prints one JSON object per figure per line and writes them to
bench/results/concurrent_writers.jsonl.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import (
    QUIET_RUN_CONFIG,
    emit,
    free_port,
    plant_day_hours,
    quiet,
    scada_definitions,
    site_config,
    started_process,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BENCH = "concurrent_writers"
N_SYNTHETIC = 100
PARTITIONS = 8
WORKERS = 4
REPEATS = 3
ORDERED = "select * from plant.scada_readings order by tag, ts"

_worker: dict = {}


def _start_worker(site, settings) -> None:
    """In each worker process: the project's definitions on the shared warehouse and its own Dagster instance."""
    from dagster import DagsterInstance

    from gl_pipelines.components.site_file import build_definitions

    _worker.update(defs=build_definitions(site, settings), instance=DagsterInstance.ephemeral())


def _write(key: str) -> bool:
    from tests.runs import run

    defs, instance = _worker["defs"], _worker["instance"]
    return run(defs, instance, ["scada_readings"], partition_key=key, run_config=QUIET_RUN_CONFIG).success


def main() -> None:
    quiet()
    import duckdb
    import pandas as pd
    from dagster import DagsterInstance

    from gl_pipelines.components.site_file import build_definitions
    from tests.resources.shared_warehouse import read_shared, scratch_catalog
    from tests.runs import run

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    walls: dict[str, list[float]] = {"serial_duckdb": [], "concurrent_shared": []}
    with ExitStack() as stack:
        port = free_port()
        # The CEMS PLC off: its fixed port may be held by another demo plant on this machine, and only OPC UA is read.
        plant = [sys.executable, "-m", "gl_demo_plant", "--opcua-port", str(port), "--modbus-port", "0"]
        plant += ["--cems-plc-port", "-1", "--synthetic-tags", str(N_SYNTHETIC)]
        stack.enter_context(started_process(plant, "demo plant ready", 90.0))
        endpoint = f"opc.tcp://127.0.0.1:{port}/gl-demo"
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        site = site_config(endpoint, N_SYNTHETIC, boiler=True)
        settings = stack.enter_context(scratch_catalog(tmp / "lake"))
        # Spawned, not forked: forking this process (its threads) once left a worker deadlocked.
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(WORKERS, initializer=_start_worker, initargs=(site, settings))
        stack.callback(pool.join)
        stack.callback(pool.close)  # let the workers end on their own (terminate() makes them print tracebacks)
        readings, _, _ = scada_definitions(site, tmp / "serial.duckdb")  # checks the endpoint is the plant's
        serial_defs, instance = build_definitions(site, tmp / "serial.duckdb"), DagsterInstance.ephemeral()
        keys = [key for key, _, _ in plant_day_hours(readings)][:PARTITIONS]

        def serial_duckdb() -> None:
            for key in keys:
                result = run(serial_defs, instance, ["scada_readings"], partition_key=key, run_config=QUIET_RUN_CONFIG)
                assert result.success, f"serial run of {key} failed"

        def concurrent_shared() -> None:
            # One key per task, so a worker whose run ends early takes the next partition.
            assert all(pool.map(_write, keys, chunksize=1)), "a concurrent run failed"

        order = [("serial_duckdb", serial_duckdb), ("concurrent_shared", concurrent_shared)]
        for _, write in order:
            write()  # untimed: each process's first run loads what later runs reuse (GX, the catalog)
        for rep in range(REPEATS):
            for way, write in order if rep % 2 == 0 else order[::-1]:
                wall = time.perf_counter()
                write()
                walls[way].append(time.perf_counter() - wall)

        with duckdb.connect(str(tmp / "serial.duckdb"), read_only=True) as db:
            serial = db.sql(ORDERED).df()
        shared = read_shared(settings, ORDERED)
    try:
        pd.testing.assert_frame_equal(serial, shared, check_exact=True)
        same = True
    except AssertionError as exc:
        print(f"# {BENCH}: the two warehouses differ: {exc}", flush=True)
        same = False
    expected = len(site.opcua.tags) * PARTITIONS * 360
    same = same and len(serial) == expected
    print(f"# {BENCH}: {len(serial)} rows in the DuckDB file, {len(shared)} in the shared warehouse", flush=True)
    best = {way: min(samples) for way, samples in walls.items()}
    emit(
        BENCH,
        [
            {
                "figure": "concurrent_writers_vs_serial",
                "value": round(best["concurrent_shared"] / best["serial_duckdb"], 3),
                "unit": "ratio",
                "target": "<= 0.7",
                "tags": len(site.opcua.tags),
                "partitions": PARTITIONS,
                "workers": WORKERS,
                "rows": len(serial),
                "same_rows": same,
                "serial_duckdb_s": [round(x, 3) for x in walls["serial_duckdb"]],
                "concurrent_shared_s": [round(x, 3) for x in walls["concurrent_shared"]],
                "stat": f"best wall of {REPEATS} after a warm-up, order swapped",
                "cpus": os.cpu_count(),
                "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
