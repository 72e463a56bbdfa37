"""cems_fuel_reconciliation on the real chains: CEMS on local standard time, the report on the plant month.

Demo DAHS files -> sensor -> cems_hourly_raw -> cems_hourly_emissions (LST days 2026-10-30 and
2026-10-31), and the demo plant's OPC UA server -> scada_readings -> scada_daily_summary ->
plant_energy_balance (plant day 2026-10-31), then the plant month 2026-10 from the real definitions.
In daylight time the two clocks are an hour apart: plant day 10-31 is 05:00Z..05:00Z, the last hour
of LST day 10-30 and the first 23 of LST day 10-31, whose last hour falls in the plant's November.
(The plant month 2026-11 would show the other case, but monthly partitions exist for complete months
only, and November is not complete on every clock these tests run on.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from dagster import (
    AllPartitionMapping,
    AssetKey,
    TimeWindowPartitionsDefinition,
    build_sensor_context,
    instance_for_test,
)

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import write_day
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG, cems_daily_partitions
from gl_pipelines.assets.reports import overlapping_partition_keys, site_monthly_partitions
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import load_site_config
from gl_pipelines.reporting.factors import fuel_factors
from gl_pipelines.resources.warehouse_reader import WINDOW_ROWS, WarehouseReader, WindowRead
from tests.runs import run

LST = -6
TZ = "America/Chicago"
MONTH = "2026-10-01"
MONTH_WINDOW = (datetime(2026, 10, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 5, tzinfo=UTC))
PLANT_DAY = (datetime(2026, 10, 31, 5, tzinfo=UTC), datetime(2026, 11, 1, 5, tzinfo=UTC))
SHORT_TON_T = 0.90718474
# The demo CEMS is built with Fc = 1,040 scf CO2/mmBtu (F-11 K 5.7e-7 tons/scf/%); the report's fuel side
# uses Table C-1's 53.06 kg CO2/mmBtu: on the same fuel energy CEMS reads 1.35 % higher.
CEMS_OVER_FUEL_PCT = 100 * (1_040 * 5.7e-5 * SHORT_TON_T / 53.06e-3 - 1)


def test_cems_days_gating_a_plant_month_are_those_overlapping_it():
    cems_days, months = cems_daily_partitions(LST), site_monthly_partitions(TZ)

    def keys(month):
        return overlapping_partition_keys(cems_days, months.time_window_for_partition_key(month))

    # November (CST = LST): the month starts 05:00Z Nov 1, the last hour of LST day Oct 31.
    november = keys("2026-11-01")
    assert (november[0], november[-1], len(november)) == ("2026-10-31", "2026-11-30", 31)
    assert "2026-10-30" not in november and "2026-12-01" not in november
    # July (CDT): the month starts in LST day Jun 30 and ends one hour into LST day Jul 31.
    july = keys("2026-07-01")
    assert (july[0], july[-1], len(july)) == ("2026-06-30", "2026-07-31", 32)
    # January: plant clock = LST, days align exactly.
    assert keys("2026-01-01") == [f"2026-01-{d:02d}" for d in range(1, 32)]
    # Before the first CEMS partition nothing is invented.
    assert keys("2025-01-01")[0] == "2025-01-01"
    # `get_partition_keys_in_time_window` alone would miss the straddling day.
    window = months.time_window_for_partition_key("2026-11-01")
    assert "2026-10-31" not in cems_days.get_partition_keys_in_time_window(window)


def test_every_partition_mapping_of_the_demo_definitions_resolves(tmp_path):
    """The bug this guards: a TimeWindowPartitionMapping across zones fails only at run time."""
    defs = build_definitions(load_site_config(), tmp_path / "w.duckdb")
    graph = defs.resolve_asset_graph()
    resolved = 0
    for key in graph.get_all_asset_keys():
        child = graph.get(key).partitions_def
        if not isinstance(child, TimeWindowPartitionsDefinition):
            continue
        partition = child.get_partition_key_for_timestamp(datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp())
        for parent in graph.get(key).parent_keys:
            parent_def = graph.get(parent).partitions_def
            if parent_def is None:
                continue
            mapping = graph.get_partition_mapping(key, parent)
            mapping.get_upstream_mapped_partitions_result_for_partitions(
                child.subset_with_partition_keys([partition]), child, parent_def
            )
            resolved += 1
    assert resolved >= 10
    cems_mapping = graph.get_partition_mapping(AssetKey("cems_fuel_reconciliation"), AssetKey("cems_hourly_emissions"))
    assert isinstance(cems_mapping, AllPartitionMapping)


def test_warehouse_reader_selects_a_utc_window_and_knows_a_missing_table(tmp_path):
    path = tmp_path / "w.duckdb"
    reader = WarehouseReader(database=str(path))
    window = (datetime(2026, 10, 1, tzinfo=ZoneInfo(TZ)), datetime(2026, 10, 1, 2, tzinfo=ZoneInfo(TZ)))
    assert reader.read_window("t", "ts", *window, ["ts"]) is None  # no file yet
    with duckdb.connect(str(path)) as con:
        con.execute("create schema plant; create table plant.t (ts timestamptz, v double)")
        for hour in range(3, 9):
            con.execute("insert into plant.t values (?, ?)", [datetime(2026, 10, 1, hour, tzinfo=UTC), hour])
    assert reader.read_window("other", "ts", *window, ["ts"]) is None
    # Plant midnight to 02:00 CDT is 05:00Z..07:00Z: two rows, whatever zone the bounds carry.
    assert list(reader.read_window("t", "ts", *window, ["v"])["v"]) == [5.0, 6.0]
    with pytest.raises(ValueError, match="timezone-aware"):
        naive = datetime.fromisoformat("2026-10-01T05:00")
        reader.read_window("t", "ts", naive, window[1], ["v"])
    # Several reads through one connection; a query runs inside the warehouse over the window's rows.
    reads = {
        "rows": WindowRead("t", "ts", ["v"]),
        "total": WindowRead("t", "ts", ["v"], f"SELECT sum(v) AS v, count(*) AS n FROM {WINDOW_ROWS}"),
        "missing": WindowRead("other", "ts", ["ts"]),
    }
    both = reader.read_windows(reads, *window)
    assert list(both["rows"]["v"]) == [5.0, 6.0] and both["missing"] is None
    assert both["total"].to_dict("records") == [{"v": 11.0, "n": 2}]


@pytest.fixture
def chain(cems_site, tmp_path):
    reporting = cems_site.reporting.model_copy(update={"reports_dir": str(tmp_path / "reports")})
    site = cems_site.model_copy(update={"reporting": reporting})
    with instance_for_test() as instance:
        yield site, instance, tmp_path / "w.duckdb"


def failure_text(result) -> str:
    return "\n".join(
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    )


def table(warehouse, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchdf()


def test_reconciliation_on_the_real_cems_and_scada_chains_and_blocked_by_a_failed_cems_check(chain):
    site, instance, warehouse = chain
    defs = build_definitions(site, warehouse)

    # CEMS: the DAHS files of LST days 10-30 and 10-31 (demo faults: substituted hours each day).
    for day in (date(2026, 10, 30), date(2026, 10, 31)):
        write_day(site.cems.dahs_drop_folder, "B1", day, LST)
    sensor = defs.resolve_sensor_def("cems_dahs_files")
    requests = sensor(build_sensor_context(instance=instance, definitions=defs)).run_requests
    assert len(requests) == 2
    raw = [run(defs, instance, ["cems_hourly_raw"], tags=dict(request.tags)) for request in requests]
    assert all(r.success for r in raw) and all(c.passed for r in raw for c in r.get_asset_check_evaluations())
    for day in ("2026-10-30", "2026-10-31"):
        emissions = run(defs, instance, ["cems_hourly_emissions"], partition_key=day)
        assert emissions.success, failure_text(emissions)

    # Plant: plant day 10-31 from the OPC UA demo plant.
    scada = run(
        defs,
        instance,
        ["scada_readings"],
        tags={RANGE_START_TAG: "2026-10-31-00:00", RANGE_END_TAG: "2026-10-31-23:00"},
    )
    assert scada.success
    assert run(defs, instance, ["scada_daily_summary", "plant_energy_balance"], partition_key="2026-10-31").success

    result = run(defs, instance, ["cems_fuel_reconciliation"], partition_key=MONTH)
    assert result.success, failure_text(result)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"reconciliation_non_negative": True, "reconciliation_within_tolerance": True}

    row = table(warehouse, "select * from plant.cems_fuel_reconciliation").iloc[0]
    # CEMS side: exactly the stored CEMS hours of the plant day the energy balance holds (the last hour
    # of LST day 10-30 and 23 of 10-31), short tons -> t. LST day 10-30's other 23 hours are stored and
    # in the plant month, but the plant has no fuel data for them; 10-31's last hour is November.
    stored_hours = table(warehouse, "select hour_start_utc, co2_mass_tons from plant.cems_hourly_emissions")
    at = stored_hours["hour_start_utc"]
    assert len(stored_hours) == 48
    in_day = stored_hours[(at >= PLANT_DAY[0]) & (at < PLANT_DAY[1])]
    assert len(in_day) == 24 and row.cems_hours == 24 and row.fuel_days == 1
    assert row.cems_co2_t == pytest.approx(in_day["co2_mass_tons"].sum() * SHORT_TON_T, rel=1e-12)
    # ... which is what the demo CEMS measured: the Fc-based CO2 of the same 24 fuel hours, within 1 %.
    fuel_tons = cems_model.fuel_co2_tons(cems_model.hour_starts(*PLANT_DAY)).sum()
    assert row.cems_co2_t == pytest.approx(fuel_tons * SHORT_TON_T, rel=0.01)
    # Fuel side: the stored energy balance x Table C-1.
    balance = table(warehouse, "select * from plant.plant_energy_balance").iloc[0]
    factor = fuel_factors("natural_gas").co2_kg_per_mmbtu / 1000
    assert row.fuel_co2_t == pytest.approx(balance.fuel_energy_mmbtu * factor, rel=1e-12)
    # The two sides agree within the configured tolerance, by the Fc-vs-Table C-1 offset +- 1 %.
    assert row.difference_pct == pytest.approx(CEMS_OVER_FUEL_PCT, abs=1.0)
    assert abs(row.difference_pct) <= site.reporting.reconciliation_tolerance_pct and bool(row.within_tolerance)

    meta = result.get_asset_materialization_events()[0].materialization.metadata
    # Gated and listed: the 32 LST days overlapping the plant month, Sep 30 (its last hour) to Oct 31.
    assert meta["cems_partitions"].value == ["2026-09-30", *(f"2026-10-{d:02d}" for d in range(1, 32))]
    assert meta["cems_partitions_missing"].value == ["2026-09-30", *(f"2026-10-{d:02d}" for d in range(1, 30))]
    assert meta["plant_days_missing"].value == [f"2026-10-{d:02d}" for d in range(1, 31)]
    in_month = (at >= MONTH_WINDOW[0]) & (at < MONTH_WINDOW[1])
    assert meta["cems_rows_read"].value == in_month.sum() == 47 and meta["cems_rows_compared"].value == 24

    # A month with no data on either side is refused, not reported empty.
    empty = run(defs, instance, ["cems_fuel_reconciliation"], partition_key="2026-09-01")
    assert not empty.success and "no CEMS day (2026-08-31..2026-09-30) and no plant day" in failure_text(empty)

    # A unit added to the monitoring plan before its DAHS export exists: LST day 10-31 is recomputed
    # without B2's hours and its blocking coverage check fails; the plant month is refused, naming it.
    b2 = site.cems.units[0].model_copy(update={"unit_id": "B2"})
    grown = site.model_copy(update={"cems": site.cems.model_copy(update={"units": [*site.cems.units, b2]})})
    recomputed = run(
        build_definitions(grown, warehouse), instance, ["cems_hourly_emissions"], partition_key="2026-10-31"
    )
    coverage = {c.check_name: c.passed for c in recomputed.get_asset_check_evaluations()}
    assert coverage["cems_emissions_hour_coverage"] is False
    stored = table(warehouse, "select * from plant.cems_fuel_reconciliation")
    blocked = run(defs, instance, ["cems_fuel_reconciliation"], partition_key=MONTH)
    assert not blocked.success
    message = failure_text(blocked)
    assert "blocked: 1 blocking check result(s)" in message
    assert "cems_emissions_hour_coverage[2026-10-31]: failed" in message  # 10-30 passed: not named
    pd.testing.assert_frame_equal(table(warehouse, "select * from plant.cems_fuel_reconciliation"), stored)
    records = instance.fetch_materializations(AssetKey("cems_fuel_reconciliation"), limit=10).records
    assert len(records) == 1
