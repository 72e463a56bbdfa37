"""Schedules derived from partitions definitions, so the cron and the targeted partition never drift.

Each tick targets the last partition that has closed at the scheduled time, computed by the
partitions definition itself in the site's zone (so DST days get 23 or 25 hourly ticks and the
right plant day). Before launching, a tick asks the source's resource for its health: while the
source is down it skips with the reason, and the `source_health` sensor catches the skipped
partitions up when the source recovers.
"""

from dagster import (
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    partition_loading_context,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def partition_schedule(
    job: UnresolvedAssetJobDefinition,
    partitions_def: TimeWindowPartitionsDefinition,
    *,
    minute_of_hour: int,
    hour_of_day: int | None = None,
    source_resource_key: str | None = None,
) -> ScheduleDefinition:
    """A schedule for `job` that runs shortly after each partition of `partitions_def` closes."""
    name = f"{job.name}_schedule"

    @schedule(
        name=name,
        job=job,
        cron_schedule=partitions_def.get_cron_schedule(minute_of_hour=minute_of_hour, hour_of_day=hour_of_day),
        execution_timezone=partitions_def.timezone,
        required_resource_keys={source_resource_key} if source_resource_key else None,
        description=f"Materializes each partition of {job.name} once it has closed ({partitions_def.timezone}).",
    )
    def _partition_schedule(context: ScheduleEvaluationContext):
        with partition_loading_context(context.scheduled_execution_time):
            partition_key = partitions_def.get_last_partition_key()
        if partition_key is None:
            return SkipReason("no partition has closed yet")
        if source_resource_key:
            health = getattr(context.resources, source_resource_key).health_check()
            if not health.ok:
                return SkipReason(
                    f"source '{source_resource_key}' is down ({health.endpoint}: {health.detail}); partition "
                    f"{partition_key} is skipped and will be caught up by source_health when it recovers"
                )
        return RunRequest(run_key=f"{name}:{partition_key}", partition_key=partition_key)

    return _partition_schedule
