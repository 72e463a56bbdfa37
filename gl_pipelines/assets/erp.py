"""ERP documents over SAP OData: daily fuel receipts and production, and master data.

Assets stay thin: build the query from the site config, ask the resource for the plant day's
documents (posting date inside the partition window), attach provenance, return the frame. The
warehouse IO manager replaces the partition, so a re-run never duplicates; the resource keeps one
row per document key. Quantities and amounts are DECIMAL(18,3), exact.
"""

from collections.abc import Iterator
from urllib.parse import urlsplit

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    Failure,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.assets.provenance import provenance_metadata
from gl_pipelines.checks.erp import MAX_LISTED, ErpAudit, erp_audits, outside_window
from gl_pipelines.checks.wap import audited
from gl_pipelines.config import ERP_KEYS, ErpEntity, ErpSource
from gl_pipelines.resources.erp import RESOURCE_VERSION, EntityQuery, ErpExtract, ErpPagingError, ErpResource
from gl_pipelines.resources.http import HttpTransientError, step_retry
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.schedules import partition_schedule

TRANSIENT_STEP_RETRIES = 2
STEP_RETRY_WAIT_S = 120


def entity_query(kind: str, entity: ErpEntity) -> EntityQuery:
    """The resource query for one configured entity (`kind` is fuel_receipts, production, ...)."""
    return EntityQuery(
        entity_set=entity.entity_set,
        fields=dict(entity.fields),
        keys=ERP_KEYS[kind],
        date_column="posting_date" if "posting_date" in entity.fields else None,
        filter=entity.filter,
    )


def _extract(context: AssetExecutionContext, erp: ErpResource, query: EntityQuery, window, audit: ErpAudit):
    try:
        extract: ErpExtract = erp.read(query, window)
    except (HttpTransientError, ErpPagingError) as error:
        # The client already retried with backoff, or documents moved while we paged: give the ERP a
        # few minutes and read the window again before failing the run.
        raise step_retry(
            error,
            max_retries=TRANSIENT_STEP_RETRIES,
            wait_s=STEP_RETRY_WAIT_S,
            max_wait_s=erp.step_retry_max_wait_s,
        ) from error
    frame = extract.frame.assign(source=erp.source_name)
    if window:
        # A row outside the window (or with no date) would be stored outside every partition: no
        # re-run would replace it and the window-loaded blocking checks would never see it.
        stray = outside_window(frame, query.date_column, *window, query.keys)
        if stray:
            raise Failure(
                f"{erp.source_name}: {query.entity_set}: {len(stray)} rows outside the plant day "
                f"[{window[0].isoformat()}, {window[1].isoformat()}): " + "; ".join(stray[:MAX_LISTED]),
                allow_retries=False,
            )
        metadata = provenance_metadata(
            endpoint=erp.safe_endpoint,
            window=window,
            query=extract.query,
            payload_sha256=extract.payload_sha256,
            resource_version=RESOURCE_VERSION,
            duration_s=extract.duration_s,
            frame=frame,
        )
    else:
        metadata = {
            "source_endpoint": erp.safe_endpoint,
            "query": extract.query,
            "payload_sha256": extract.payload_sha256,
            "resource_version": RESOURCE_VERSION,
            "extraction_seconds": round(extract.duration_s, 3),
            "dagster/row_count": len(frame),
        }
    metadata |= {
        "extraction_mode": extract.mode,
        "pages": extract.pages,
        "requests": extract.requests,
        "server_count": extract.server_count if extract.server_count is not None else -1,
        "duplicates_dropped": extract.duplicates_dropped,
        "delta_offered": extract.delta_link is not None,
    }
    context.log.info(f"{query.entity_set}: {len(frame)} rows in {extract.pages} pages ({extract.mode})")
    yield from audited(context, frame, metadata, audit.results(frame, window))


def build_erp_assets(source: ErpSource, timezone: str) -> list[AssetsDefinition]:
    daily = site_daily_partitions(timezone)
    audits = erp_audits(source, timezone)

    def documents(kind: str, description: str) -> AssetsDefinition:
        query = entity_query(kind, getattr(source, kind))
        audit = audits[f"erp_{kind}"]

        @asset(
            name=f"erp_{kind}",
            partitions_def=daily,
            backfill_policy=backfill_policy(),
            io_manager_key="warehouse",
            group_name="erp",
            kinds={"odata", "duckdb"},
            metadata={"partition_expr": "posting_date"},
            check_specs=audit.specs(),
            pool=WAREHOUSE_POOL,
            description=description,
        )
        def _documents(context: AssetExecutionContext, erp: ErpResource) -> Iterator:
            yield from _extract(context, erp, query, utc_window(context.partition_time_window), audit)

        return _documents

    def master(kind: str, description: str) -> AssetsDefinition:
        query = entity_query(kind, getattr(source, kind))
        audit = audits[f"erp_{kind}"]

        @asset(
            name=f"erp_{kind}",
            io_manager_key="warehouse",
            group_name="erp",
            kinds={"odata", "duckdb"},
            check_specs=audit.specs(),
            pool=WAREHOUSE_POOL,
            description=description,
        )
        def _master(context: AssetExecutionContext, erp: ErpResource) -> Iterator:
            yield from _extract(context, erp, query, None, audit)

        return _master

    return [
        documents("fuel_receipts", "Fuel goods receipts per plant day (posting date), one row per document item."),
        documents("production", "Production confirmations per plant day (posting date), one row per confirmation."),
        master("materials", "Material master (replaced whole on each run)."),
        master("plants", "Plants (replaced whole on each run)."),
    ]


def build_erp_jobs(source: ErpSource, timezone: str) -> tuple[list, list]:
    """(jobs, schedules): documents daily after the plant day closes, master data once a day."""
    daily = site_daily_partitions(timezone)
    documents_job = define_asset_job(
        "erp_daily_job",
        selection=AssetSelection.assets("erp_fuel_receipts", "erp_production"),
        tags={"gl/erp-service": urlsplit(source.service_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)},
        description="Daily ERP documents (fuel receipts, production) with their blocking checks.",
    )
    master_job = define_asset_job(
        "erp_master_data_job",
        selection=AssetSelection.assets("erp_materials", "erp_plants"),
        tags={"gl/erp-service": urlsplit(source.service_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)},
        description="ERP material master and plants, replaced whole.",
    )
    schedules = [
        # 02:00 plant time: goods receipts of the closed day are usually posted by then.
        partition_schedule(documents_job, daily, minute_of_hour=0, hour_of_day=2, source_resource_key="erp"),
        ScheduleDefinition(
            name="erp_master_data_job_schedule",
            job=master_job,
            cron_schedule="30 1 * * *",
            execution_timezone=timezone,
            description="Refreshes the ERP master data before the daily documents run.",
        ),
    ]
    return [documents_job, master_job], schedules
