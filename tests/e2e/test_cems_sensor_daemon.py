"""The CEMS DAHS drop-folder sensor in the deployment (code server, daemon, webserver on dagster_home/dagster.yaml,
PostgreSQL storage): its daemon's `cems_dahs_files` ticks pick up a demo DAHS day and a malformed export,
launch the `cems_raw_job` run over the day's hours and quarantine the broken file.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from gl_demo_plant.cems_dahs import write_day, write_malformed
from gl_pipelines.checks.cems import RAW_CHECKS
from tests.e2e.conftest import Deployment, pg_connect

pytestmark = pytest.mark.e2e

SENSOR = "cems_dahs_files"
ASSET = "cems_hourly_raw"
UNIT, LST = "B1", -6
DAY = date(2026, 11, 2)
BAD_DAY = date(2026, 11, 3)
PARTITIONS = [f"{DAY:%Y-%m-%d}-{hour:02d}:00" for hour in range(24)]
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}

SENSOR_QUERY = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState {
        id selectorId status
        ticks(limit: 50) {
          status skipReason runIds error { message }
          logEvents { events { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""
START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}
"""
RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""


def _sensor_selector(dev: Deployment) -> dict:
    data = dev.graphql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    (repo,) = [n for n in data["repositoriesOrError"]["nodes"] if n["location"]["name"] == "gl_pipelines"]
    return {"repositoryLocationName": "gl_pipelines", "repositoryName": repo["name"], "sensorName": SENSOR}


def _sensor_state(dev: Deployment, selector: dict) -> dict:
    sensor = dev.graphql(SENSOR_QUERY, {"selector": selector})["sensorOrError"]
    assert sensor["__typename"] == "Sensor", sensor
    return sensor["sensorState"]


def _ensure_running(dev: Deployment, selector: dict) -> None:
    if _sensor_state(dev, selector)["status"] != "RUNNING":
        started = dev.graphql(START_SENSOR, {"selector": selector})["startSensor"]
        assert started["__typename"] == "Sensor", started
    assert _sensor_state(dev, selector)["status"] == "RUNNING"


def _wait_for_sensor_run(dev: Deployment, selector: dict, timeout: float) -> tuple[dict, list[dict]]:
    """Poll until a sensor tick requested a run and that run ended; returns the run and the ticks so far."""
    deadline = time.monotonic() + timeout
    while True:
        ticks = _sensor_state(dev, selector)["ticks"]
        run_ids = [run_id for tick in ticks for run_id in tick["runIds"]]
        if run_ids:
            runs = dev.graphql(RUNS, {"filter": {"runIds": run_ids}})["runsOrError"]
            assert runs["__typename"] == "Runs", runs
            if runs["results"] and all(run["status"] in RUN_DONE for run in runs["results"]):
                assert len(runs["results"]) == 1, runs
                return runs["results"][0], ticks
        if time.monotonic() > deadline:
            pytest.fail(f"no finished sensor run after {timeout:.0f} s; ticks: {ticks}\n{dev.log_tail()}")
        time.sleep(2)


def _tick_text(tick: dict) -> str:
    events = (tick.get("logEvents") or {}).get("events") or []
    return "\n".join([tick.get("skipReason") or "", *(event["message"] for event in events)])


def _assert_materialized_and_checked(dev: Deployment, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pg_connect(dev.env["GL_PG_DB"]) as con, con.cursor() as cur:
        cur.execute(
            "select partition from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
            " and asset_key = %s and run_id = %s",
            (AssetKey(ASSET).to_string(), run_id),
        )
        assert sorted(row[0] for row in cur.fetchall()) == PARTITIONS

    for key in ("DAGSTER_HOME", "GL_PG_HOST", "GL_PG_PORT", "GL_PG_USER", "GL_PG_PASSWORD", "GL_PG_DB"):
        monkeypatch.setenv(key, dev.env[key])
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert set(instance.get_materialized_partitions(AssetKey(ASSET))) == set(PARTITIONS)
        checked = {}
        for name in RAW_CHECKS:
            history = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey(ASSET), name), limit=50
            )
            checked[name] = [
                record.event.asset_check_evaluation.passed
                for record in history
                if record.run_id == run_id and record.event and record.event.asset_check_evaluation
            ]
        assert checked and all(results and all(results) for results in checked.values()), checked


def test_sensor_daemon_loads_a_dahs_day_and_quarantines_a_broken_file(
    deployment: Deployment, cems_folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    selector = _sensor_selector(deployment)
    _ensure_running(deployment, selector)

    bad, bad_line = write_malformed(cems_folders["drop"], UNIT, BAD_DAY, LST, "non_numeric")
    (good,) = write_day(cems_folders["drop"], UNIT, DAY, LST)

    run, ticks = _wait_for_sensor_run(deployment, selector, timeout=240)
    assert run["status"] == "SUCCESS", f"{run}\n{deployment.log_tail()}"
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert tags["dagster/sensor_name"] == SENSOR and tags["gl/dahs-file"] == good.name, tags

    _assert_materialized_and_checked(deployment, run["runId"], monkeypatch)

    # The malformed file left the drop folder for quarantine, with its reason; the valid one was accepted.
    assert not bad.exists() and good.exists()
    quarantined = [p for p in cems_folders["quarantine"].iterdir() if not p.name.endswith(".reason.txt")]
    assert len(quarantined) == 1 and quarantined[0].name.endswith(bad.name), quarantined
    reason = cems_folders["quarantine"] / f"{quarantined[0].name}.reason.txt"
    assert f"line {bad_line}" in reason.read_text()
    # The daemon's tick history names it (skip reason or the tick's captured log).
    assert any(bad.name in _tick_text(tick) for tick in ticks), ticks
