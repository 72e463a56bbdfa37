"""`history_start` per instance and per site: partitions, schedules and backfills of an instance begin on its
own first day, and a report over several instances begins on the latest of their starts (an earlier day is
refused: it is no partition of the report)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, build_schedule_context, partition_loading_context
from dagster._core.errors import DagsterUnknownPartitionError

from tests.components.project import OPCUA, SITE, load_project
from tests.components.test_instances import _load_error
from tests.runs import run

CHICAGO = ZoneInfo("America/Chicago")
SERVER = OPCUA.format(endpoint="opc.tcp://127.0.0.1:4840/a") + (
    '    - {name: Boiler1.FuelGasFlow, node_id: "ns=2;s=Boiler1.FuelGasFlow", unit: m**3/h, min: 0, max: 9000}\n'
)
REPORTS = """type: gl_pipelines.components.reports.ReportsComponent
attributes:
  inputs: {readings: unit_a}
  units:
    - {name: Boiler1, fuel_flow_tag: Boiler1.FuelGasFlow, steam_flow_tag: Boiler1.SteamFlow}
"""
FILES = {
    "p/site/defs.yaml": SITE.format(timezone="America/Chicago") + "  history_start: 2026-01-01\n",
    "p/unit_a/defs.yaml": SERVER.replace("attributes:\n", "attributes:\n  history_start: 2026-01-15\n"),
    "p/unit_b/defs.yaml": SERVER,
    "p/reports/defs.yaml": REPORTS,
}


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return load_project(tmp_path_factory.mktemp("history"), FILES)


def first_key(defs, key) -> str:
    return defs.resolve_assets_def(key).partitions_def.get_first_partition_key()


def test_each_instance_starts_on_its_own_history_start_or_its_sites(defs):
    assert first_key(defs, AssetKey(["p", "unit_a", "scada_readings"])) == "2026-01-15-00:00"
    assert first_key(defs, AssetKey(["p", "unit_a", "scada_daily_summary"])) == "2026-01-15"
    assert first_key(defs, AssetKey(["p", "unit_b", "scada_readings"])) == "2026-01-01-00:00"  # the site's
    readings_a, readings_b = (
        defs.resolve_assets_def(AssetKey(["p", unit, "scada_readings"])).partitions_def for unit in ("unit_a", "unit_b")
    )
    with partition_loading_context(datetime(2026, 1, 10, 12, 5, tzinfo=CHICAGO)):
        assert readings_b.get_last_partition_key() == "2026-01-10-11:00"
        assert readings_a.get_last_partition_key() is None  # before unit_a's first hour


def test_schedule_of_a_later_instance_skips_days_before_its_start(defs):
    schedule = next(s for s in defs.schedules if s.name == "p__unit_a__scada_hourly_job_schedule")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 10, 12, 5, tzinfo=CHICAGO),
        resources={"opcua__p__unit_a": defs.resources["opcua__p__unit_a"]},
    )
    result = schedule.evaluate_tick(context)
    assert result.skip_message == "no partition has closed yet" and not result.run_requests


def test_report_over_instances_begins_on_their_latest_start_and_refuses_earlier_days(defs):
    balance_key = AssetKey(["p", "reports", "plant_energy_balance"])
    assert first_key(defs, balance_key) == "2026-01-15"  # unit_a's start, later than the site's
    # the first whole month with every day covered
    assert first_key(defs, AssetKey(["p", "reports", "monthly_report"])) == "2026-02-01"
    balance = defs.resolve_assets_def(balance_key)  # the UI shows why it starts there
    assert balance.metadata_by_key[balance.key]["history_start"].data == {
        "site p": "2026-01-01",
        "unit_a": "2026-01-15",
    }
    with pytest.raises(DagsterUnknownPartitionError, match="2026-01-10"):
        run(defs, DagsterInstance.ephemeral(), AssetSelection.assets(balance_key), partition_key="2026-01-10")
    with pytest.raises(DagsterUnknownPartitionError, match="2026-01-14-23:00"):
        run(
            defs,
            DagsterInstance.ephemeral(),
            AssetSelection.assets(AssetKey(["p", "unit_a", "scada_readings"])),
            partition_key="2026-01-14-23:00",
        )


def test_history_start_must_be_a_date(tmp_path):
    files = {**FILES, "p/unit_a/defs.yaml": SERVER.replace("attributes:\n", "attributes:\n  history_start: soon\n")}
    text = _load_error(tmp_path, files)
    assert "p/unit_a/defs.yaml" in text and "history_start" in text and "soon" in text
