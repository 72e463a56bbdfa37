"""A single-run backfill of the monthly reports over two months writes exactly what one run per
month writes: the same warehouse rows, the same Parquet/CSV bytes, the same HTML pages. Uses the
stand-in upstream assets of test_reports.py."""

import re

import pandas as pd

from gl_pipelines.assets.reports import cems_hours_in_balance_days
from gl_pipelines.config import load_site_config
from tests.assets.test_reports import (  # noqa: F401  (fixtures)
    RANGE_END,
    RANGE_START,
    instance,
    monthly_defs,
    run,
    table,
    upstream_month,
)

MONTHLY = ["ghg_inventory", "cems_fuel_reconciliation", "emissions_intensity", "monthly_report"]
TABLES = {
    "ghg_inventory": "month, plant",
    "cems_fuel_reconciliation": "month, unit_name",
    "emissions_intensity": "month, plant",
}
GENERATED = re.compile(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")
RUN_ID = re.compile(r"<td>[0-9a-f]{8}</td>")
"""The run column of the check-results page: the range is written by another run."""


def written(warehouse, reports) -> tuple[dict, dict]:
    tables = {name: table(warehouse, name, order) for name, order in TABLES.items()}
    files = {
        path.relative_to(reports): RUN_ID.sub("<td>run</td>", GENERATED.sub("generated", path.read_text()))
        if path.suffix == ".html"
        else path.read_bytes()
        for path in sorted(reports.rglob("*"))
        if path.is_file()
    }
    return tables, files


def test_single_run_range_equals_one_run_per_month(monthly_defs, instance):  # noqa: F811
    defs, warehouse, reports = monthly_defs
    assert upstream_month(defs, instance, "2026-09-01", "2026-10-31").success
    for month in ["2026-09-01", "2026-10-01"]:
        assert run(defs, instance, MONTHLY, partition_key=month).success
    per_month_tables, per_month_files = written(warehouse, reports)
    for path in reports.rglob("*"):
        if path.is_file():
            path.unlink()

    ranged = run(defs, instance, MONTHLY, tags={RANGE_START: "2026-09-01", RANGE_END: "2026-10-01"})
    assert ranged.success
    steps = {e.step_key for e in ranged.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert steps == set(MONTHLY)  # one step per asset for both months
    materialized = {(m.asset_key.to_user_string(), m.partition) for m in ranged.get_asset_materialization_events()}
    assert materialized == {(name, month) for name in MONTHLY for month in ["2026-09-01", "2026-10-01"]}

    range_tables, range_files = written(warehouse, reports)
    for name, frame in per_month_tables.items():
        assert len(frame) == 2 and frame["month"].nunique() == 2, name
        pd.testing.assert_frame_equal(range_tables[name], frame)
    assert set(range_files) == set(per_month_files)
    assert len([p for p in range_files if p.suffix == ".parquet"]) == 6
    for path, content in per_month_files.items():
        assert range_files[path] == content, path


def test_cems_hours_in_balance_days_over_the_fall_back_day():
    units = load_site_config().reporting.units  # Boiler1 <-> CEMS unit B1
    hours = pd.DataFrame(
        {
            "unit_id": "B1",
            "hour_start_utc": pd.date_range(
                "2026-10-31 05:00", "2026-11-03 06:00", freq="h", tz="UTC", inclusive="left"
            ),
        }
    )
    hours = pd.concat([hours, hours.assign(unit_id="B9")], ignore_index=True)
    balance = pd.DataFrame(
        {
            "day": pd.to_datetime(["2026-10-31 05:00", "2026-11-01 05:00", "2026-11-02 06:00"], utc=True),
            "unit_name": ["Boiler1", "Boiler1", "Other"],
        }
    )
    kept = cems_hours_in_balance_days(hours, balance, units, "America/Chicago")
    # Oct 31 (24 h) and the fall-back Nov 1 (25 h) of B1; not Nov 2 (no Boiler1 row), not unit B9.
    assert len(kept) == 49 and set(kept["unit_id"]) == {"B1"}
    assert kept["hour_start_utc"].min() == pd.Timestamp("2026-10-31 05:00", tz="UTC")
    assert kept["hour_start_utc"].max() == pd.Timestamp("2026-11-02 05:00", tz="UTC")
    assert list(kept.index) == list(range(49))
