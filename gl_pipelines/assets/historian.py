"""PI Web API historian: daily recorded values in the canonical long schema.

The asset stays thin: ask the resource for the plant day, attach provenance, audit the frame with
the blocking checks (`checks.wap`). The warehouse IO manager replaces the day's rows when they
passed, so re-runs never duplicate, and quarantines them when they did not.
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
from gl_pipelines.assets.provenance import provenance_metadata
from gl_pipelines.checks.historian import historian_audit
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import CheckThresholds, HistorianSource
from gl_pipelines.resources.historian import RESOURCE_VERSION, HistorianResource, pi_tags
from gl_pipelines.resources.http import read_or_step_retry
from gl_pipelines.resources.warehouse import WarehouseStaging


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
        read = read_or_step_retry(historian, lambda: historian.read_recorded(tags, start, end))
        metadata = historian_read_metadata(
            historian,
            (start, end),
            f"streamsets/recorded {len(tags)} points, maxCount={historian.max_count}",
            read,
            RESOURCE_VERSION,
        )
        yield from audit.run(context, read.frame, metadata, warehouse_staging)

    return [historian_recorded]


def historian_read_metadata(resource, window: tuple, query: str, read, resource_version: str) -> dict:
    """Provenance of a paged historian read (PI, Proficy): endpoint, window, query with its paging counts."""
    return provenance_metadata(
        endpoint=resource.safe_endpoint,
        window=window,
        query=f"{query}, {read.pages} pages, {read.requests} requests ({read.stats['retries']} retries)",
        payload_sha256=read.payload_sha256,
        resource_version=resource_version,
        duration_s=read.duration_s,
        frame=read.frame,
        dropped_outside_window=read.dropped_outside_window,
    )
