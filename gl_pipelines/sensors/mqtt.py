"""When an MQTT source's hours run, and whether its broker and collector are up.

`<instance>_hours`: an hour is materialized once it has closed plus the source's lateness; a message
that lands for an hour after its materialization read the landing area re-runs that hour (never a
silent loss). Rows are append-only, so "after" is exact: the materialization records the landing's
last rowid it saw, and an hour whose rows go beyond it is due again. Hours without a single landed
message are not requested here: `<instance>_broker_health` reports the broker or collector outage
that causes them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.mqtt.config import MqttSourceConfig
from gl_pipelines.mqtt.landing_reader import landed_hours

LANDING_ROWID = "landing_rowid"
"""Materialization metadata: the landing area's last rowid the read saw."""
LOOKBACK = timedelta(days=2)
"""Late messages older than this are a backfill for an operator, not an automatic re-run."""


def closed_hours(hours: list[tuple[int, int]], now: datetime, lateness: timedelta) -> list[tuple[int, int]]:
    """The (hour µs, max rowid) of `hours` that closed at least `lateness` before `now`."""
    cutoff = (now - lateness - timedelta(hours=1)).timestamp() * 1_000_000
    return [(hour, max_rowid) for hour, max_rowid in hours if hour <= cutoff]


def due_hours(hours: list[tuple[int, int]], materialized_rowid: dict[int, int | None]) -> list[tuple[int, int]]:
    """Hours never materialized, or with rows landed after their latest materialization's read
    (`materialized_rowid`: hour -> the landing rowid that read saw)."""
    return [
        (hour, max_rowid)
        for hour, max_rowid in hours
        if materialized_rowid.get(hour) is None or max_rowid > materialized_rowid[hour]
    ]


def build_mqtt_hours_sensor(
    source: MqttSourceConfig, timezone: str, key: AssetKey, job: UnresolvedAssetJobDefinition
) -> SensorDefinition:
    partitions = site_hourly_partitions(timezone)

    @sensor(
        name=f"{source.name}_hours",
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Runs each hour of {source.name} {source.lateness_minutes} min after it closes, and "
        "again when messages for it land later.",
    )
    def mqtt_hours(context: SensorEvaluationContext):
        now = datetime.now(UTC)
        if not source.landing_path.exists():
            return SkipReason(f"no landing area at {source.landing_path} yet: is gl-mqtt-collector running?")
        lateness = timedelta(minutes=source.lateness_minutes)
        hours = closed_hours(landed_hours(source.landing_path, now - LOOKBACK), now, lateness)
        seen = {}
        for hour, _ in hours:
            partition = partitions.get_partition_key_for_timestamp(hour / 1_000_000)
            records = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            ).records
            metadata = records[0].asset_materialization.metadata if records else {}
            seen[hour] = metadata[LANDING_ROWID].value if LANDING_ROWID in metadata else None
        due = due_hours(hours, seen)
        if not due:
            return SkipReason(f"{len(hours)} closed hour(s) with landed messages, none due")
        requests = []
        for hour, max_rowid in due:
            partition = partitions.get_partition_key_for_timestamp(hour / 1_000_000)
            late = seen.get(hour) is not None
            requests.append(
                RunRequest(
                    partition_key=partition,
                    run_key=f"{source.name}:{partition}:{max_rowid}",
                    tags={"gl/mqtt-trigger": "late-messages" if late else "hour-closed"},
                )
            )
            if late:
                context.log.info(f"{partition}: messages landed after its materialization; re-running it")
        return SensorResult(run_requests=requests)

    return mqtt_hours


def build_mqtt_health_sensor(source: MqttSourceConfig, resource_key: str) -> SensorDefinition:
    @sensor(
        name=f"{source.name}_broker_health",
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={resource_key},
        description=f"Reports when the broker of {source.name} is unreachable or its collector is down or stale.",
    )
    def mqtt_broker_health(context: SensorEvaluationContext):
        health = getattr(context.resources, resource_key).health_check()
        state = json.loads(context.cursor) if context.cursor else {}
        now = datetime.now(UTC).isoformat()
        if health.ok:
            if state.get("down_since"):
                context.log.info(f"{source.name} healthy again after outage since {state['down_since']}")
            context.update_cursor(json.dumps({"down_since": None}))
            return SkipReason(f"{health.endpoint}: {health.detail}")
        down_since = state.get("down_since") or now
        context.update_cursor(json.dumps({"down_since": down_since}))
        context.log.warning(f"{source.name} down since {down_since}: {health.endpoint}: {health.detail}")
        return SkipReason(f"DOWN since {down_since}: {health.endpoint}: {health.detail}")

    return mqtt_broker_health
