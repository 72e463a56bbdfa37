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

`--warehouse iceberg` measures the shared warehouse instead (a scratch Iceberg catalog database in the local
PostgreSQL, Parquet files in a temporary folder), at 1,000 tags x 1 h at 1 s (3.6 M values) by default: the
same run published in record batches of `PUBLISH_BATCH_ROWS` and as the whole window in one batch (as the publish
read it before batching), each in a fresh process. Besides the run's peak, the publish phase is measured on its
own: the peak RSS is reset (/proc/self/clear_refs) when the IO manager starts storing the output, so the
figure is the publish's own peak above the RSS it started from.

Run: `python bench/peak_memory.py [--tags 5000] [--warehouse iceberg]`. Prints one JSON object per figure per
line and writes them to bench/results/peak_memory.jsonl (replacing that warehouse's figures, keeping the
other's). Takes several minutes on a loaded 2-core machine (the Iceberg pair about two).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from _common import (
    QUIET_RUN_CONFIG,
    RESULTS_DIR,
    emit,
    free_port,
    peak_rss_mb,
    plant_day_hours,
    quiet,
    require_checks_passed,
    reset_peak_rss,
    rss_mb,
    scada_definitions,
    started_process,
)

from gl_pipelines.resources.iceberg_warehouse import PUBLISH_BATCH_ROWS
from gl_pipelines.resources.opcua import DEFAULT_CHUNK_VALUES
from gl_pipelines.resources.warehouse import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV

BENCH = "peak_memory"
SAMPLE_INTERVAL_S = 1
PER_TAG = 3600 // SAMPLE_INTERVAL_S
BASELINE_TAGS = 1000
SMALL_CHUNK = 250_000
SMALL_DUCKDB = "256MB"
CHUNKING_OFF = 10**12  # more values than any window: the whole window is one chunk
WHOLE_WINDOW = 10**12  # rows per publish batch larger than any window: the whole window is one Arrow batch
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
ICEBERG_PREFIX = "iceberg_"


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


def child_run(endpoint: str, tags: int, chunk_values: int, iceberg: tuple[str, int] | None = None) -> None:
    """Fresh process: load definitions, then one checked hour of `scada_readings`; print peak RSS and time.
    With `iceberg` (catalog DSN, rows per publish batch), into the shared warehouse instead of a DuckDB file."""
    if iceberg is not None:
        iceberg_child_run(endpoint, tags, chunk_values, *iceberg)
        return
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
        require_checks_passed(result)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (stored,) = con.execute("select count(*) from plant.scada_readings").fetchone()
            (staged,) = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'staging'"
            ).fetchone()
        if stored != tags * PER_TAG or staged:
            raise RuntimeError(f"stored {stored} rows (expected {tags * PER_TAG}), {staged} staging tables left")
    print(json.dumps({"peak_mb": peak, "before_run_mb": before, "rows": stored, "wall_s": wall}))


def iceberg_child_run(endpoint: str, tags: int, chunk_values: int, catalog_dsn: str, batch_rows: int) -> None:
    """`child_run` into the shared warehouse, the publish phase (the IO manager storing the output) measured on
    its own: RSS when it starts, then its own peak."""
    quiet()
    from dagster import AssetKey, instance_for_test, materialize

    from gl_pipelines.components.site_file import build_definitions
    from gl_pipelines.resources.iceberg_warehouse import (
        IcebergPandasTypeHandler,
        SharedWarehouseIOManager,
        open_catalog,
    )
    from gl_pipelines.resources.opcua import OpcUaResource
    from gl_pipelines.resources.warehouse_settings import WarehouseSettings

    publish: dict = {}
    handle_output = IcebergPandasTypeHandler.handle_output

    def measured_publish(self, *args, **kwargs):
        publish["run_peak_before_mb"], publish["rss_at_start_mb"] = peak_rss_mb(), rss_mb()
        reset_peak_rss()
        began = time.perf_counter()
        try:
            return handle_output(self, *args, **kwargs)
        finally:
            publish["wall_s"], publish["peak_mb"] = time.perf_counter() - began, peak_rss_mb()

    IcebergPandasTypeHandler.handle_output = measured_publish
    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        settings = WarehouseSettings(
            kind="iceberg", path=str(Path(tmp) / "unused.duckdb"), catalog_dsn=catalog_dsn, data_path=f"{tmp}/lake"
        )
        defs = build_definitions(site_of(endpoint, tags), settings)
        (readings,) = [a for a in defs.assets if a.key == AssetKey("scada_readings")]
        resources = dict(defs.resources)
        resources["opcua"] = OpcUaResource(endpoint=endpoint, chunk_values=chunk_values)
        resources["warehouse"] = SharedWarehouseIOManager(
            catalog_dsn=catalog_dsn,
            data_path=settings.data_path,
            staging_database=settings.staging_database(),
            publish_batch_rows=batch_rows,
        )
        key = plant_day_hours(readings)[6][0]
        before = peak_rss_mb()
        began = time.perf_counter()
        result = materialize(
            [readings, *(defs.asset_checks or [])],
            selection=["scada_readings"],
            partition_key=key,
            resources=resources,
            instance=instance,
            run_config=QUIET_RUN_CONFIG,
        )
        wall = time.perf_counter() - began
        require_checks_passed(result)
        table = open_catalog(catalog_dsn, settings.data_path).load_table("plant.scada_readings")
        stored, files = table.scan().count(), len(list(table.scan().plan_files()))
        if stored != tags * PER_TAG or Path(settings.staging_database()).exists():
            raise RuntimeError(f"stored {stored} rows (expected {tags * PER_TAG}), or the staging file was left")
    print(
        json.dumps(
            {
                "peak_mb": max(publish["run_peak_before_mb"], publish["peak_mb"]),
                "before_run_mb": before,
                "rows": stored,
                "data_files": files,
                "wall_s": wall,
                "publish_batch_rows": batch_rows,
                "publish": publish,
            }
        )
    )


@contextmanager
def scratch_catalog_database(server: str):
    """A new PostgreSQL database for one run's Iceberg catalog; dropped afterwards."""
    import psycopg2

    name = f"gl_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    try:
        admin.cursor().execute(f"CREATE DATABASE {name}")
        try:
            yield f"{server}/{name}"
        finally:
            admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        admin.close()


def measure(
    endpoint: str,
    tags: int,
    chunk_values: int,
    duckdb_memory: str | None = None,
    iceberg: tuple[str, int] | None = None,
) -> dict:
    environment = dict(os.environ)
    if duckdb_memory:
        environment[MEMORY_LIMIT_ENV] = duckdb_memory
    else:
        environment.pop(MEMORY_LIMIT_ENV, None)
    shared = [] if iceberg is None else ["--iceberg", iceberg[0], str(iceberg[1])]
    out = subprocess.run(
        [sys.executable, __file__, "--run-child", endpoint, str(tags), str(chunk_values), *shared],
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


def record(figures: list[dict], iceberg: bool) -> None:
    """`emit` the figures, keeping in the results file the other warehouse's figures of an earlier run."""
    results = RESULTS_DIR / f"{BENCH}.jsonl"
    lines = results.read_text().splitlines() if results.exists() else []
    kept = [line for line in lines if json.loads(line)["figure"].startswith(ICEBERG_PREFIX) != iceberg]
    emit(BENCH, figures)
    results.write_text(results.read_text() + "".join(line + "\n" for line in kept))


def main_iceberg(tags: int, server: str) -> None:
    """Batched against whole-window publish into the shared warehouse, in the same script run, at `tags` and
    at twice as many (a bounded publish does not grow with the window; the whole-window one does)."""
    began, load_before = time.perf_counter(), os.getloadavg()
    command = [sys.executable, __file__, "--server-child", str(2 * tags)]
    plan = {
        "whole_window": (tags, WHOLE_WINDOW),
        "batched": (tags, PUBLISH_BATCH_ROWS),
        f"batched_{SMALL_CHUNK // 1000}k": (tags, SMALL_CHUNK),
        "whole_window_2x": (2 * tags, WHOLE_WINDOW),
        "batched_2x": (2 * tags, PUBLISH_BATCH_ROWS),
    }
    runs = {}
    with started_process(command, "ready", timeout_s=600) as (_, line):
        endpoint = line.split()[1]
        for name, (run_tags, batch_rows) in plan.items():
            with scratch_catalog_database(server) as dsn:
                runs[name] = measure(endpoint, run_tags, DEFAULT_CHUNK_VALUES, iceberg=(dsn, batch_rows))
    context = {
        "method": "fresh process per run: one checked hour of scada_readings (extract, stage, 2 blocking checks, "
        "publish) into the shared warehouse (Iceberg, catalog in the local PostgreSQL, Parquet in a temporary "
        "folder); publish = the IO manager storing the output, its peak RSS reset at its start; demo OPC UA server "
        "in its own process",
        "loadavg_1m_5m_15m": {"before": [round(x, 2) for x in load_before], "after": list(os.getloadavg())},
        "cpus": os.cpu_count(),
    }
    size = f"{runs['batched']['rows'] / 1e6:g}m".replace(".", "_")

    def growth(name: str) -> float:
        """Peak RSS of the publish phase above the RSS it started from."""
        return runs[name]["publish"]["peak_mb"] - runs[name]["publish"]["rss_at_start_mb"]

    def ratio(figure: str, value: float, what: str, target: str | None = None) -> dict:
        figure = f"{ICEBERG_PREFIX}{figure}"
        return {"figure": figure, "value": round(value, 3), "unit": "ratio", "target": target, "what": what, **context}

    figures = [
        {
            "figure": f"{ICEBERG_PREFIX}publish_peak_above_start_mb_{name}",
            "value": round(growth(name), 1),
            "unit": "MB",
            "target": None,
            "what": "peak RSS of the publish phase above the RSS it started from",
            "tags": plan[name][0],
            "values": run["rows"],
            "run": run,
            **context,
        }
        for name, run in runs.items()
    ]
    figures += [
        ratio(
            f"publish_memory_batched_vs_whole_window_{size}",
            growth("batched") / growth("whole_window"),
            f"publish-phase RSS growth, data files of {PUBLISH_BATCH_ROWS} rows / the whole window in one",
            "< 1",
        ),
        ratio(
            "publish_memory_batched_2x_window_vs_1x",
            growth("batched_2x") / growth("batched"),
            "publish-phase RSS growth when the window doubles, batched (bounded: about 1)",
            "<= 1.2",
        ),
        ratio(
            "publish_memory_whole_window_2x_window_vs_1x",
            growth("whole_window_2x") / growth("whole_window"),
            "publish-phase RSS growth when the window doubles, whole window in one batch (baseline: grows)",
        ),
        ratio(
            f"run_peak_rss_batched_vs_whole_window_{size}",
            runs["batched"]["peak_mb"] / runs["whole_window"]["peak_mb"],
            "peak RSS of the whole run (extract, stage, checks, publish), batched / whole window",
        ),
        ratio(
            f"publish_time_batched_vs_whole_window_{size}",
            runs["batched"]["publish"]["wall_s"] / runs["whole_window"]["publish"]["wall_s"],
            "publish-phase wall time, batched / whole window",
        ),
    ]
    record(figures, iceberg=True)
    print(f"# {BENCH} (iceberg): {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


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
    record(
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
        iceberg=False,
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, help="synthetic tags (default 5000; 1000 with --warehouse iceberg)")
    parser.add_argument("--warehouse", choices=("duckdb", "iceberg"), default="duckdb", help="which warehouse")
    parser.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server for the scratch Iceberg catalogs")
    parser.add_argument("--server-child", type=int, metavar="TAGS", help=argparse.SUPPRESS)
    parser.add_argument("--run-child", nargs=3, metavar=("ENDPOINT", "TAGS", "CHUNK_VALUES"), help=argparse.SUPPRESS)
    parser.add_argument("--iceberg", nargs=2, metavar=("CATALOG_DSN", "BATCH_ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_child:
        child_server(args.server_child)
    elif args.run_child:
        iceberg = None if args.iceberg is None else (args.iceberg[0], int(args.iceberg[1]))
        child_run(args.run_child[0], int(args.run_child[1]), int(args.run_child[2]), iceberg)
    elif args.warehouse == "iceberg":
        main_iceberg(args.tags or BASELINE_TAGS, args.postgres)
    else:
        main(args.tags or 5000)
