"""Sources declared as YAML instances: names carry site and instance, each site keeps its clock, any OData
entity set is an asset by YAML alone, and a bad defs.yaml fails naming file, line and field."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, EnvVar, materialize

from gl_demo_plant.http_server import HttpServerThread
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.scrub import MASK, scrub
from tests.components.gwsample import SERVICE_PATH, gwsample_app
from tests.components.project import OPCUA, SITE, load_project, write_project

REPO = Path(__file__).resolve().parents[2]

TWO_SITES = {
    "plant_a/site/defs.yaml": SITE.format(timezone="America/Chicago"),
    "plant_a/unit1/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a"),
    "plant_a/unit2/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4841/b"),
    "plant_b/site/defs.yaml": SITE.format(timezone="Asia/Kolkata"),
    "plant_b/unit1/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4842/c"),
}


def test_two_sites_three_servers_each_named_scheduled_and_on_its_clock(tmp_path):
    defs = load_project(tmp_path, TWO_SITES)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        f"{site}/{unit}/{asset}"
        for site, unit in (("plant_a", "unit1"), ("plant_a", "unit2"), ("plant_b", "unit1"))
        for asset in ("scada_readings", "scada_daily_summary")
    }
    summary = graph.get(AssetKey(["plant_a", "unit2", "scada_daily_summary"]))
    assert summary.parent_keys == {AssetKey(["plant_a", "unit2", "scada_readings"])}
    assert summary.group_name == "plant_a"
    assert {key.asset_key for key in graph.asset_check_keys} == {
        AssetKey([site, unit, "scada_readings"])
        for site, unit in (("plant_a", "unit1"), ("plant_a", "unit2"), ("plant_b", "unit1"))
    }
    assert sorted(key for key in defs.resources if key.startswith("opcua")) == [
        "opcua__plant_a__unit1",
        "opcua__plant_a__unit2",
        "opcua__plant_b__unit1",
    ]
    assert defs.resources["opcua__plant_a__unit2"].endpoint == "opc.tcp://127.0.0.1:4841/b"
    job = defs.resolve_job_def("plant_a__unit2__scada_hourly_job")
    assert job.tags["gl/opcua-server"] == "127.0.0.1:4841"  # the run queue limits each server on its own
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert schedules["plant_b__unit1__scada_hourly_job_schedule"].execution_timezone == "Asia/Kolkata"
    assert schedules["plant_a__unit1__scada_hourly_job_schedule"].execution_timezone == "America/Chicago"
    kolkata = graph.get(AssetKey(["plant_b", "unit1", "scada_daily_summary"])).partitions_def
    window = kolkata.time_window_for_partition_key("2026-11-01")
    assert window.start.utcoffset().total_seconds() == 5.5 * 3600  # the plant day starts at Kolkata midnight
    assert {sensor.name for sensor in defs.sensors} - {"run_failure_alert", "alert_redelivery", "plant_automation"} == {
        f"{site}__{unit}__source_health"
        for site, unit in (("plant_a", "unit1"), ("plant_a", "unit2"), ("plant_b", "unit1"))
    }

    assert defs.resources["opcua__plant_a__unit1"].chunk_values == 1_000_000  # the resource's default


def test_chunk_size_declared_in_yaml_bounds_the_instances_reads(tmp_path):
    chunked = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a") + "  chunk_values: 50000\n"
    defs = load_project(
        tmp_path, {"plant_a/site/defs.yaml": SITE.format(timezone="UTC"), "plant_a/unit1/defs.yaml": chunked}
    )
    assert defs.resources["opcua__plant_a__unit1"].chunk_values == 50_000


SALES_ORDERS = """# SAP's own sample service: sales orders as an asset without any Python.
type: gl_pipelines.components.odata.ODataComponent
attributes:
  service_url: {url}
  auth: none
  units: {{EA: dimensionless}}
  currencies: [EUR, USD]
  entity_sets:
    - name: sales_orders
      entity_set: SalesOrderSet
      key: [sales_order]
      required: [customer, currency, net_amount]
      fields: {{sales_order: SalesOrderID, customer: CustomerID, currency: CurrencyCode,
               gross_amount: GrossAmount, net_amount: NetAmount, created_at: CreatedAt}}
"""


def test_gwsample_sales_orders_extracted_by_yaml_alone(tmp_path):
    with HttpServerThread(gwsample_app(), name="gwsample") as server:
        url = f"{server.url}{SERVICE_PATH}"
        defs = load_project(
            tmp_path / "project",
            {
                "hq/site/defs.yaml": SITE.format(timezone="Europe/Berlin"),
                "hq/sap/defs.yaml": SALES_ORDERS.format(url=url),
            },
        )
        warehouse = tmp_path / "project" / "w.duckdb"
        key = AssetKey(["hq", "sap", "sales_orders"])
        result = materialize(
            [defs.resolve_assets_def(key)],  # resolved with its own resource and the shared warehouse bound
            instance=DagsterInstance.ephemeral(),
        )
    assert result.success
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks == {"sales_orders_keys_unique": True, "sales_orders_required_present": True}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            f"SELECT sales_order, net_amount, created_at FROM plant.{table_name(key)} ORDER BY sales_order"
        ).fetchall()
    assert len(rows) == 10 and rows[0][0] == "0500000000"
    assert sum(Decimal(str(row[1])) for row in rows) == Decimal("138314.77")  # the README's published total
    assert rows[0][2].isoformat().startswith("2015-03-09T23:00:00")  # /Date(1425942000000)/ in UTC


def _load_error(tmp_path, files) -> str:
    with pytest.raises(Exception) as raised:
        load_project(tmp_path, files)
    return "\n".join(str(error) for error in _chain(raised.value))


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_unknown_field_names_file_line_and_field(tmp_path):
    text = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a").replace(
        "  sample_interval_s: 10\n", "  sample_interval_s: 10\n  sampel_rate: 5\n"
    )
    message = _load_error(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/u1/defs.yaml": text})
    assert "p/u1/defs.yaml" in message and "sampel_rate" in message and ":5" in message


def test_bad_value_in_a_tag_names_its_line(tmp_path):
    text = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a").replace("max: 60", "max: -1")
    message = _load_error(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/u1/defs.yaml": text})
    assert "p/u1/defs.yaml" in message and "tags" in message and "must be below max" in message


def test_missing_secret_name_is_refused(tmp_path):
    text = SALES_ORDERS.format(url="http://127.0.0.1:1/").replace("auth: none", "auth: basic")
    message = _load_error(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/sap/defs.yaml": text})
    assert "p/sap/defs.yaml" in message and "username_env and password_env" in message


def test_instance_without_a_site_is_refused(tmp_path):
    message = _load_error(tmp_path, {"p/u1/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a")})
    assert "p/u1/defs.yaml" in message and "site/defs.yaml" in message


def test_unknown_timezone_is_refused(tmp_path):
    message = _load_error(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="Mars/Olympus")})
    assert "p/site/defs.yaml" in message and "timezone" in message


def test_duplicate_entity_set_name_is_refused(tmp_path):
    text = SALES_ORDERS.format(url="http://127.0.0.1:1/")
    entity = text[text.index("    - name: sales_orders") :]
    message = _load_error(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/sap/defs.yaml": text + entity})
    assert "p/sap/defs.yaml" in message and "duplicate entity set name 'sales_orders'" in message


REPORTS = """type: gl_pipelines.components.reports.ReportsComponent
attributes:
  inputs:
    readings: {readings}
  units:
    - {{name: Boiler1, fuel_flow_tag: Boiler1.FuelGasFlow, steam_flow_tag: Boiler1.SteamFlow}}
"""


def test_report_input_naming_a_missing_instance_names_file_line_and_field(tmp_path):
    files = {
        "p/site/defs.yaml": SITE.format(timezone="UTC"),
        "p/unit1/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a"),
        "p/reports/defs.yaml": REPORTS.format(readings="unit9"),
    }
    message = _load_error(tmp_path, files)
    assert "p/reports/defs.yaml, line 4: field 'inputs.readings' = 'unit9': no instance 'unit9'" in message


def test_report_tag_missing_from_its_instance_is_refused(tmp_path):
    files = {
        "p/site/defs.yaml": SITE.format(timezone="UTC"),
        "p/unit1/defs.yaml": OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a"),
        "p/reports/defs.yaml": REPORTS.format(readings="unit1"),
    }
    message = _load_error(tmp_path, files)
    assert "field 'units[0].fuel_flow_tag' = 'Boiler1.FuelGasFlow': not a tag of 'unit1'" in message


def test_dg_check_defs_refuses_an_unknown_field(tmp_path):
    text = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a").replace(
        "  sample_interval_s: 10\n", "  sampel_rate: 5\n  sample_interval_s: 10\n"
    )
    root, _ = write_project(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/u1/defs.yaml": text})
    dg = Path(sys.executable).parent / "dg"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]), "NO_COLOR": "1"}
    checked = subprocess.run([str(dg), "check", "defs"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode != 0
    assert "p/u1/defs.yaml:4" in checked.stdout + checked.stderr and "sampel_rate" in checked.stdout + checked.stderr


def test_declared_secret_is_an_envvar_and_masked_in_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANT_A_OPCUA_PASSWORD", "pw-4711-never-shown")
    text = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a") + "  password_env: PLANT_A_OPCUA_PASSWORD\n"
    defs = load_project(tmp_path, {"p/site/defs.yaml": SITE.format(timezone="UTC"), "p/u1/defs.yaml": text})
    resource = defs.resources["opcua__p__u1"]
    assert resource.password == EnvVar("PLANT_A_OPCUA_PASSWORD")  # read at launch, the value never in the config
    assert scrub("login failed for pw-4711-never-shown") == f"login failed for {MASK}"
