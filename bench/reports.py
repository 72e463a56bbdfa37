"""Recompute every report for one plant year from the warehouse, against reading its inputs alone.

Seeds a tmp DuckDB warehouse with a year of the report inputs in the shapes the source assets
store (scada_daily_summary, erp_fuel_receipts at ~200,000 documents, erp_production,
cems_hourly_emissions), then measures in the same run what a single-run backfill of the year does
(every report asset has `backfill_policy()`, one run per asset for the whole range):

- baseline: read the inputs' rows for that range, one window per input (the year), each through its
  own connection as the IO manager opens one per load; the CEMS hours with the 4 columns
  `cems_fuel_reconciliation` reads; all 200,000 receipts; nothing else;
- ours: what the asset bodies do: the same rows read, except that `ghg_inventory` sums the receipts
  per day inside the warehouse (`ghg.DAILY_FUEL_SUMS`) instead of loading them, and each report step
  reads its inputs and upstream reports through one `WarehouseReader` connection, as the assets do
  (the energy balance loads its day summaries through the IO manager's own connection); the report
  functions, the report checks, the chart and summary of each asset's metadata, the warehouse write
  of the range (delete the window, insert, one transaction, a connection each, as the IO manager
  does), one Parquet (+ CSV) per report and plant month (12 a report, the daily energy balance
  included), and per month the HTML report (tables + 4 charts) and the check-results page.

Not in either number: Dagster itself (runs, event log, the gates' instance queries, the check
results stored in the instance; the check-results pages are rendered from an empty result set).
Prints `reports_vs_input_read` (target <= 2) with the setting's default, Parquet exports only, and
`reports_vs_input_read_with_csv` as the demo site runs it; the wall lines say where the time went.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from gl_pipelines.assets.charts import bar_chart  # noqa: E402
from gl_pipelines.assets.partitions import site_daily_partitions, utc_window  # noqa: E402
from gl_pipelines.assets.reports import (  # noqa: E402
    CEMS_COLUMNS,
    PRODUCTION_COLUMNS,
    REPORT_COLUMNS,
    balance_summary,
    cems_hours_in_balance_days,
    production_frame,
    read_frames,
    report_read,
    rows_in,
    section,
    site_monthly_partitions,
    stored_reports,
)
from gl_pipelines.checks.reports import (  # noqa: E402
    energy_balance_checks,
    ghg_checks,
    intensity_checks,
    reconciliation_checks,
)
from gl_pipelines.config import load_site_config  # noqa: E402
from gl_pipelines.reporting import energy_balance as eb  # noqa: E402
from gl_pipelines.reporting import ghg, intensity, reconciliation  # noqa: E402
from gl_pipelines.reporting.exports import plant_months, write_partition_exports  # noqa: E402
from gl_pipelines.reporting.html_report import render_check_results, render_report, write_html  # noqa: E402
from gl_pipelines.resources.warehouse_reader import WarehouseReader, WindowRead  # noqa: E402

YEAR = ("2025-01-01", "2025-12-01")  # first and last monthly partition keys
RECEIPTS_PER_YEAR = 200_000
REPEATS = 5
PARTS: dict[str, float] = defaultdict(float)
"""Seconds per kind of work in the current repetition of `all_reports`."""


@contextmanager
def part(name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        PARTS[name] += time.perf_counter() - started


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


def read(path: Path, table: str, column: str, window, columns: str = "*") -> pd.DataFrame:
    """What the warehouse IO manager does to load an input for a partition window: its own connection."""
    start, end = (moment.isoformat() for moment in window)
    with duckdb.connect(str(path)) as con:
        return con.execute(
            f"select {columns} from plant.{table} where {column} >= '{start}' and {column} < '{end}'"
        ).fetchdf()


def replace(path: Path, table: str, column: str, window, frame: pd.DataFrame) -> None:
    """What the warehouse IO manager does for one run's partition window: delete + insert in one transaction."""
    start, end = (moment.isoformat() for moment in window)
    with duckdb.connect(str(path)) as con:
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


def store(path: Path, out: Path, name: str, time_column: str, year, files, frame: pd.DataFrame, csv: bool) -> None:
    """The range's warehouse write, then its export files: the order `_report_output` keeps."""
    with part("warehouse writes"):
        replace(path, name, time_column, year, frame)
    with part("exports"):
        write_partition_exports(frame, out, name, files, time_column, csv)


def windows(timezone: str) -> dict:
    """UTC windows of the year's monthly partitions, by key."""
    monthly = site_monthly_partitions(timezone)
    return {
        k: utc_window(monthly.time_window_for_partition_key(k))
        for k in monthly.get_partition_keys()
        if YEAR[0] <= k <= YEAR[1]
    }


CEMS_READ = ", ".join(CEMS_COLUMNS)


def inputs_only(path: Path, timezone: str) -> None:
    months = windows(timezone)
    year = (next(iter(months.values()))[0], list(months.values())[-1][1])
    read(path, "scada_daily_summary", "day", year)
    read(path, "erp_fuel_receipts", "posting_date", year)
    read(path, "erp_production", "posting_date", year)
    read(path, "cems_hourly_emissions", "hour_start_utc", year, CEMS_READ)


def all_reports(path: Path, timezone: str, site, out: Path, csv: bool) -> None:
    """One single-run backfill of the year for each report asset, in dependency order."""
    reporting = site.reporting
    units = {**reporting.erp_units, **site.erp.units}
    months = windows(timezone)
    year = (next(iter(months.values()))[0], list(months.values())[-1][1])
    files = plant_months(*year, timezone)  # the export files: one per plant month, daily report included
    reader = WarehouseReader(database=str(path))
    # plant_energy_balance (daily, 365 partitions in one run)
    with part("warehouse reads"):
        summary = read(path, "scada_daily_summary", "day", year)
    with part("report functions + checks + summaries"):
        balance = eb.energy_balance(summary, reporting.units, reporting.energy_balance, timezone)
        energy_balance_checks(balance)
        balance_summary(balance)
    with part("metadata charts"):
        labels = [f"{r.unit_name} {pd.Timestamp(r.day).tz_convert(timezone):%m-%d}" for r in balance.itertuples()]
        bar_chart(
            labels,
            {"fuel in": balance["fuel_energy_mmbtu"], "steam out": balance["steam_energy_mmbtu"]},
            "Boiler energy balance",
            "mmBtu",
        )
    store(path, out, "plant_energy_balance", "day", year, files, balance, csv)

    # ghg_inventory (12 monthly partitions in one run)
    with part("warehouse reads"):  # summed per day in the warehouse, as the asset does
        sums = reader.query_window("erp_fuel_receipts", "posting_date", *year, ghg.RECEIPT_COLUMNS, ghg.DAILY_FUEL_SUMS)
    with part("report functions + checks + summaries"):
        inventory = ghg.ghg_inventory(sums, reporting.erp_materials, units, reporting.gwp_set, timezone)
        ghg_checks(inventory)
        _ = f"{inventory['co2e_t'].sum():,.3f} {int(inventory['documents'].sum())} {inventory['co2_t'].sum():,.3f}"
    with part("metadata charts"):
        bar_chart(
            [f"{r.plant} {r.fuel_type}" for r in inventory.itertuples()],
            {"t CO2e": inventory["co2e_t"]},
            "Scope 1 emissions",
            "t CO2e",
        )
    store(path, out, "ghg_inventory", "month", year, files, inventory, csv)

    # cems_fuel_reconciliation
    with part("warehouse reads"):  # the CEMS hours and the plant days through one connection, as the asset
        reads = {
            "hours": WindowRead("cems_hourly_emissions", "hour_start_utc", list(CEMS_COLUMNS)),
            "balance": report_read("plant_energy_balance"),
        }
        frames = read_frames(reader, reads, year)
        hours, stored_balance = frames["hours"], frames["balance"]
    with part("report functions + checks + summaries"):
        compared = cems_hours_in_balance_days(hours.astype(CEMS_COLUMNS), stored_balance, reporting.units, timezone)
        rec = reconciliation.reconcile(
            compared, stored_balance, reporting.units, reporting.reconciliation_tolerance_pct, timezone
        )
        reconciliation_checks(rec)
        _ = "".join(f"\n- {r.unit_name}: {r.difference_pct:+.2f} %" for r in rec.itertuples())
    with part("metadata charts"):
        bar_chart(
            list(rec["unit_name"]),
            {"CEMS": rec["cems_co2_t"].fillna(0), "fuel-based": rec["fuel_co2_t"].fillna(0)},
            "CO2: CEMS vs fuel",
            "t CO2",
        )
    store(path, out, "cems_fuel_reconciliation", "month", year, files, rec, csv)

    # emissions_intensity
    with part("warehouse reads"):  # the month's inventory and production through one connection, as the asset
        reads = {
            "inventory": report_read("ghg_inventory"),
            "production": WindowRead("erp_production", "posting_date", PRODUCTION_COLUMNS),
        }
        frames = read_frames(reader, reads, year)
        stored_inventory, production = frames["inventory"], frames["production"]
    with part("report functions + checks + summaries"):
        result = intensity.emissions_intensity(stored_inventory, production_frame(production), timezone)
        intensity_checks(result)
    with part("metadata charts"):
        bar_chart(
            list(result["plant"]),
            {"intensity": result["intensity_t_per_unit"].fillna(0)},
            "Emissions intensity",
            "t CO2e per unit",
        )
    store(path, out, "emissions_intensity", "month", year, files, result, csv)

    # monthly_report: the four reports loaded once for the range, one page pair per month
    with part("warehouse reads"):
        frames = stored_reports(reader, list(REPORT_COLUMNS), year)  # one connection, as the asset reads them
    no_results = pd.DataFrame(columns=["asset", "check", "partition", "run_id", "passed", "description"])
    for key, (start, end) in months.items():
        with part("HTML charts"):
            sections = [section(name, rows_in(frame, name, start, end), timezone) for name, frame in frames.items()]
        with part("HTML pages"):
            checks = write_html(out / "monthly" / f"checks_{key}.html", render_check_results(key, no_results))
            write_html(
                out / "monthly" / f"report_{key}.html",
                render_report(key, "bench", sections, {"data-quality check results": checks.name}),
            )


def measure(warehouse: Path, timezone: str, site, out: Path, csv: bool) -> tuple[list, list, list, int]:
    """REPEATS x (inputs alone, then all reports), interleaved so both see the same machine load."""
    base, ours, parts = [], [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        inputs_only(warehouse, timezone)
        base.append(time.perf_counter() - started)
        PARTS.clear()
        started = time.perf_counter()
        all_reports(warehouse, timezone, site, out, csv)
        ours.append(time.perf_counter() - started)
        parts.append(dict(PARTS))
    return base, ours, parts, len(list(out.rglob("*.*")))


def main() -> None:
    site = load_site_config()
    timezone = site.site.timezone
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "w.duckdb"
        seed(warehouse, timezone)
        # The setting's default (Parquet only) is the figure; the demo site also asks for CSV.
        for suffix, csv in [("", False), ("_with_csv", True)]:
            base, ours, parts, files = measure(warehouse, timezone, site, Path(tmp) / f"reports{suffix}", csv)
            best = int(np.argmin(ours))
            rows += [
                {
                    "figure": f"reports_one_year_wall{suffix}",
                    "value": round(ours[best], 3),
                    "unit": "s",
                    "runs_s": [round(x, 3) for x in ours],
                    "parts_s": {name: round(seconds, 3) for name, seconds in parts[best].items()},
                    "files_written": files,
                },
                {
                    "figure": f"input_read_one_year_wall{suffix}",
                    "value": round(min(base), 3),
                    "unit": "s",
                    "runs_s": [round(x, 3) for x in base],
                },
                {
                    "figure": f"reports_vs_input_read{suffix}",
                    "value": round(ours[best] / min(base), 2),
                    "unit": "ratio",
                    "target": "<= 2",
                    "inputs": {"erp_fuel_receipts": RECEIPTS_PER_YEAR, "cems_hours": 8760, "days": 365},
                },
            ]
    emit("reports", rows)


if __name__ == "__main__":
    main()
