"""The newcomer's command: the demo runs the sites declared in gl_pipelines/defs/ end to end in its own process
and reports its results."""

import os
import subprocess
import sys

import duckdb
import pytest
from dagster import AssetKey

from gl_demo_plant.demo import DemoEndpoints, instance_asset


def test_demo_materializes_the_declared_sites_and_prints_a_summary(tmp_path):
    warehouse = tmp_path / "demo.duckdb"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "gl_demo_plant.demo", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # Every instance of the defs folder that the demo plant serves, both sites, both OPC UA servers of the first.
    for instance in ("boiler1_opcua", "boiler2_opcua", "meters", "pi", "proficy", "sap", "cems", "reports"):
        assert f"demo_plant/{instance}" in out
    assert "north_plant/line1_opcua (opcua)" in out
    for opcua in ("demo_plant__boiler1_opcua", "demo_plant__boiler2_opcua"):
        assert f"plant.{opcua}__scada_readings: 54000 rows" in out  # 25 hours: the fall-back day in Chicago
        assert f"plant.{opcua}__scada_daily_summary: 6 rows" in out
    # Three tags (steam, stack temperature, fuel for the site's energy balance) at 10 s over a 24-hour day:
    # Berlin left summer time on 25 October.
    assert "plant.north_plant__line1_opcua__scada_readings: 25920 rows" in out
    assert "plant.demo_plant__meters__meter_hourly_consumption: 3 rows" in out
    assert "plant.demo_plant__pi__historian_recorded: 45000 rows" in out  # 5 tags at 10 s over 25 hours
    assert "plant.demo_plant__proficy__proficy_recorded: 18000 rows" in out  # 2 tags at 10 s over 25 hours
    assert "PASS demo_plant/proficy/proficy_recorded:proficy_recorded_completeness" in out
    # The CMMS and MES entity sets of the SAP instance, by YAML alone.
    assert "plant.demo_plant__sap__work_orders: " in out and "plant.demo_plant__sap__production_orders: 1 rows" in out
    assert "cems_hourly_emissions: 24 rows" in out  # a Part 75 day in local standard time
    # Each site's reports, on its own day: Line 1's Berlin day is 24 hours, Boiler 1's Chicago day 25.
    assert "north_plant/reports" in out
    for site in ("demo_plant", "north_plant"):
        assert f"plant.{site}__reports__plant_energy_balance: 1 rows" in out
    assert "energy balance Line1: fuel 2,582 mmBtu in" in out and "energy balance Boiler1: fuel 2,684 mmBtu in" in out
    assert "checks: 40 passed, 0 failed" in out  # with the Proficy instance's two
    assert "PASS demo_plant/boiler2_opcua/scada_readings:scada_readings_completeness" in out
    assert "efficiency 85.0%" in out  # the plant model's boiler efficiency is 0.85
    assert "CEMS B1: heat input" in out
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tags = con.execute("select count(distinct tag) from plant.demo_plant__boiler2_opcua__scada_readings")
        assert tags.fetchone()[0] == 6
        # The same plant model behind OPC UA and Proficy: the same value at the same time.
        same = con.execute(
            "select count(*), max(abs(p.value - o.value)) from plant.demo_plant__proficy__proficy_recorded p"
            " join plant.demo_plant__boiler1_opcua__scada_readings o using (ts, tag)"
        )
        assert same.fetchone() == (18000, pytest.approx(0, abs=1e-6))
    # Report files beside the warehouse, not in the checkout's data/ folder.
    assert [path.name for path in (tmp_path / "reports" / "demo_plant").rglob("*.csv")] == [
        "plant_energy_balance_2026-11.csv"
    ]


def test_instances_are_pointed_at_the_server_listening_on_their_declared_default_port():
    plant = DemoEndpoints({4840: "127.0.0.1:40001", 5460: "127.0.0.1:40002"})
    assert plant.replacing("opc.tcp://127.0.0.1:4840/gl-demo") == "opc.tcp://127.0.0.1:40001/gl-demo"
    assert (
        plant.replacing("http://127.0.0.1:5460/sap/opu/odata/sap/X/") == "http://127.0.0.1:40002/sap/opu/odata/sap/X/"
    )
    with pytest.raises(ValueError, match="no demo plant server listens by default on port 4999"):
        plant.replacing("opc.tcp://10.0.0.5:4999/other")


def test_an_instance_asset_is_found_under_its_prefix():
    prefixed = AssetKey(["demo_plant", "cems", "cems_hourly_raw"])
    assert instance_asset({prefixed, AssetKey("cems_hourly_raw")}, "demo_plant", "cems")("cems_hourly_raw") == prefixed
    with pytest.raises(KeyError, match="demo_plant/cems: no asset 'cems_hourly_raw' under its prefix"):
        instance_asset({AssetKey(["b", "cems", "cems_hourly_raw"])}, "demo_plant", "cems")("cems_hourly_raw")
