"""The two blocking checks of scada_readings at scale: N tags x 24 h at 10-second resolution (1,006 tags: 8.7 M rows).

The demo plant runs in its own process. Each mode runs in a fresh process (so its peak RSS is its own) on
one past plant day, and times:

- extraction and write: `OpcUaResource.read_raw_history` for the day, then the write the asset's step does
  (stage the frame in the warehouse, publish it into plant.scada_readings);
- `sql` (what the asset runs now): both blocking checks on the staged rows inside DuckDB, the
  great-expectations suite through GX's SQL engine (`checks.expectations.validate_staged`) and the
  completeness counts in SQL;
- GX's import and ephemeral context, paid once per run process, are timed apart (`gx_import_s`);
- `pandas` (the baseline, the path before write-audit-publish): load the partition from the warehouse into a
  DataFrame, then the same suite through GX's pandas engine (with GX's own compound-unique expectation) and
  completeness on the frame.

Figure: `checks_vs_extraction` = checks time / extraction-and-write time of the sql mode (target <= 0.5),
with the pandas mode's ratio and each mode's peak RSS (VmHWM of its process).

Run: `python bench/checks_scale.py [--tags 1006]`. Prints one JSON object per figure per line and writes them to
bench/results/checks_scale.jsonl.
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

from _common import demo_plant, emit, plant_day_hours, quiet, scada_definitions, site_config

BENCH = "checks_scale"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def measure(mode: str, endpoint: str, tags: int, folder: str) -> dict:
    """One mode in this process: extraction and write, then the checks."""
    quiet()
    import pandas as pd

    from gl_pipelines.checks.completeness import completeness, completeness_of_counts
    from gl_pipelines.checks.expectations import validate_staged
    from gl_pipelines.checks.readings import _counts
    from gl_pipelines.resources.opcua import TagRef
    from gl_pipelines.resources.warehouse import connect_warehouse, stage_rows

    site = site_config(endpoint, tags, boiler=False)
    database = str(Path(folder) / f"{mode}.duckdb")
    readings, _, resources = scada_definitions(site, database)
    hours = plant_day_hours(readings)
    start, end = hours[0][1], hours[-1][2]
    refs = [TagRef(t.name, t.node_id, t.unit) for t in site.opcua.tags]
    ranges, thresholds = site.opcua.tag_ranges(), site.checks

    # GX's import and context (seconds, once per run process) are timed apart from the checks.
    warm = time.perf_counter()
    import great_expectations  # noqa: F401

    from gl_pipelines.checks.expectations import _gx_context

    _gx_context()
    gx_import_s = time.perf_counter() - warm

    began = time.perf_counter()
    frame = resources["opcua"].read_raw_history(refs, start, end).frame
    extracted = time.perf_counter()
    staged = stage_rows(database, "scada_readings", frame)
    connection = connect_warehouse(database)
    connection.execute("CREATE SCHEMA IF NOT EXISTS plant")
    connection.execute(f"CREATE TABLE plant.scada_readings AS SELECT * FROM {staged}")
    connection.close()
    written = time.perf_counter()
    rows = len(frame)

    if mode == "sql":
        del frame
        validation = validate_staged(database, staged, ranges, start, end).success
        per_tag, good = _counts(database, staged)
        result = completeness_of_counts(
            per_tag, good, list(ranges), (start, end), 10, thresholds.min_expected_share, thresholds.min_good_share
        )
    else:
        del frame
        connection = connect_warehouse(database)
        loaded = connection.execute("SELECT * FROM plant.scada_readings").fetchdf()
        connection.close()
        validation = pandas_validation(loaded, ranges, pd.Timestamp(start), pd.Timestamp(end))
        result = completeness(
            loaded, list(ranges), (start, end), 10, thresholds.min_expected_share, thresholds.min_good_share
        )
    checked = time.perf_counter()
    return {
        "rows": rows,
        "extract_s": round(extracted - began, 2),
        "write_s": round(written - extracted, 2),
        "checks_s": round(checked - written, 2),
        "gx_import_s": round(gx_import_s, 2),
        "expectations_passed": validation,
        "completeness_passed": result.passed,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def pandas_validation(frame, ranges, start, end) -> bool:
    """The suite as it ran before: GX's pandas engine on the whole frame plus the range-position column."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.row_conditions import Column

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("p").add_dataframe_asset("r")
    batch_definition = asset.add_batch_definition_whole_dataframe("w")
    low = frame["tag"].map({t: float(lo) for t, (lo, _) in ranges.items()})
    high = frame["tag"].map({t: float(hi) for t, (_, hi) in ranges.items()})
    frame["_position"] = (frame["value"] - low) / (high - low)
    expect = gx.expectations
    suite = gx.ExpectationSuite(
        name="readings",
        expectations=[
            *(expect.ExpectColumnValuesToNotBeNull(column=c) for c in ("ts", "tag", "quality", "source")),
            expect.ExpectColumnValuesToNotBeNull(column="value", row_condition=Column("quality") == "good"),
            expect.ExpectColumnValuesToBeInSet(column="quality", value_set=["good", "uncertain", "bad"]),
            expect.ExpectColumnValuesToBeBetween(column="_position", min_value=0, max_value=1),
            expect.ExpectCompoundColumnsToBeUnique(column_list=["ts", "tag"]),
            expect.ExpectColumnValuesToBeBetween(column="ts", min_value=start, max_value=end, strict_max=True),
        ],
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame.copy()})
    return bool(batch.validate(suite, result_format="BASIC").success)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1006)
    parser.add_argument("--mode", choices=["sql", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.endpoint, args.tags, args.folder)), flush=True)
        return
    quiet()
    results = {}
    with demo_plant(synthetic_tags=args.tags) as (endpoint, _), tempfile.TemporaryDirectory() as folder:
        for mode in ("sql", "pandas"):
            command = [sys.executable, __file__, "--mode", mode, "--endpoint", endpoint, "--tags", str(args.tags)]
            output = subprocess.run(
                [*command, "--folder", folder], check=True, capture_output=True, text=True, env=os.environ
            )
            results[mode] = json.loads(output.stdout.strip().splitlines()[-1])

    def ratio(m: dict) -> float:
        return round(m["checks_s"] / (m["extract_s"] + m["write_s"]), 3)

    emit(
        BENCH,
        [
            {
                "figure": "checks_vs_extraction",
                "value": ratio(results["sql"]),
                "unit": "ratio",
                "target": "<= 0.5",
                "tags": args.tags,
                "sql": results["sql"],
                "pandas_baseline": {**results["pandas"], "checks_vs_extraction": ratio(results["pandas"])},
                "loadavg_1m": os.getloadavg()[0],
            },
            {
                "figure": "peak_rss_with_checks_mb",
                "value": results["sql"]["peak_rss_mb"],
                "unit": "MB",
                "target": None,
                "pandas_baseline_mb": results["pandas"]["peak_rss_mb"],
                "tags": args.tags,
                "rows": results["sql"]["rows"],
            },
        ],
    )


if __name__ == "__main__":
    main()
