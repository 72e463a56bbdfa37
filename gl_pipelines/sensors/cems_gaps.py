"""Recompute a CEMS day whose last hours were substituted before the hour after the gap existed.

§75.33 fills a short gap with the average of the quality-assured hours before and after it. A gap
still open at the end of a local-standard-time day has no hour after when the day is computed (the
next day's DAHS file comes a day later), so those hours are filled from the hour before alone and
`cems_hourly_emissions` lists them in its `open_gaps_at_end` metadata. When raw hours of the next
day are stored after that, this sensor asks for one `cems_daily_job` run of the day: its emissions
then read the next day's hours, close the gap with the hour after, and the daily report follows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from gl_pipelines.assets.cems import OPEN_GAPS_KEY
from gl_pipelines.assets.partitions import cems_daily_partitions, cems_hourly_partitions
from gl_pipelines.components.naming import InstanceNames, cems_names
from gl_pipelines.config import CemsSource

DAYS_WATCHED = 35
"""Days back whose open gaps are watched; an older day is recomputed by hand (a backfill)."""
GAP_TAG = "gl/cems-open-gaps"


def build_cems_open_gap_sensor(
    source: CemsSource,
    job_name: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    names: InstanceNames | None = None,
) -> SensorDefinition:
    """The open-gap sensor of one CEMS instance (`<site>__<instance>__cems_open_gaps`; short name without one)."""
    names = cems_names(names)
    emissions, raw = names.key("cems_hourly_emissions"), names.key("cems_hourly_raw")
    daily = cems_daily_partitions(source.lst_utc_offset_hours, source.history_start.isoformat())
    hourly = cems_hourly_partitions(source.lst_utc_offset_hours, source.history_start.isoformat())

    @sensor(
        name=names.job("cems_open_gaps"),
        job_name=job_name,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="CEMS days whose last hours were filled before the hour after the gap arrived -> "
        f"{job_name} re-runs once the next day's raw hours are stored.",
    )
    def open_gaps(context: SensorEvaluationContext) -> SensorResult:
        days = daily.get_partition_keys(current_time=clock())[-DAYS_WATCHED:]
        latest = {}
        for record in context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=emissions, asset_partitions=days), limit=len(days) * 20
        ).records:  # newest first
            latest.setdefault(record.partition_key, record)
        requests, waiting = [], 0
        for day, record in sorted(latest.items()):
            open_gaps = record.asset_materialization.metadata.get(OPEN_GAPS_KEY)
            if open_gaps is None or not open_gaps.value:
                continue
            waiting += 1
            day_end = daily.time_window_for_partition_key(day).end
            first_next_hour = hourly.get_partition_key_for_timestamp(day_end.timestamp())
            newer = context.instance.fetch_materializations(
                AssetRecordsFilter(
                    asset_key=raw, asset_partitions=[first_next_hour], after_storage_id=record.storage_id
                ),
                limit=1,
            ).records
            if newer:
                context.log.info(f"{day}: gaps open at the day's end ({', '.join(open_gaps.value)}); next day stored")
                requests.append(
                    RunRequest(
                        run_key=f"cems-open-gaps:{day}:{newer[0].storage_id}",
                        partition_key=day,
                        tags={GAP_TAG: ",".join(open_gaps.value)},
                    )
                )
        skip = f"{waiting} of the last {len(days)} days end in an open gap; none has its next day stored yet"
        return SensorResult(run_requests=requests, skip_reason=None if requests else skip)

    return open_gaps
