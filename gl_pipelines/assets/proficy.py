"""GE Proficy Historian: daily raw samples in the canonical long schema, with the historian's checks.

Same shape as `historian_recorded` (assets/historian.py `stage_and_audit`): read the plant day chunk by
chunk into a staging table, attach provenance, audit the staged rows with the readings checks
(great-expectations suite and completeness, checks/readings.py), and let the warehouse IO manager publish
or quarantine the day.
"""

from collections.abc import Iterator

from dagster import AssetExecutionContext, AssetsDefinition, asset

from gl_pipelines.assets.historian import stage_and_audit
from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.checks.readings import ReadingsAudit
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import CheckThresholds
from gl_pipelines.resources.proficy import RESOURCE_VERSION, ProficyHistorianResource, ProficySource
from gl_pipelines.resources.warehouse import WarehouseStaging

NAME = "proficy_recorded"


def build_proficy_assets(
    source: ProficySource, thresholds: CheckThresholds, timezone: str, names: InstanceNames | None = None
) -> list[AssetsDefinition]:
    """The raw-samples asset of one Proficy Historian instance; plant days in its site's `timezone`."""
    names = names or InstanceNames.single("proficy")
    tags = source.proficy_tags()
    partitions = site_daily_partitions(timezone)
    audit = ReadingsAudit(NAME, partitions, source.tag_ranges(), source.sample_interval_s, thresholds, names.key(NAME))

    @asset(
        name=NAME,
        partitions_def=partitions,
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        required_resource_keys={names.resource_key, "warehouse_staging"},
        **names.asset_args("historian"),
        kinds={"proficy", "duckdb"},
        metadata={"partition_expr": "ts"},
        check_specs=audit.specs(),
        pool=WAREHOUSE_POOL,
        description="Proficy Historian raw samples per tag and timestamp for each plant day; Quality mapped "
        "(3 good, 1 uncertain, 0 bad and 2 NA bad; a non-numeric value is bad with its text in `status`).",
    )
    def _recorded(context: AssetExecutionContext) -> Iterator:
        proficy: ProficyHistorianResource = getattr(context.resources, names.resource_key)
        warehouse_staging: WarehouseStaging = context.resources.warehouse_staging
        start, end = utc_window(context.partition_time_window)
        chunks = proficy.read_raw_chunks(tags, start, end, sample_interval_s=source.sample_interval_s)
        query = f"datapoints/raw {len(tags)} tags, count={proficy.max_count}"
        yield from stage_and_audit(context, proficy, chunks, audit, warehouse_staging, query, RESOURCE_VERSION)

    return [_recorded]
