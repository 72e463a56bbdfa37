"""CEMS end to end, in process: demo DAHS files -> sensor -> cems_hourly_raw -> emissions -> reports."""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from dagster import build_sensor_context, instance_for_test

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import lst_day_window, write_day
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.components.site_file import build_definitions
from tests.epa_data import EPA_DIR
from tests.runs import run

DAY = date(2026, 11, 1)  # US fall-back day: 25 hours in Chicago, 24 in local standard time
DAY_KEY = "2026-11-01"
LST = -6


@pytest.fixture
def cems(cems_site, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with instance_for_test() as instance:
        yield build_definitions(cems_site, warehouse), instance, warehouse, cems_site.cems


def tick(defs, instance, cursor=None):
    sensor = defs.resolve_sensor_def("cems_dahs_files")
    return sensor(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))


def load_files(defs, instance, cursor=None):
    """One sensor tick, then every run it asked for; returns (result, runs)."""
    result = tick(defs, instance, cursor)
    runs = [run(defs, instance, ["cems_hourly_raw"], tags=dict(request.tags)) for request in result.run_requests]
    return result, runs


def table(warehouse, name, order="unit_id, hour_start_utc"):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"select * from plant.{name} order by {order}").fetchdf()


def failure_text(result) -> str:
    return "\n".join(
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    )


def test_demo_day_through_sensor_raw_emissions_and_reports(cems):
    defs, instance, warehouse, source = cems
    write_day(source.dahs_drop_folder, "B1", DAY, LST)
    result, runs = load_files(defs, instance)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    # CEMS partitions are local standard time (UTC-6 all year): the LST day is 06:00Z..06:00Z.
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-01-00:00", "2026-11-01-23:00")
    assert all(r.success for r in runs)
    assert all(c.passed for r in runs for c in r.get_asset_check_evaluations())

    raw = table(warehouse, "cems_hourly_raw")
    assert len(raw) == 24 and raw["source_ref"].str.match(r"GLDAHS_B1_20261101\.csv@[0-9a-f]{12}:\d+$").all()
    assert (raw["co2_status"] == "calibration_failed").sum() == 1
    assert (raw["flow_status"] == "missing").sum() == 2
    raw_metadata = runs[0].get_asset_materialization_events()[0].materialization.metadata
    assert (raw_metadata["rows_good"].value, raw_metadata["rows_bad"].value) == (20, 4)
    assert raw_metadata["files"].value == [raw["source_ref"].iloc[0].rsplit(":", 1)[0]]
    assert re.fullmatch(r"[0-9a-f]{64}", raw_metadata["payload_sha256"].value)

    emissions_run = run(defs, instance, ["cems_hourly_emissions"], partition_key=DAY_KEY)
    assert emissions_run.success, failure_text(emissions_run)
    emissions = table(warehouse, "cems_hourly_emissions")
    assert len(emissions) == 24
    lst_hour = pd.to_datetime(emissions["hour_start_lst"]).dt.hour
    # Failed calibration and missing hours are substituted and flagged with their method.
    assert emissions.loc[lst_hour == 7, "co2_method"].str.startswith("sub_").all()
    assert emissions.loc[lst_hour.isin([20, 21]), "flow_method"].str.startswith("sub_").all()
    assert emissions.loc[lst_hour == 15, "so2_method"].str.startswith("sub_").all()
    assert (emissions.loc[~lst_hour.isin([7]), "co2_method"] == "measured").all()
    assert emissions["stack_flow_scfh"].notna().all() and emissions["co2_mass_tons"].gt(0).all()
    assert run(defs, instance, ["cems_hourly_emissions"], partition_key=DAY_KEY).success  # a re-run replaces
    assert len(table(warehouse, "cems_hourly_emissions")) == 24

    daily_run = run(defs, instance, ["cems_daily_emissions"], partition_key=DAY_KEY)
    assert daily_run.success, failure_text(daily_run)
    daily = table(warehouse, "cems_daily_emissions", order="unit_id").iloc[0]
    assert daily["co2_mass_tons"] == pytest.approx(emissions["co2_mass_tons"].sum())
    assert daily["operating_hours_count"] == 24 and daily["op_hours"] == 24
    substituted = {p: daily[f"{p}_substituted_hours"] for p in ("co2", "flow", "so2", "nox")}
    assert substituted == {"co2": 1, "flow": 2, "so2": 1, "nox": 0}
    # The first day of data: PMA counts its own hours only (23 of 24 quality-assured for CO2).
    assert daily["pma_co2"] == pytest.approx(100 * 23 / 24) and daily["pma_flow"] == pytest.approx(100 * 22 / 24)
    metadata = daily_run.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["chart"].value.startswith("![hourly CO2 2026-11-01](data:image/svg+xml;base64,")

    # Demo CEMS CO2 agrees with the fuel-based CO2 of the same hours (OPC UA FuelGasFlow x HHV x Fc),
    # within 1 %: analyzer noise is +-0.3 %, F-11's 5.7e-7 vs 44/385/2000 is 0.25 %, and the
    # substituted hours differ from the true ones by a few %, over 4 of 24 hours.
    start, end = lst_day_window(DAY, LST)
    fuel_co2 = cems_model.fuel_co2_tons(cems_model.hour_starts(start, end)).sum()
    assert daily["co2_mass_tons"] == pytest.approx(fuel_co2, rel=0.01)
    # Heat input from CO2 (F-15) closes against fuel x HHV the same way.
    fuel_heat = cems_model.fuel_heat_input_mmbtu(cems_model.hour_starts(start, end)).sum()
    assert daily["heat_input_mmbtu"] == pytest.approx(fuel_heat, rel=0.01)

    quarter_run = run(defs, instance, ["cems_quarterly_emissions"], partition_key="2026-10-01")
    assert quarter_run.success, failure_text(quarter_run)
    quarter = table(warehouse, "cems_quarterly_emissions", order="unit_id").iloc[0]
    assert quarter["co2_mass_tons"] == pytest.approx(daily["co2_mass_tons"]) and quarter["days_computed"] == 1
    quarter_metadata = quarter_run.get_asset_materialization_events()[0].materialization.metadata
    # Quarter to date: the days from 2026-10-01 to yesterday (LST) that were not computed are listed.
    assert quarter_metadata["days_missing"].value > 50 and "2026-10-01" in quarter_metadata["days_missing_list"].value
    assert "data:image/svg+xml;base64," in quarter_metadata["chart"].value


def test_fault_free_demo_co2_matches_fuel_within_half_a_percent():
    start, end = lst_day_window(DAY, LST)
    hours = cems_model.hour_starts(start, end)
    frame = cems_model.cems_hours("B1", start, end)
    cems_co2 = (5.7e-7 * frame["co2_pct"] * frame["stack_flow_scfh"]).to_numpy()  # F-11, wet basis
    fuel_co2 = cems_model.fuel_co2_tons(hours)
    assert cems_co2.sum() == pytest.approx(fuel_co2.sum(), rel=0.005)
    assert cems_co2 == pytest.approx(fuel_co2, rel=0.01)


def test_rerun_replaces_the_partition_and_rewritten_file_is_reprocessed(cems):
    defs, instance, warehouse, source = cems
    (path,) = write_day(source.dahs_drop_folder, "B1", DAY, LST)
    first, _ = load_files(defs, instance)
    assert len(first.run_requests) == 1

    # Nothing changed: nothing to do. A touched file with the same bytes asks for nothing either.
    again = tick(defs, instance, first.cursor)
    assert not again.run_requests and "no new or changed DAHS files" in again.skip_reason.skip_message
    path.touch()
    assert not tick(defs, instance, first.cursor).run_requests

    # The DAHS rewrites the day without its faults: reprocessed, the partitions replaced, not duplicated.
    write_day(source.dahs_drop_folder, "B1", DAY, LST, faults=None)
    second, runs = load_files(defs, instance, first.cursor)
    assert len(second.run_requests) == 1 and all(r.success for r in runs)
    raw = table(warehouse, "cems_hourly_raw")
    assert len(raw) == 24 and (raw["co2_status"] == "valid").all() and (raw["flow_status"] == "valid").all()
    assert raw["source_ref"].str.contains(second.run_requests[0].run_key.split("@")[1][:12]).all()

    # Re-running the same partitions again replaces them: still 24 rows.
    assert all(r.success for r in [run(defs, instance, ["cems_hourly_raw"], tags=dict(second.run_requests[0].tags))])
    assert len(table(warehouse, "cems_hourly_raw")) == 24


def test_malformed_file_is_quarantined_named_and_never_loaded(cems):
    """Every malformed kind is refused by the parser (tests/cems/test_dahs.py); here one goes the whole way."""
    kind = "non_numeric"
    from gl_demo_plant.cems_dahs import write_malformed

    defs, instance, warehouse, source = cems
    path, line = write_malformed(source.dahs_drop_folder, "B1", DAY, LST, kind)
    result = tick(defs, instance)
    assert not result.run_requests
    message = result.skip_reason.skip_message
    assert f"{path.name}, line {line}" in message
    assert not path.exists()
    quarantined = [p for p in source.quarantine_folder.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(quarantined) == 1 and quarantined[0].name.endswith(path.name)
    assert f"line {line}" in (source.quarantine_folder / f"{quarantined[0].name}.reason.txt").read_text()
    (observation,) = result.asset_events
    assert observation.metadata["line"].value == line and observation.metadata["file"].value == path.name
    assert not (source.accepted_folder / "index").exists()
    assert not warehouse.exists()


def test_missing_hours_fail_the_coverage_check_and_block_the_reports(cems):
    defs, instance, warehouse, source = cems
    start, end = lst_day_window(DAY, LST)
    hours = cems_model.hour_starts(start, end)
    faults = cems_model.CemsFaults(dropped_hours=frozenset(hours[10:12]))
    write_day(source.dahs_drop_folder, "B1", DAY, LST, faults=faults)
    _, runs = load_files(defs, instance)
    coverage = [c for r in runs for c in r.get_asset_check_evaluations() if c.check_name == "cems_raw_hour_coverage"]
    run_wide = [c for c in coverage if c.partition is None]  # the others: the same verdict per hour (checks.wap)
    assert len(run_wide) == 1 and not run_wide[0].passed and not any(c.passed for c in coverage)
    coverage = run_wide
    assert "B1 2026-11-01T16:00:00+00:00" in coverage[0].description

    result = run(defs, instance, ["cems_hourly_emissions", "cems_daily_emissions"], partition_key=DAY_KEY)
    assert not result.success
    # The file's hours were checked in one run, so its failed coverage blocks every hour it wrote.
    assert re.search(r"blocked: .*cems_raw_hour_coverage\[2026-11-01-00:00\]: failed", failure_text(result))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
    assert "cems_hourly_emissions" not in tables and "cems_daily_emissions" not in tables


def test_plc_block_fills_the_hour_just_closed(cems, demo_cems_plc):
    defs, instance, warehouse, source = cems
    hourly = defs.resolve_assets_def("cems_hourly_raw").partitions_def

    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 50:  # let the hour turn first: the PLC block follows the clock
        time.sleep(61 - now.second)
    closed = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    key = hourly.get_partition_key_for_timestamp(closed.timestamp())
    requests_before, writes_before = demo_cems_plc.requests, demo_cems_plc.writes_rejected
    result = run(defs, instance, ["cems_hourly_raw"], partition_key=key)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    raw = table(warehouse, "cems_hourly_raw")
    assert list(raw["source"]) == ["plc"] and raw["hour_start_utc"].iloc[0] == pd.Timestamp(closed)
    expected = cems_model.cems_hours("B1", closed, closed + timedelta(hours=1), cems_model.demo_faults([closed], LST))
    assert raw["co2_pct"].iloc[0] == pytest.approx(expected["co2_pct"].iloc[0], rel=1e-6)
    # The server is shared by the session (a test in tests/cems writes on purpose): our read wrote nothing.
    assert demo_cems_plc.requests > requests_before and demo_cems_plc.writes_rejected == writes_before

    # An older hour is never filled from the PLC: its block only holds the latest hour.
    older = hourly.get_partition_key_for_timestamp((closed - timedelta(hours=5)).timestamp())
    result = run(defs, instance, ["cems_hourly_raw"], partition_key=older)
    coverage = next(c for c in result.get_asset_check_evaluations() if c.check_name == "cems_raw_hour_coverage")
    assert not coverage.passed


EPA_FILE = EPA_DIR / "langley_gulch_57028_CT1_2018_hourly.csv"


@pytest.mark.skipif(not EPA_FILE.exists(), reason="needs ../shared/data/epa (real EPA files)")
def test_campd_history_loads_real_epa_file_and_reload_replaces_it(cems):
    defs, instance, warehouse, source = cems
    source.epa_folder.mkdir()
    shutil.copy(EPA_FILE, source.epa_folder / EPA_FILE.name)
    for _ in range(2):  # a reload replaces the table, never appends
        result = run(defs, instance, ["cems_campd_hourly"])
        assert result.success, failure_text(result)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, units, co2 = con.execute(
            "select count(*), count(distinct unit_id), sum(co2_mass_tons) from plant.cems_campd_hourly"
        ).fetchone()
    published = pd.read_csv(EPA_FILE)
    assert rows == len(published) == 8760 and units == 1
    assert co2 == pytest.approx(published["CO2_MASS (tons)"].sum())
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["source_endpoint"].value == f"file://{source.epa_folder}"
    assert "data:image/svg+xml;base64," in metadata["chart"].value


def test_campd_with_no_files_fails_and_keeps_the_table(cems):
    defs, instance, _, source = cems
    source.epa_folder.mkdir()
    result = run(defs, instance, ["cems_campd_hourly"])
    assert not result.success and "no EPA .csv or .zip files" in failure_text(result)


def test_appendix_d_unit_through_sensor_raw_emissions_and_reports(cems_site, tmp_path):
    """A fuel-metered gas turbine (Appendix D) with a DAHS file carrying FUEL_FLOW: the assets and their
    blocking checks take it through to the daily and quarterly reports. By hand, each of the 24 hours:
    D-6 20,000 x 102,000 / 1e6 = 2,040 mmBtu; D-5 0.0006 x 2,040 = 1.224 lb SO2; G-4 1,040 x 2,040 /
    385 x 44 / 2,000 = 121.234286 t CO2; NOx 0.05 lb/mmBtu x 2,040 = 102 lb."""
    from tests.cems.test_appendix_d_chain import GAS, HEADER, row

    site = cems_site.model_copy(update={"cems": cems_site.cems.model_copy(update={"units": [GAS]})})
    lines = [row("GT2", hour, "1.00", "0.050", "20000", "V") for hour in range(24)]
    (site.cems.dahs_drop_folder / "GLDAHS_GT2_20261101.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    with instance_for_test() as instance:
        defs = build_definitions(site, tmp_path / "w.duckdb")
        _, runs = load_files(defs, instance)
        assert runs and all(r.success for r in runs), [failure_text(r) for r in runs]
        raw = table(tmp_path / "w.duckdb", "cems_hourly_raw")
        assert len(raw) == 24 and (raw["fuel_flow"] == 20_000.0).all()
        for asset, key in (("cems_hourly_emissions", DAY_KEY), ("cems_daily_emissions", DAY_KEY)):
            result = run(defs, instance, [asset], partition_key=key)
            assert result.success, failure_text(result)
        quarter_run = run(defs, instance, ["cems_quarterly_emissions"], partition_key="2026-10-01")
        assert quarter_run.success, failure_text(quarter_run)
    emissions = table(tmp_path / "w.duckdb", "cems_hourly_emissions")
    assert emissions["heat_input_mmbtu"].tolist() == pytest.approx([2_040.0] * 24)
    assert set(emissions["so2_method"]) == {"appendix_d"} and set(emissions["flow_method"]) == {"not_used"}
    for name in ("cems_daily_emissions", "cems_quarterly_emissions"):
        report = table(tmp_path / "w.duckdb", name, order="unit_id").iloc[0]
        assert report["heat_input_mmbtu"] == pytest.approx(48_960.0)
        assert report["so2_mass_lb"] == pytest.approx(29.376)
        assert report["co2_mass_tons"] == pytest.approx(2_909.622857, abs=1e-5)
        assert report["nox_mass_lb"] == pytest.approx(2_448.0)
