"""Two sites' reports in one code location: each under its own `<site>/<instance>` keys, tables, jobs and
export folder, each following its own site's day (Chicago vs Berlin), from the demo OPC UA server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from gl_pipelines.reporting.check_results import stored_check_results
from gl_pipelines.reporting.exports import read_parquet
from tests.components.project import OPCUA, SITE, load_project
from tests.expected import expected_readings
from tests.runs import run

DAY = "2026-11-01"  # Chicago falls back that day (25 hours); Berlin fell back the week before (24 hours)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
TAGS = ["Boiler1.FuelGasFlow", "Boiler1.SteamFlow"]
MMBTU_GJ = 1.055056
REPORTS = """type: gl_pipelines.components.reports.ReportsComponent
attributes:
  inputs: {{readings: boiler}}
  reports_dir: {reports_dir}
  energy_balance: {{fuel_hhv: 0.0378 GJ/m**3, steam_enthalpy_rise: 2.75 GJ/t}}
  units:
    - {{name: Boiler1, fuel_flow_tag: Boiler1.FuelGasFlow, steam_flow_tag: Boiler1.SteamFlow}}
"""
ZONES = {"chicago": "America/Chicago", "berlin": "Europe/Berlin"}
# Each site's plant day 2026-11-01 as a UTC window: local midnight to local midnight.
WINDOWS = {
    "chicago": (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC)),
    "berlin": (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 1, 23, tzinfo=UTC)),
}


def files(endpoint: str, reports_dir: Path) -> dict[str, str]:
    server = OPCUA.format(endpoint=endpoint) + (
        '    - {name: Boiler1.FuelGasFlow, node_id: "ns=2;s=Boiler1.FuelGasFlow", unit: m**3/h, min: 0, max: 5000}\n'
    )
    declared = {}
    for site, zone in ZONES.items():
        declared[f"{site}/site/defs.yaml"] = SITE.format(timezone=zone)
        declared[f"{site}/boiler/defs.yaml"] = server
        declared[f"{site}/reports/defs.yaml"] = REPORTS.format(reports_dir=reports_dir)
    return declared


@pytest.fixture
def two_sites(plant, tmp_path):
    return load_project(tmp_path, files(plant.endpoint, tmp_path / "reports")), tmp_path


def test_two_sites_reports_are_named_per_instance_and_scheduled_on_their_own_clock(two_sites):
    defs, _ = two_sites
    for site, zone in ZONES.items():
        balance = defs.resolve_assets_def(AssetKey([site, "reports", "plant_energy_balance"]))
        assert balance.partitions_def.timezone == zone
        assert balance.asset_deps[balance.key] == {AssetKey([site, "boiler", "scada_daily_summary"])}
        assert {check.name for check in balance.check_keys} == {"energy_balance_closes", "energy_balance_non_negative"}
        assert balance.group_names_by_key[balance.key] == site
        monthly = defs.resolve_assets_def(AssetKey([site, "reports", "monthly_report"]))
        assert monthly.asset_deps[monthly.key] == {balance.key}
        for job in ("reports_daily_job", "reports_monthly_job"):
            schedule = defs.resolve_schedule_def(f"{site}__reports__{job}_schedule")
            assert schedule.execution_timezone == zone
    # No short report key is left for one site to take.
    assert not [key for key in defs.resolve_asset_graph().get_all_asset_keys() if len(key.path) == 1]


def test_each_site_reports_its_own_plant_day(two_sites, plant):
    defs, root = two_sites
    instance = DagsterInstance.ephemeral()
    results = {}
    for site in ZONES:
        readings = AssetKey([site, "boiler", "scada_readings"])
        hours = {RANGE_START: f"{DAY}-00:00", RANGE_END: f"{DAY}-23:00"}
        assert run(defs, instance, [readings], tags=hours).success
        summary = AssetKey([site, "boiler", "scada_daily_summary"])
        assert run(defs, instance, [summary], partition_key=DAY).success
        results[site] = run(defs, instance, [AssetKey([site, "reports", "plant_energy_balance"])], partition_key=DAY)
        assert results[site].success
        assert all(check.passed for check in results[site].get_asset_check_evaluations())

    for site, (start, end) in WINDOWS.items():
        with duckdb.connect(str(root / "w.duckdb"), read_only=True) as con:
            stored = con.sql(f"select * from plant.{site}__reports__plant_energy_balance").df()
        assert len(stored) == 1
        row = stored.iloc[0]
        # The row is the site's own day: it starts at the site's local midnight and holds its hours.
        assert pd.Timestamp(row.day) == pd.Timestamp(start)
        hours = (end - start).total_seconds() / 3600
        model = expected_readings(TAGS, start, end)
        good = model[model["status_code"] == 0].groupby("tag")["value"].mean()
        assert row.steam_energy_mmbtu == pytest.approx(good["Boiler1.SteamFlow"] * hours * 2.75 / MMBTU_GJ, rel=1e-9)
        assert row.fuel_energy_mmbtu == pytest.approx(good["Boiler1.FuelGasFlow"] * hours * 0.0378 / MMBTU_GJ, rel=1e-9)

        (event,) = results[site].get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert (metadata["window_start"].value, metadata["window_end"].value) == (start.isoformat(), end.isoformat())
        # The export is the site's own file, holding the site's row.
        export = Path(metadata["export_parquet"].value)
        assert (
            export
            == root / "reports" / site / "reports" / "plant_energy_balance" / "plant_energy_balance_2026-11.parquet"
        )
        assert read_parquet(export)["steam_energy_mmbtu"].tolist() == pytest.approx([row.steam_energy_mmbtu])
        # The monthly page's check results find an instance's checks by its prefixed key (a `site/instance/name`
        # user string too, as the page lists upstream assets).
        results_of = stored_check_results(instance, f"{site}/reports/plant_energy_balance", [DAY])
        assert sorted(results_of["check"]) == ["energy_balance_closes", "energy_balance_non_negative"]
        assert results_of["passed"].all() and set(results_of["asset"]) == {f"{site}/reports/plant_energy_balance"}
        hour = f"{DAY}-12:00"
        assert not stored_check_results(instance, AssetKey([site, "boiler", "scada_readings"]), [hour]).empty
