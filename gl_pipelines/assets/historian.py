"""PI Web API historian: daily recorded values in the canonical long schema.

The asset stays thin: ask the resource for the plant day chunk by chunk (`chunk_values` values at a time),
append each chunk to a staging table, attach provenance, audit the staged rows with the blocking checks in
DuckDB (`checks.wap`). The warehouse IO manager replaces the day's rows from the staging table when they
passed, so re-runs never duplicate, and quarantines them when they did not. No step holds a plant day of
a large PI server in pandas: memory is bounded by `chunk_values`. Proficy (assets/proficy.py) shares
`stage_and_audit`.
"""

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    FreshnessPolicy,
    asset,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.assets.provenance import staged_provenance_metadata
from gl_pipelines.checks.historian import historian_audit
from gl_pipelines.checks.readings import ReadingsAudit
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import CheckThresholds, HistorianSource
from gl_pipelines.resources.historian import RESOURCE_VERSION, HistorianChunks, HistorianResource, pi_tags
from gl_pipelines.resources.http import HttpSourceResource, read_or_step_retry
from gl_pipelines.resources.warehouse import StagedRows, WarehouseStaging


def build_historian_assets(
    source: HistorianSource, thresholds: CheckThresholds, timezone: str, names: InstanceNames | None = None
) -> list[AssetsDefinition]:
    """The historian assets of one PI Web API instance; plant days in its site's `timezone`."""
    names = names or InstanceNames.single("historian")
    tags = pi_tags(source)
    audit = historian_audit(source, thresholds, timezone, names.key("historian_recorded"))

    @asset(
        partitions_def=site_daily_partitions(timezone),
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        kinds={"pi", "duckdb"},
        required_resource_keys={names.resource_key, "warehouse_staging"},
        **names.asset_args("historian"),
        metadata={"partition_expr": "ts"},
        check_specs=audit.specs(),
        pool=WAREHOUSE_POOL,
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=27)),
        description="PI recorded values per tag and timestamp for each plant day; flags and system states "
        "mapped to quality (a digital state keeps its name in `status`, its value stays NULL).",
    )
    def historian_recorded(context: AssetExecutionContext) -> Iterator:
        historian: HistorianResource = getattr(context.resources, names.resource_key)
        warehouse_staging: WarehouseStaging = context.resources.warehouse_staging
        start, end = utc_window(context.partition_time_window)
        context.log.info(f"reading {len(tags)} PI points from {historian.safe_endpoint} for [{start}, {end})")
        chunks = historian.read_recorded_chunks(tags, start, end, sample_interval_s=source.sample_interval_s)
        query = f"streamsets/recorded {len(tags)} points, maxCount={historian.max_count}"
        yield from stage_and_audit(context, historian, chunks, audit, warehouse_staging, query, RESOURCE_VERSION)

    return [historian_recorded]


def stage_and_audit(
    context: AssetExecutionContext,
    resource: HttpSourceResource,
    chunks: HistorianChunks,
    audit: ReadingsAudit,
    staging: WarehouseStaging,
    query: str,
    resource_version: str,
) -> Iterator:
    """Stage a chunked historian read (PI, Proficy) chunk by chunk as it arrives, attach its provenance and
    audit the staged rows; the output is the staged table, which the IO manager publishes or quarantines."""
    # The read happens while staging: a transient HTTP failure there is a step retry, as for a whole read.
    staged = read_or_step_retry(resource, lambda: staging.stage_chunks(audit.asset, chunks))
    try:
        metadata = staged_read_metadata(resource, chunks, staged, staging, query, resource_version)
    except BaseException:
        staging.drop(staged.table)
        raise
    yield from audit.run_staged(context, staged, metadata, staging)


def staged_read_metadata(
    resource: HttpSourceResource,
    chunks: HistorianChunks,
    staged: StagedRows,
    staging: WarehouseStaging,
    query: str,
    resource_version: str,
) -> dict[str, object]:
    """Provenance of a chunked, paged historian read: endpoint, window, query with its chunk and paging counts,
    counted from its staged rows."""
    return staged_provenance_metadata(
        staged,
        staging.database,
        endpoint=resource.safe_endpoint,
        window=chunks.window,
        query=f"{query}, {len(chunks.plan)} chunks of at most ~{resource.chunk_values} values, {chunks.pages} "
        f"pages, {chunks.requests} requests ({chunks.retries} retries)",
        payload_sha256=chunks.payload_sha256,
        resource_version=resource_version,
        duration_s=chunks.duration_s,
        dropped_outside_window=dict(sorted(chunks.dropped_outside_window.items())),
    )
