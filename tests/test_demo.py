"""The newcomer's command: the demo runs end to end in its own process and reports its results."""

import os
import subprocess
import sys

import duckdb


def test_demo_materializes_the_day_and_prints_a_summary(tmp_path):
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
    assert "plant.scada_readings: 54000 rows" in done.stdout  # 25 hours: the fall-back day
    assert "plant.meter_hourly_consumption: 3 rows" in done.stdout
    assert "plant.scada_daily_summary: 6 rows" in done.stdout
    assert "plant.historian_recorded: 45000 rows" in done.stdout  # 5 tags at 10 s over 25 hours
    assert "plant.cems_hourly_emissions: 24 rows" in done.stdout  # a Part 75 day in local standard time
    assert "plant.plant_energy_balance: 1 rows" in done.stdout
    assert "checks: 29 passed, 0 failed" in done.stdout
    assert "efficiency 85.0%" in done.stdout  # the plant model's boiler efficiency is 0.85
    assert "CEMS B1: heat input" in done.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(distinct tag) from plant.scada_readings").fetchone()[0] == 6
