"""Schedules target exactly the partition that just closed, on the plant's clock, DST included."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetSelection,
    SkipReason,
    build_schedule_context,
    define_asset_job,
)
from dagster._utils.schedules import cron_string_iterator

from gl_pipelines.assets.partitions import site_daily_partitions, site_hourly_partitions
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources.opcua import OpcUaResource
from gl_pipelines.sensors.schedules import partition_schedule
from tests.conftest import free_port

ZONE = "America/Chicago"


def evaluate(schedule, when: datetime, resources=None):
    """Invoke the schedule as the daemon would at `when`: (run requests, skip message)."""
    result = schedule(build_schedule_context(scheduled_execution_time=when, resources=resources))
    if isinstance(result, SkipReason):
        return [], result.skip_message
    return [result], None


def ticks(schedule, start: datetime, end: datetime) -> list[datetime]:
    out = []
    for tick in cron_string_iterator(start.timestamp(), schedule.cron_schedule, schedule.execution_timezone):
        if tick >= end:
            return out
        out.append(tick)
    return out


@pytest.fixture
def hourly_schedule():
    job = define_asset_job("probe_job", selection=AssetSelection.all())
    return partition_schedule(job, site_hourly_partitions(ZONE), minute_of_hour=5)


def test_hourly_schedule_targets_the_hour_just_closed(hourly_schedule):
    assert hourly_schedule.cron_schedule == "5 * * * *" and hourly_schedule.execution_timezone == ZONE
    requests, _ = evaluate(hourly_schedule, datetime(2026, 11, 10, 15, 5, tzinfo=UTC))  # 09:05 CST
    assert [r.partition_key for r in requests] == ["2026-11-10-08:00"]


def test_fall_back_day_gets_25_ticks_each_targeting_a_distinct_hour(hourly_schedule):
    day = site_daily_partitions(ZONE).time_window_for_partition_key("2026-11-01")
    start, end = day.start.astimezone(UTC) + timedelta(hours=1), day.end.astimezone(UTC) + timedelta(hours=1)
    times = ticks(hourly_schedule, start, end)
    assert len(times) == 25
    targeted = [evaluate(hourly_schedule, when)[0][0].partition_key for when in times]
    assert targeted == site_hourly_partitions(ZONE).get_partition_keys_in_time_window(day)
    assert "2026-11-01-01:00" in targeted and "2026-11-01-01:00-0600" in targeted


def test_spring_forward_day_gets_23_ticks(hourly_schedule):
    day = site_daily_partitions(ZONE).time_window_for_partition_key("2026-03-08")
    start, end = day.start.astimezone(UTC) + timedelta(hours=1), day.end.astimezone(UTC) + timedelta(hours=1)
    targeted = [evaluate(hourly_schedule, when)[0][0].partition_key for when in ticks(hourly_schedule, start, end)]
    assert len(targeted) == 23 and "2026-03-08-02:00" not in targeted


@pytest.mark.parametrize(
    ("local_midnight_utc", "expected"),
    [
        (datetime(2026, 3, 9, 5, 15, tzinfo=UTC), "2026-03-08"),  # 00:15 CDT after the 23-hour day
        (datetime(2026, 11, 2, 6, 15, tzinfo=UTC), "2026-11-01"),  # 00:15 CST after the 25-hour day
        (datetime(2026, 7, 1, 5, 15, tzinfo=UTC), "2026-06-30"),
    ],
)
def test_daily_schedule_targets_the_plant_day_just_closed(local_midnight_utc, expected):
    daily = site_daily_partitions(ZONE)
    job = define_asset_job("daily_probe_job", selection=AssetSelection.all())
    schedule = partition_schedule(job, daily, minute_of_hour=15, hour_of_day=0)
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone == ZONE
    requests, _ = evaluate(schedule, local_midnight_utc)
    assert [r.partition_key for r in requests] == [expected]


def test_site_schedule_skips_while_the_source_is_down_and_runs_when_up(site, tmp_path):
    defs = build_definitions(site, tmp_path / "w.duckdb")
    schedule = defs.resolve_schedule_def("scada_hourly_job_schedule")
    when = datetime(2026, 11, 10, 15, 5, tzinfo=UTC)

    def tick(opcua: OpcUaResource):
        context = build_schedule_context(
            scheduled_execution_time=when, resources={"opcua": opcua}, repository_def=defs.get_repository_def()
        )
        return schedule.evaluate_tick(context)

    down = tick(OpcUaResource(endpoint=f"opc.tcp://127.0.0.1:{free_port()}/gone", health_timeout_s=2))
    assert not down.run_requests
    assert "source 'opcua' is down" in down.skip_message
    assert "2026-11-10-08:00" in down.skip_message and "source_health" in down.skip_message
    up = tick(OpcUaResource(endpoint=site.opcua.endpoint))
    assert [request.partition_key for request in up.run_requests] == ["2026-11-10-08:00"]
