"""SCADA over OPC UA: hourly raw readings and a daily per-tag summary.

Assets stay thin: ask the resource for the partition window chunk by chunk (`chunk_values` values at a
time), append each chunk to a staging table, attach provenance, audit the staged rows with the blocking
checks in DuckDB (`checks.wap`). The warehouse IO manager replaces the window's rows from the staging table
when they passed, so re-runs never duplicate, and quarantines them when they did not. No step holds a
window's rows in pandas: memory is bounded by `chunk_values`, and the daily summary is one SQL aggregation.
"""

from collections.abc import Iterator, Mapping
from datetime import timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    AutomationCondition,
    Failure,
    FreshnessPolicy,
    MetadataValue,
    Nothing,
    Output,
    RetryRequested,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.partitions import (
    WAREHOUSE_POOL,
    backfill_policy,
    site_daily_partitions,
    site_hourly_partitions,
    utc_window,
)
from gl_pipelines.assets.provenance import preview_markdown, staged_provenance_metadata
from gl_pipelines.checks.gate import every_upstream_partition_checked, require_checks_passed
from gl_pipelines.checks.scada import SCADA_BLOCKING_CHECKS, scada_audit
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import CheckThresholds, OpcUaSource
from gl_pipelines.resources.opcua import (
    RESOURCE_VERSION,
    HistoryChunks,
    OpcUaResource,
    OpcUaTransientError,
    TagRef,
)
from gl_pipelines.resources.warehouse import StagedRows, WarehouseStaging, table_name
from gl_pipelines.resources.warehouse_reader import WINDOW_ROWS, WarehouseReader

TRANSIENT_STEP_RETRIES = 2
MANUAL_RUN_ATTEMPTS = 2  # a person trying a new site config wants the answer in seconds, not minutes
AUTOMATION_TAGS = (
    "dagster/schedule_name",
    "dagster/sensor_name",
    "dagster/backfill",
    "dagster/auto_materialize",
    "dagster/from_automation_condition",
)
CONNECT_HINT = (
    "check the endpoint's host and port in the site config, that the OPC UA server is running, "
    "and that no firewall blocks that port from this host"
)


def launched_by_automation(run_tags: Mapping[str, str]) -> bool:
    """Schedules, sensors, backfills and automation conditions tag their runs; anything else a person launched."""
    return any(tag in run_tags for tag in AUTOMATION_TAGS)


SUMMARY_COLUMNS = ["day", "tag", "unit", "count", "count_good", "pct_good", "min", "mean", "max"]


def daily_summary(readings: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Per plant day (midnight in `timezone`, stored as its UTC instant) and tag: sample counts,
    share of good samples, and min/mean/max of the good values (`daily_summary_query` in SQL)."""
    if readings.empty:
        return empty_summary()
    local_midnight = readings["ts"].dt.tz_convert(timezone).dt.normalize().dt.tz_convert("UTC")
    frame = readings.assign(day=local_midnight, is_good=readings["quality"].eq("good"))
    frame["good_value"] = frame["value"].where(frame["is_good"])
    summary = frame.groupby(["day", "tag", "unit"], as_index=False).agg(
        count=("ts", "size"),
        count_good=("is_good", "sum"),
        min=("good_value", "min"),
        mean=("good_value", "mean"),
        max=("good_value", "max"),
    )
    summary["pct_good"] = 100.0 * summary["count_good"] / summary["count"]
    return summary[SUMMARY_COLUMNS]


def daily_summary_query(timezone: str) -> str:
    """Per plant day (midnight in `timezone`, as its UTC instant) and tag, over the window's readings: sample
    counts, share of good samples, and min/mean/max of the good values; run where the readings are stored."""
    zone = timezone.replace("'", "''")
    good = "FILTER (WHERE quality = 'good')"
    return f"""SELECT timezone('{zone}', date_trunc('day', timezone('{zone}', ts))) AS day, tag, unit,
    count(*) AS count, count(*) {good} AS count_good, 100.0 * count(*) {good} / count(*) AS pct_good,
    min(value) {good} AS min, avg(value) {good} AS mean, max(value) {good} AS max
FROM {WINDOW_ROWS} GROUP BY ALL ORDER BY day, tag"""


def empty_summary() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in SUMMARY_COLUMNS}).astype({"day": "datetime64[ns, UTC]"})


def staged_provenance(
    opcua: OpcUaResource, chunks: HistoryChunks, staged: StagedRows, staging: WarehouseStaging
) -> dict[str, object]:
    """The provenance of a chunked OPC UA read, counted from its staged rows."""
    return staged_provenance_metadata(
        staged,
        staging.database,
        endpoint=opcua.safe_endpoint,
        window=chunks.window,
        query=f"HistoryReadRaw {len(chunks.tags)} nodes in {len(chunks.plan)} chunks of at most "
        f"~{opcua.chunk_values} values, {chunks.requests} requests",
        payload_sha256=chunks.payload_sha256,
        resource_version=RESOURCE_VERSION,
        duration_s=chunks.duration_s,
        dropped_outside_window=chunks.dropped_outside_window,
    )


def build_scada_assets(
    source: OpcUaSource, thresholds: CheckThresholds, timezone: str, names: InstanceNames | None = None
) -> list[AssetsDefinition]:
    """The SCADA assets of one OPC UA source instance; plant days in its site's `timezone`."""
    names = names or InstanceNames.single("opcua")
    tags = [TagRef(tag.name, tag.node_id, tag.unit) for tag in source.tags]
    readings_key = names.key("scada_readings")
    audit = scada_audit(source, thresholds, timezone, readings_key)

    @asset(
        partitions_def=site_hourly_partitions(timezone),
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        kinds={"opcua", "duckdb"},
        required_resource_keys={names.resource_key, "warehouse_staging"},
        **names.asset_args("scada"),
        metadata={"partition_expr": "ts"},
        check_specs=audit.specs(),
        pool=WAREHOUSE_POOL,
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
        description="Raw OPC UA history, one row per tag and source timestamp, every quality kept; published "
        "only when its blocking checks pass.",
    )
    def scada_readings(context: AssetExecutionContext) -> Iterator:
        opcua: OpcUaResource = getattr(context.resources, names.resource_key)
        warehouse_staging: WarehouseStaging = context.resources.warehouse_staging
        start, end = utc_window(context.partition_time_window)
        context.log.info(f"reading {len(tags)} tags from {opcua.safe_endpoint} for [{start}, {end})")
        automated = launched_by_automation(context.run.tags)
        chunks = opcua.read_raw_history_chunks(
            tags,
            start,
            end,
            sample_interval_s=source.sample_interval_s,
            attempts=None if automated else MANUAL_RUN_ATTEMPTS,
        )
        try:
            staged = warehouse_staging.stage_chunks(audit.asset, chunks)
        except OpcUaTransientError as error:
            if not automated:  # a person is waiting: say what to check instead of retrying for minutes
                raise Failure(
                    description=f"{error}; {CONNECT_HINT}. (Runs launched by a person fail at once; scheduled, "
                    f"sensor and backfill runs retry the step {TRANSIENT_STEP_RETRIES} times, "
                    f"{opcua.step_retry_wait_s:g} s apart.)",
                    allow_retries=False,
                ) from error
            # The resource already retried with backoff; give the server a few minutes before
            # failing the run, and never retry permanent errors (unknown NodeId, bad data).
            raise RetryRequested(max_retries=TRANSIENT_STEP_RETRIES, seconds_to_wait=opcua.step_retry_wait_s) from error
        try:
            metadata = staged_provenance(opcua, chunks, staged, warehouse_staging)
        except BaseException:
            warehouse_staging.drop(staged.table)
            raise
        yield from audit.run_staged(context, staged, metadata, warehouse_staging)

    @asset(
        partitions_def=site_daily_partitions(timezone),
        backfill_policy=backfill_policy(),
        ins={
            "scada_readings": AssetIn(
                key=readings_key, partition_mapping=TimeWindowPartitionMapping(), dagster_type=Nothing
            )
        },
        required_resource_keys={"warehouse_reader"},
        io_manager_key="warehouse",
        **names.asset_args("scada"),
        kinds={"sql", "duckdb"},
        metadata={"partition_expr": "day"},
        pool=WAREHOUSE_POOL,
        automation_condition=AutomationCondition.eager() & every_upstream_partition_checked(),
        description=f"Per tag and plant day ({timezone}): count, % good, min/mean/max of good values.",
    )
    def scada_daily_summary(context: AssetExecutionContext) -> Output[pd.DataFrame]:
        require_checks_passed(
            context,
            readings_key,
            SCADA_BLOCKING_CHECKS,
            context.asset_partition_keys_for_input("scada_readings"),
        )
        reader: WarehouseReader = context.resources.warehouse_reader
        start, end = utc_window(context.partition_time_window)
        # Aggregated where the readings are stored: a plant day of 1 s samples is far too big for pandas.
        columns, query = ["ts", "tag", "unit", "value", "quality"], daily_summary_query(timezone)
        summary = reader.query_window(table_name(readings_key), "ts", start, end, columns, query)
        summary = empty_summary() if summary is None else summary[SUMMARY_COLUMNS]
        return Output(
            summary,
            metadata={
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "input_rows": int(summary["count"].sum()),
                "dagster/row_count": len(summary),
                "preview": MetadataValue.md(preview_markdown(summary, rows=20)),
            },
        )

    return [scada_readings, scada_daily_summary]
