"""The demo's own defs folder: two sites, two OPC UA servers at the first, and the SAP instance's CMMS and MES
entity sets extracted from the demo SAP service by YAML alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
from dagster import AssetKey, DagsterInstance, Definitions, load_from_defs_folder, materialize

import gl_pipelines
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SERVICE_PATH
from gl_pipelines.components.shared import shared_definitions
from gl_pipelines.resources.warehouse import table_name

DAY = "2026-11-01"  # the US fall-back day: 25 hours on the demo plant's clock


def demo_defs(warehouse: Path) -> Definitions:
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(gl_pipelines.__file__).parent), shared_definitions(warehouse)
    )


def test_demo_declares_two_sites_and_two_opcua_servers(tmp_path):
    defs = demo_defs(tmp_path / "w.duckdb")
    readings = {
        key.path[0] + "/" + key.path[1]
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[-1] == "scada_readings"
    }
    assert readings == {"demo_plant/boiler1_opcua", "demo_plant/boiler2_opcua", "north_plant/line1_opcua"}
    zones = {schedule.name.split("__")[0]: schedule.execution_timezone for schedule in defs.schedules}
    assert zones["demo_plant"] == "America/Chicago" and zones["north_plant"] == "Europe/Berlin"
    line1 = defs.resolve_assets_def(AssetKey(["north_plant", "line1_opcua", "scada_readings"]))
    assert (
        line1.owners_by_key[line1.key] == ["team:north-operations"]
        and line1.group_names_by_key[line1.key] == "north_plant"
    )
    changes = defs.resolve_sensor_def("demo_plant__sap__erp_document_changes")
    assert changes.job_name == "demo_plant__sap__erp_daily_job"
    assert changes.required_resource_keys == {"odata__demo_plant__sap", "warehouse_reader"}
    balance = defs.resolve_assets_def(AssetKey(["demo_plant", "reports", "plant_energy_balance"]))
    assert balance.asset_deps[balance.key] == {AssetKey(["demo_plant", "boiler1_opcua", "scada_daily_summary"])}
    # the reports find the CEMS instance
    reconciliation = defs.resolve_assets_def(AssetKey(["demo_plant", "reports", "cems_fuel_reconciliation"]))
    assert AssetKey(["demo_plant", "cems", "cems_hourly_emissions"]) in reconciliation.asset_deps[reconciliation.key]
    # The north plant starts later than the demo plant (its site's history_start).
    assert line1.partitions_def.get_first_partition_key() == "2026-01-01-00:00"
    # Its reports: Line 1's energy balance on Berlin days, beside the demo plant's on Chicago days.
    north = defs.resolve_assets_def(AssetKey(["north_plant", "reports", "plant_energy_balance"]))
    assert north.asset_deps[north.key] == {AssetKey(["north_plant", "line1_opcua", "scada_daily_summary"])}
    assert north.partitions_def.timezone == "Europe/Berlin" and balance.partitions_def.timezone == "America/Chicago"
    assert north.partitions_def.get_first_partition_key() == "2026-01-01"
    boiler2 = defs.resolve_assets_def(AssetKey(["demo_plant", "boiler2_opcua", "scada_readings"]))
    assert boiler2.partitions_def.get_first_partition_key() == "2025-01-01-00:00"


def test_cmms_and_mes_entity_sets_from_the_demo_sap_service(erp_service, monkeypatch, tmp_path):
    monkeypatch.setenv("GL_ERP_URL", erp_service.url + SERVICE_PATH)
    monkeypatch.setenv("GL_ERP_CLIENT_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GL_ERP_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    warehouse = tmp_path / "w.duckdb"
    defs = demo_defs(warehouse)
    keys = [AssetKey(["demo_plant", "sap", "work_orders"]), AssetKey(["demo_plant", "sap", "production_orders"])]
    result = materialize(
        [defs.resolve_assets_def(key) for key in keys], partition_key=DAY, instance=DagsterInstance.ephemeral()
    )
    assert result.success
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        orders = connection.execute(
            f"SELECT order_type, count(*) FROM plant.{table_name(keys[0])} GROUP BY 1 ORDER BY 1"
        ).fetchall()
        planned = connection.execute(
            f"SELECT production_order, target_quantity FROM plant.{table_name(keys[1])}"
        ).fetchall()
    # The demo creates one maintenance order per 8-hour shift (UTC 00/08/16); the 25-hour Chicago day holds 3 or 4.
    assert sum(count for _, count in orders) in (3, 4) and {kind for kind, _ in orders} == {"PM01", "PM02"}
    # Day 669 after 2025-01-01; 20 h at the demo boiler's full load of 50 t/h, exact.
    assert planned == [("000001000669", Decimal("1000.000"))]
