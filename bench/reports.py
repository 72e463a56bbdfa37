"""Recompute every report for one plant year from the warehouse, against reading its inputs alone.

Seeds a tmp DuckDB warehouse with a year of the report inputs in the shapes the source assets
store (scada_daily_summary, erp_fuel_receipts at ~200,000 documents, erp_production,
cems_hourly_emissions), then measures in the same run:

- baseline: read the inputs the way the report assets do (the energy balance's year in one
  window, each monthly report's month window), nothing else;
- ours: the same reads plus the report functions, the writes back to the warehouse (delete the
  window, insert, one transaction, as the IO manager does), the Parquet/CSV exports and the
  monthly HTML reports.

Dagster orchestration (runs, event log, gates) is not in either number: this measures the report
work itself. Prints `reports_vs_input_read` (target <= 2).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from gl_pipelines.assets.partitions import site_daily_partitions, utc_window  # noqa: E402
from gl_pipelines.assets.reports import site_monthly_partitions  # noqa: E402
from gl_pipelines.config import load_site_config  # noqa: E402
from gl_pipelines.reporting.energy_balance import energy_balance  # noqa: E402
from gl_pipelines.reporting.exports import write_exports  # noqa: E402
from gl_pipelines.reporting.ghg import ghg_inventory  # noqa: E402
from gl_pipelines.reporting.html_report import Section, render_report, write_html  # noqa: E402
from gl_pipelines.reporting.intensity import emissions_intensity  # noqa: E402
from gl_pipelines.reporting.reconciliation import reconcile  # noqa: E402

YEAR = ("2025-01-01", "2025-12-01")  # first and last monthly partition keys
RECEIPTS_PER_YEAR = 200_000
REPEATS = 3


def seed(path: Path, timezone: str) -> None:
    rng = np.random.default_rng(7)
    days = site_daily_partitions(timezone)
    starts = [
        utc_window(days.time_window_for_partition_key(k))[0] for k in days.get_partition_keys() if k < "2026-01-01"
    ]
    day = pd.DatetimeIndex(starts)
    summary = pd.DataFrame(
        {
            "day": np.repeat(day, 2),
            "tag": np.tile(["Boiler1.FuelGasFlow", "Boiler1.SteamFlow"], len(day)),
            "unit": np.tile(["m**3/h", "t/h"], len(day)),
            "count": 8640,
            "count_good": 8600,
            "pct_good": 99.5,
            "min": 0.0,
            "mean": np.ravel(np.column_stack([rng.uniform(2500, 3500, len(day)), rng.uniform(28, 40, len(day))])),
            "max": 0.0,
        }
    )
    span = (day[-1] + pd.Timedelta(days=1) - day[0]).total_seconds()
    posted = day[0] + pd.to_timedelta(np.sort(rng.uniform(0, span, RECEIPTS_PER_YEAR)), unit="s")
    local_day = posted.tz_convert(timezone).normalize().tz_convert("UTC")
    receipts = pd.DataFrame(
        {
            "document": [f"49{i:08d}" for i in range(RECEIPTS_PER_YEAR)],
            "item": "0001",
            "posting_date": local_day,
            "plant": "1000",
            "material": np.where(rng.uniform(size=RECEIPTS_PER_YEAR) < 0.9, "NATGAS", "ELEC"),
            "quantity": rng.uniform(100, 400, RECEIPTS_PER_YEAR).round(3),
            "unit": "M3",
            "amount": rng.uniform(10, 50, RECEIPTS_PER_YEAR).round(2),
            "currency": "USD",
            "source": "bench",
        }
    )
    receipts.loc[receipts["material"] == "ELEC", "unit"] = "MWH"
    production = pd.DataFrame(
        {
            "confirmation": [f"{i:010d}" for i in range(len(day) * 3)],
            "counter": "1",
            "posting_date": np.repeat(day, 3),
            "plant": "1000",
            "product": "STEAM",
            "quantity": rng.uniform(200, 300, len(day) * 3).round(3),
            "unit": "TO",
        }
    )
    hours = pd.date_range(day[0], day[-1] + pd.Timedelta(days=1), freq="h", inclusive="left")
    cems = pd.DataFrame(
        {
            "unit_id": "B1",
            "hour_start_utc": hours,
            "op_time": 1.0,
            "co2_mass_tons": rng.uniform(5, 8, len(hours)),
            "so2_mass_lb": 0.1,
            "nox_mass_lb": 5.0,
            "heat_input_mmbtu": rng.uniform(90, 130, len(hours)),
        }
    )
    with duckdb.connect(str(path)) as con:
        con.execute("create schema plant")
        for name, frame in [
            ("scada_daily_summary", summary),
            ("erp_fuel_receipts", receipts),
            ("erp_production", production),
            ("cems_hourly_emissions", cems),
        ]:
            con.register("seed", frame)
            con.execute(f"create table plant.{name} as select * from seed")
            con.unregister("seed")


def read(con, table: str, column: str, window) -> pd.DataFrame:
    start, end = (moment.isoformat() for moment in window)
    return con.execute(f"select * from plant.{table} where {column} >= '{start}' and {column} < '{end}'").fetchdf()


def replace(con, table: str, column: str, window, frame: pd.DataFrame) -> None:
    """What the warehouse IO manager does for one partition window: delete + insert in one transaction."""
    start, end = (moment.isoformat() for moment in window)
    con.execute("begin transaction")
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'plant' and table_name = ?", [table]
    ).fetchall()[0][0]
    con.register("report", frame)
    if exists:
        con.execute(f"delete from plant.{table} where {column} >= '{start}' and {column} < '{end}'")
        con.execute(f"insert into plant.{table} select * from report")
    else:
        con.execute(f"create table plant.{table} as select * from report")
    con.unregister("report")
    con.execute("commit")


def months(timezone: str) -> list[tuple[str, tuple]]:
    monthly = site_monthly_partitions(timezone)
    keys = [k for k in monthly.get_partition_keys() if YEAR[0] <= k <= YEAR[1]]
    return [(k, utc_window(monthly.time_window_for_partition_key(k))) for k in keys]


def inputs_only(path: Path, timezone: str) -> None:
    with duckdb.connect(str(path)) as con:
        year = (months(timezone)[0][1][0], months(timezone)[-1][1][1])
        read(con, "scada_daily_summary", "day", year)
        for _, window in months(timezone):
            read(con, "erp_fuel_receipts", "posting_date", window)
            read(con, "erp_production", "posting_date", window)
            read(con, "cems_hourly_emissions", "hour_start_utc", window)


def all_reports(path: Path, timezone: str, site, out: Path) -> None:
    reporting = site.reporting
    units = {**reporting.erp_units, **site.erp.units}
    with duckdb.connect(str(path)) as con:
        year = (months(timezone)[0][1][0], months(timezone)[-1][1][1])
        balance = energy_balance(
            read(con, "scada_daily_summary", "day", year), reporting.units, reporting.energy_balance, timezone
        )
        replace(con, "plant_energy_balance", "day", year, balance)
        write_exports(balance, out, "plant_energy_balance", "2025", reporting.csv_exports, con)
        for key, window in months(timezone):
            receipts = read(con, "erp_fuel_receipts", "posting_date", window)
            inventory = ghg_inventory(receipts, reporting.erp_materials, units, reporting.gwp_set, timezone)
            cems = read(con, "cems_hourly_emissions", "hour_start_utc", window)
            month_balance = balance[(balance["day"] >= window[0]) & (balance["day"] < window[1])]
            rec = reconcile(cems, month_balance, reporting.units, reporting.reconciliation_tolerance_pct, timezone)
            production = read(con, "erp_production", "posting_date", window).rename(columns={"posting_date": "date"})
            intensity = emissions_intensity(inventory, production.astype({"quantity": float}), timezone)
            sections = []
            for name, frame in [
                ("ghg_inventory", inventory),
                ("cems_fuel_reconciliation", rec),
                ("emissions_intensity", intensity),
            ]:
                replace(con, name, "month", window, frame)
                write_exports(frame, out, name, key, reporting.csv_exports, con)
                sections.append(Section(name, frame))
            sections.append(Section("plant_energy_balance", month_balance))
            write_html(out / "monthly" / f"report_{key}.html", render_report(key, "bench", sections, {}))


def main() -> None:
    site = load_site_config()
    timezone = site.site.timezone
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "w.duckdb"
        seed(warehouse, timezone)
        base, ours = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            inputs_only(warehouse, timezone)
            base.append(time.perf_counter() - started)
            started = time.perf_counter()
            all_reports(warehouse, timezone, site, Path(tmp) / "reports")
            ours.append(time.perf_counter() - started)
    emit(
        "reports",
        [
            {
                "figure": "reports_one_year_wall",
                "value": round(min(ours), 3),
                "unit": "s",
                "runs_s": [round(x, 3) for x in ours],
            },
            {
                "figure": "input_read_one_year_wall",
                "value": round(min(base), 3),
                "unit": "s",
                "runs_s": [round(x, 3) for x in base],
            },
            {
                "figure": "reports_vs_input_read",
                "value": round(min(ours) / min(base), 2),
                "unit": "ratio",
                "target": "<= 2",
                "inputs": {"erp_fuel_receipts": RECEIPTS_PER_YEAR, "cems_hours": 8760, "days": 365},
            },
        ],
    )


if __name__ == "__main__":
    main()
