"""A single-site file (the demo's config/demo_site.yaml) loads offline and has the shape the rest of the
project relies on; the defs folder's instances are in tests/test_components.py."""

from datetime import timedelta

from dagster import AssetKey

from gl_pipelines.assets.partitions import utc_window
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import load_site_config

defs = build_definitions(load_site_config(), "unused.duckdb")  # nothing opens the warehouse at load

PARENTS = {
    "scada_readings": set(),
    "scada_daily_summary": {"scada_readings"},
    "meter_readings": set(),
    "meter_hourly_consumption": {"meter_readings"},
    "historian_recorded": set(),
    "erp_fuel_receipts": set(),
    "erp_production": set(),
    "erp_materials": set(),
    "erp_plants": set(),
    "cems_hourly_raw": set(),
    "cems_campd_hourly": set(),
    "cems_epa_quarterly": {"cems_campd_hourly"},
    "cems_hourly_emissions": {"cems_hourly_raw"},
    "cems_daily_emissions": {"cems_hourly_emissions"},
    "cems_quarterly_emissions": {"cems_hourly_emissions"},
    "plant_energy_balance": {"scada_daily_summary"},
    "ghg_inventory": {"erp_fuel_receipts"},
    "cems_fuel_reconciliation": {"cems_hourly_emissions", "plant_energy_balance"},
    "emissions_intensity": {"ghg_inventory", "erp_production"},
    "monthly_report": {"plant_energy_balance", "ghg_inventory", "cems_fuel_reconciliation", "emissions_intensity"},
}

# A flagged month must still reach the monthly report: the tolerance check warns, it does not block.
NON_BLOCKING_CHECKS = {("cems_fuel_reconciliation", "reconciliation_within_tolerance")}


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == set(PARENTS)
    for name, parents in PARENTS.items():
        assert {key.to_user_string() for key in graph.get(AssetKey(name)).parent_keys} == parents, name
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        ("scada_readings", "scada_readings_expectations"),
        ("scada_readings", "scada_readings_completeness"),
        ("meter_readings", "meter_readings_complete"),
        ("meter_readings", "meter_readings_in_range"),
        ("meter_hourly_consumption", "meter_consumption_non_negative"),
        ("historian_recorded", "historian_recorded_expectations"),
        ("historian_recorded", "historian_recorded_completeness"),
        ("erp_fuel_receipts", "erp_fuel_receipts_keys_unique"),
        ("erp_fuel_receipts", "erp_fuel_receipts_quantity_non_negative"),
        ("erp_fuel_receipts", "erp_fuel_receipts_units_known"),
        ("erp_fuel_receipts", "erp_fuel_receipts_in_window"),
        ("erp_fuel_receipts", "erp_fuel_receipts_currency_present"),
        ("erp_production", "erp_production_keys_unique"),
        ("erp_production", "erp_production_quantity_non_negative"),
        ("erp_production", "erp_production_units_known"),
        ("erp_production", "erp_production_in_window"),
        ("erp_materials", "erp_materials_keys_unique"),
        ("erp_materials", "erp_materials_units_known"),
        ("erp_plants", "erp_plants_keys_unique"),
        ("cems_hourly_raw", "cems_raw_hour_coverage"),
        ("cems_hourly_raw", "cems_raw_no_duplicate_unit_hour"),
        ("cems_hourly_raw", "cems_raw_op_time_in_range"),
        ("cems_hourly_raw", "cems_raw_values_in_range"),
        ("cems_hourly_emissions", "cems_emissions_hour_coverage"),
        ("cems_hourly_emissions", "cems_emissions_pma_reported"),
        ("plant_energy_balance", "energy_balance_closes"),
        ("plant_energy_balance", "energy_balance_non_negative"),
        ("ghg_inventory", "ghg_no_negative_emissions"),
        ("cems_fuel_reconciliation", "reconciliation_non_negative"),
        ("cems_fuel_reconciliation", "reconciliation_within_tolerance"),
        ("emissions_intensity", "intensity_non_negative"),
    }
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).blocking == (
            (key.asset_key.to_user_string(), key.name) not in NON_BLOCKING_CHECKS
        )


def test_partitions_are_hour_beginning_on_the_plant_clock():
    readings = defs.resolve_assets_def("scada_readings")
    window = utc_window(readings.partitions_def.time_window_for_partition_key("2026-11-01-03:00"))
    assert [moment.isoformat() for moment in window] == ["2026-11-01T09:00:00+00:00", "2026-11-01T10:00:00+00:00"]
    assert readings.backfill_policy.max_partitions_per_run is None  # single run


def test_fall_back_day_has_25_distinct_hours():
    readings = defs.resolve_assets_def("scada_readings").partitions_def
    day = defs.resolve_assets_def("scada_daily_summary").partitions_def.time_window_for_partition_key("2026-11-01")
    keys = readings.get_partition_keys_in_time_window(day)
    assert len(keys) == 25 and "2026-11-01-01:00-0600" in keys
    windows = [utc_window(readings.time_window_for_partition_key(key)) for key in keys]
    assert all(end - start == timedelta(hours=1) for start, end in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    spring = defs.resolve_assets_def("scada_daily_summary").partitions_def.time_window_for_partition_key("2026-03-08")
    assert len(readings.get_partition_keys_in_time_window(spring)) == 23


def test_resources_configured_without_secrets_in_plain_config():
    opcua = defs.resources["opcua"]
    assert opcua.password is None and opcua.endpoint.startswith("opc.tcp://")


def test_operations_wiring():
    assert {schedule.name for schedule in defs.schedules} == {
        "scada_hourly_job_schedule",
        "meter_hourly_job_schedule",
        "historian_daily_job_schedule",
        "erp_daily_job_schedule",
        "erp_master_data_job_schedule",
        "cems_daily_job_schedule",
        "reports_daily_job_schedule",
        "reports_monthly_job_schedule",
    }
    monthly = defs.resolve_schedule_def("reports_monthly_job_schedule")
    assert (monthly.cron_schedule, monthly.execution_timezone) == ("0 6 1 * *", "America/Chicago")
    assert {sensor.name for sensor in defs.sensors} == {
        "source_health",
        "run_failure_alert",
        "alert_redelivery",
        "plant_automation",
        "cems_dahs_files",
        "cems_open_gaps",
        "erp_document_changes",
    }
    readings = defs.resolve_assets_def("scada_readings")
    freshness = next(iter(readings.specs)).freshness_policy
    assert freshness.fail_window.to_timedelta() == timedelta(hours=3)
    summary = defs.resolve_assets_def("scada_daily_summary")
    condition = summary.automation_conditions_by_key[summary.key]
    assert [child.get_label() for child in condition.children] == ["eager", "every_upstream_partition_checks_passed"]
    job = defs.resolve_job_def("scada_hourly_job")
    assert job.tags["gl/opcua-server"] == "127.0.0.1:4840"
    for key in [readings.key, summary.key]:
        assert defs.resolve_assets_def(key).op.pool == "duckdb_warehouse"
