"""Declarative automation: the daily summary follows its hours, but only past passing blocking checks."""

from datetime import UTC, datetime

import pytest
from dagster import AssetKey, AssetSelection, evaluate_automation_conditions, instance_for_test, materialize

from gl_pipelines.components.site_file import build_definitions

SUMMARY = AssetSelection.assets("scada_daily_summary")
EVALUATED_AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)  # 01:00 CST: the latest complete plant day is 2026-11-02


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def materialize_hours(defs, instance, **kwargs):
    return materialize(
        [*defs.assets, *defs.asset_checks],
        resources=defs.resources,
        instance=instance,
        selection=["scada_readings"],
        raise_on_error=False,
        **kwargs,
    )


def requested(defs, instance, cursor=None):
    result = evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=SUMMARY, evaluation_time=EVALUATED_AT, cursor=cursor
    )
    return result.get_requested_partitions(AssetKey("scada_daily_summary")), result.cursor


def test_summary_waits_for_its_day_then_for_passing_checks(site, tmp_path, instance, plant):
    defs = build_definitions(site, tmp_path / "w.duckdb")
    partitions, cursor = requested(defs, instance)
    assert partitions == set()  # no hours yet

    plant.faults.out_of_range["Boiler1.StackTemp"] = 999.0  # above the configured 50..400 degC
    assert not materialize_hours(defs, instance, partition_key="2026-11-02-07:00").success
    plant.faults.out_of_range.clear()
    day = {
        "dagster/asset_partition_range_start": "2026-11-02-00:00",
        "dagster/asset_partition_range_end": "2026-11-02-06:00",
    }
    assert materialize_hours(defs, instance, tags=day).success
    rest = {
        "dagster/asset_partition_range_start": "2026-11-02-08:00",
        "dagster/asset_partition_range_end": "2026-11-02-23:00",
    }
    assert materialize_hours(defs, instance, tags=rest).success
    partitions, cursor = requested(defs, instance, cursor)
    assert partitions == set()  # 07:00 failed its blocking check

    assert materialize_hours(defs, instance, partition_key="2026-11-02-07:00").success
    partitions, cursor = requested(defs, instance, cursor)
    assert partitions == {"2026-11-02"}
