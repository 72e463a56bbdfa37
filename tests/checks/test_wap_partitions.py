"""A single-run backfill's blocking checks, as the UI and automation read them: one current record per partition.

Dagster 1.13 records a multi-partition step's check result once, without a partition; the UI's check statuses
(`partitionStatuses`) and `AutomationCondition`s read one record per partition, and showed the backfilled hours'
checks as skipped ("0 / 2 Passed"). `checks.wap.per_partition` records the verdict for each partition.
"""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey, instance_for_test
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from gl_pipelines.checks.scada import SCADA_BLOCKING_CHECKS
from gl_pipelines.definitions import build_definitions
from tests.runs import run

HOURS = ["2026-11-01-03:00", "2026-11-01-04:00", "2026-11-01-05:00"]
RANGE = {"dagster/asset_partition_range_start": HOURS[0], "dagster/asset_partition_range_end": HOURS[-1]}
KEYS = [AssetCheckKey(AssetKey("scada_readings"), name) for name in SCADA_BLOCKING_CHECKS]


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def partition_states(instance) -> dict[tuple[str, str | None], tuple[str, bool]]:
    """(check, partition) -> (status, current): what the UI's per-partition check statuses are built from."""
    infos = instance.event_log_storage.get_asset_check_partition_info(KEYS)
    return {(i.check_key.name, i.partition_key): (i.latest_execution_status, i.is_current) for i in infos}


def test_a_backfill_records_each_check_passed_for_each_hour(site, tmp_path, instance):
    result = run(build_definitions(site, tmp_path / "w.duckdb"), instance, ["scada_readings"], tags=RANGE)
    assert result.success
    states = partition_states(instance)
    passed = (AssetCheckExecutionRecordStatus.SUCCEEDED, True)
    assert {(name, hour): states[(name, hour)] for name in SCADA_BLOCKING_CHECKS for hour in HOURS} == {
        (name, hour): passed for name in SCADA_BLOCKING_CHECKS for hour in HOURS
    }
    # The run-wide result is kept: it is the one Dagster enforces within the run.
    assert [e.partition for e in result.get_asset_check_evaluations() if e.blocking] == [None, None]


def test_a_failed_backfill_shows_failed_hours_and_fails_the_step_once_per_check(site, tmp_path, instance, plant):
    defs = build_definitions(site, tmp_path / "w.duckdb")
    plant.faults.out_of_range["Boiler1.FlueGasO2"] = 35.0  # above the configured 0..21 %, in every hour
    result = run(defs, instance, ["scada_readings"], tags=RANGE)
    assert not result.success
    expectations = SCADA_BLOCKING_CHECKS[0]
    states = partition_states(instance)
    for hour in HOURS:
        assert states[(expectations, hour)] == (AssetCheckExecutionRecordStatus.FAILED, True)
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "1 blocking asset check failed" in message and message.count(expectations) == 1, message
