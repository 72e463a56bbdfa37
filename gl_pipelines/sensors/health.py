"""Source health: probe every configured system, say which are down, catch up after an outage.

The schedules skip while their source is down (they probe it themselves before launching). This
sensor keeps, in its cursor, when each source went down; when one comes back it requests one
single-run backfill over the partitions of its asset that are still missing since then.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    PartitionKeyRange,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionsDefinition,
    partition_loading_context,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG

MAX_CATCH_UP = timedelta(days=7)
"""Older gaps are a backfill for an operator to launch deliberately, not an automatic one."""


@dataclass(frozen=True)
class MonitoredSource:
    """A source system, the resource that reaches it, and the partitioned asset it feeds."""

    resource_key: str
    asset_key: AssetKey
    job: UnresolvedAssetJobDefinition
    partitions_def: TimeWindowPartitionsDefinition
    catch_up: bool = True
    """False for sources without history (Modbus meters): missed partitions cannot be read back."""


def missing_partitions(context, source: MonitoredSource, since: datetime, now: datetime) -> list[str]:
    """Closed partitions of the source's asset, from the one containing `since`, not yet materialized."""
    partitions = source.partitions_def
    with partition_loading_context(now):
        last = partitions.get_last_partition_key()
        if last is None:
            return []
        first = partitions.get_partition_key_for_timestamp(since.timestamp())
        if partitions.time_window_for_partition_key(first).start > partitions.time_window_for_partition_key(last).start:
            return []
        keys = partitions.get_partition_keys_in_range(PartitionKeyRange(first, last))
    done = context.instance.get_materialized_partitions(source.asset_key)
    return [key for key in keys if key not in done]


def build_source_health_sensor(
    sources: list[MonitoredSource], minimum_interval_seconds: int = 60, name: str = "source_health"
) -> SensorDefinition:
    @sensor(
        name=name,
        jobs=[source.job for source in sources],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={source.resource_key for source in sources},
        description="Probes each source's health check; catches up skipped partitions after an outage.",
    )
    def source_health(context: SensorEvaluationContext):
        now = datetime.now(UTC)
        state: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
        resources = [getattr(context.resources, source.resource_key) for source in sources]
        with ThreadPoolExecutor(max_workers=min(16, len(sources))) as pool:
            statuses = list(pool.map(lambda resource: resource.health_check(), resources))
        run_requests, down = [], []
        for source, health in zip(sources, statuses, strict=True):
            key = source.resource_key
            down_since = state.get(key, {}).get("down_since")
            if not health.ok:
                down_since = down_since or now.isoformat()
                down.append(f"{key} down since {down_since} ({health.endpoint}: {health.detail})")
                state[key] = {"down_since": down_since}
                continue
            state[key] = {"down_since": None}
            if down_since and not source.catch_up:
                context.log.warning(
                    f"{key} recovered after outage since {down_since}; it keeps no history, "
                    "so the partitions missed meanwhile stay missing"
                )
            elif down_since:
                since = max(datetime.fromisoformat(down_since), now - MAX_CATCH_UP)
                gap = missing_partitions(context, source, since, now)
                context.log.info(f"{key} recovered after outage since {down_since}; missing partitions: {gap}")
                if gap:
                    run_requests.append(
                        RunRequest(
                            job_name=source.job.name,
                            run_key=f"catch-up:{key}:{gap[0]}..{gap[-1]}",
                            tags={RANGE_START_TAG: gap[0], RANGE_END_TAG: gap[-1], "gl/catch-up": key},
                        )
                    )
        cursor = json.dumps(state, sort_keys=True)
        if run_requests:
            return SensorResult(run_requests=run_requests, cursor=cursor)
        context.update_cursor(cursor)
        return SkipReason("; ".join(down) if down else f"all {len(sources)} source(s) healthy")

    return source_health
