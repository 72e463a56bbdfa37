"""One day of scada_readings backfilled as ONE run (BackfillPolicy.single_run()) versus 24 hourly runs.

The demo plant (the 6 boiler tags plus 100 synthetic ones) runs in its own process. Each way writes
to its own temporary DuckDB file through the project's warehouse IO manager and uses its own test
instance (SQLite). Wall clock of the whole backfill, best of 3 with the order swapped between the
repetitions (later repetitions replace the partitions the first wrote). Afterwards both
warehouses must hold exactly the same rows: the sorted tables are compared column by column.

Run: `python bench/backfill.py`. Prints one JSON object per figure per line and writes them to
bench/results/backfill.jsonl.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import QUIET_RUN_CONFIG, demo_plant, emit, plant_day_hours, quiet, scada_definitions, site_config

BENCH = "backfill"
N_SYNTHETIC = 100
REPEATS = 3
HOURS = 24


def stored_rows(warehouse: Path):
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as db:
        return db.sql("select * from plant.scada_readings order by tag, ts").df()


def main() -> None:
    quiet()
    import pandas as pd
    import psutil
    from dagster import instance_for_test, materialize

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    walls: dict[str, list[float]] = {"single_run": [], "per_partition": []}
    cpus: dict[str, list[float]] = {"single_run": [], "per_partition": []}
    with ExitStack() as stack:
        endpoint, server_pid = stack.enter_context(demo_plant(N_SYNTHETIC))
        server = psutil.Process(server_pid)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        site = site_config(endpoint, N_SYNTHETIC, boiler=True)
        n_tags = len(site.opcua.tags)
        ways = {}
        for way in walls:
            readings, _, resources = scada_definitions(site, tmp / f"{way}.duckdb")
            ways[way] = (readings, resources, stack.enter_context(instance_for_test()))
        if readings.backfill_policy is None or readings.backfill_policy.max_partitions_per_run is not None:
            raise RuntimeError(f"scada_readings must backfill in a single run, has {readings.backfill_policy}")
        keys = [key for key, _, _ in plant_day_hours(readings)]

        def single_run() -> None:
            readings, resources, instance = ways["single_run"]
            result = materialize(
                [readings],
                selection=["scada_readings"],
                resources=resources,
                instance=instance,
                run_config=QUIET_RUN_CONFIG,
                tags={
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                },
            )
            assert result.success

        def per_partition() -> None:
            readings, resources, instance = ways["per_partition"]
            for key in keys:
                result = materialize(
                    [readings],
                    selection=["scada_readings"],
                    partition_key=key,
                    resources=resources,
                    instance=instance,
                    run_config=QUIET_RUN_CONFIG,
                )
                assert result.success

        order = [("per_partition", per_partition), ("single_run", single_run)]
        for rep in range(REPEATS):
            for way, backfill in order if rep % 2 == 0 else order[::-1]:
                wall, cpu, server_cpu = time.perf_counter(), time.process_time(), sum(server.cpu_times()[:2])
                backfill()
                walls[way].append(time.perf_counter() - wall)
                cpus[way].append(time.process_time() - cpu + sum(server.cpu_times()[:2]) - server_cpu)

        single, split = (stored_rows(tmp / f"{way}.duckdb") for way in ("single_run", "per_partition"))
    expected_rows = n_tags * HOURS * 360
    try:
        pd.testing.assert_frame_equal(single, split, check_exact=True)
        same = len(single) == expected_rows
    except AssertionError as exc:
        print(f"# {BENCH}: the two warehouses differ: {exc}", flush=True)
        same = False
    print(
        f"# {BENCH}: both ways stored the same {len(single)} rows ({n_tags} tags x {HOURS} h), sorted tables identical"
        if same
        else f"# {BENCH}: ROWS DIFFER: single run {len(single)}, per partition {len(split)}, expected {expected_rows}",
        flush=True,
    )
    best = {way: min(samples) for way, samples in walls.items()}
    emit(
        BENCH,
        [
            {
                "figure": "backfill_single_vs_per_partition",
                "value": round(best["single_run"] / best["per_partition"], 3),
                "unit": "ratio",
                "target": "<= 0.2",
                "tags": n_tags,
                "partitions": HOURS,
                "rows": len(single),
                "same_rows": same,
                "single_run_s": [round(x, 3) for x in walls["single_run"]],
                "per_partition_s": [round(x, 3) for x in walls["per_partition"]],
                "cpu_s": {way: round(min(samples), 3) for way, samples in cpus.items()},
                "stat": f"best wall of {REPEATS}; cpu = least CPU seconds of this process plus the demo plant",
                "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
