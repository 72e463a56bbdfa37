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
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import ERP_KEYS, ErpEntity, ErpEntitySet, ErpSource
from gl_pipelines.resources.erp import RESOURCE_VERSION, EntityQuery, ErpExtract, ErpPagingError, ErpResource
from gl_pipelines.resources.http import read_or_step_retry
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.schedules import partition_schedule

DOCUMENT_ROLES = ("fuel_receipts", "production")


def entity_query(kind: str, entity: ErpEntity) -> EntityQuery:
    """The resource query for one configured entity (`kind` is fuel_receipts, production, ...)."""
    return EntityQuery(
        entity_set=entity.entity_set,
        fields=dict(entity.fields),
        keys=ERP_KEYS[kind],
        date_column="posting_date" if "posting_date" in entity.fields else None,
        filter=entity.filter,
    )


def entity_set_query(entity: ErpEntitySet) -> EntityQuery:
    """The resource query for one generic entity set."""
    return EntityQuery(entity.entity_set, dict(entity.fields), tuple(entity.key), entity.date_column, entity.filter)


def _extract(context: AssetExecutionContext, erp: ErpResource, query: EntityQuery, window, audit: ErpAudit):
    # The client already retried with backoff, or documents moved while we paged: give the ERP a few minutes
    # and read the window again before failing the run.
    extract: ErpExtract = read_or_step_retry(erp, lambda: erp.read(query, window), retry_on=(ErpPagingError,))
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


def build_erp_assets(source: ErpSource, timezone: str, names: InstanceNames | None = None) -> list[AssetsDefinition]:
    """One asset per configured role (erp_fuel_receipts, ...) and per generic entity set of one OData instance."""
    names = names or InstanceNames.single("erp")
    daily = site_daily_partitions(timezone)
    audits = erp_audits(source, timezone, names.key)

    def entity_asset(name: str, query: EntityQuery, dated: bool, description: str) -> AssetsDefinition:
        audit = audits[name]

        @asset(
            name=name,
            partitions_def=daily if dated else None,
            backfill_policy=backfill_policy() if dated else None,
            io_manager_key="warehouse",
            # The instance's kind (odata, odata_v4, oracle_fusion); a single-site file's `erp` speaks OData v2.
            kinds={"odata" if names.kind == "erp" else names.kind, "duckdb"},
            metadata={"partition_expr": query.date_column} if dated else None,
            check_specs=audit.specs(),
            pool=WAREHOUSE_POOL,
            description=description,
            required_resource_keys={names.resource_key},
            **names.asset_args("erp"),
        )
        def _entity(context: AssetExecutionContext) -> Iterator:
            erp: ErpResource = getattr(context.resources, names.resource_key)
            window = utc_window(context.partition_time_window) if dated else None
            yield from _extract(context, erp, query, window, audit)

        return _entity

    descriptions = {
        "fuel_receipts": "Fuel goods receipts per plant day (posting date), one row per document item.",
        "production": "Production confirmations per plant day (posting date), one row per confirmation.",
        "materials": "Material master (replaced whole on each run).",
        "plants": "Plants (replaced whole on each run).",
    }
    built = [
        entity_asset(
            f"erp_{role}", entity_query(role, getattr(source, role)), role in DOCUMENT_ROLES, descriptions[role]
        )
        for role in source.roles()
    ]
    for entity in source.entity_sets:
        query = EntityQuery(
            entity.entity_set, dict(entity.fields), tuple(entity.key), entity.date_column, entity.filter
        )
        refresh = f"{entity.date_column} per plant day" if entity.date_column else "replaced whole on each run"
        built.append(
            entity_asset(
                entity.name,
                query,
                entity.date_column is not None,
                entity.description or f"{entity.entity_set} ({refresh}).",
            )
        )
    return built


def dated_asset_names(source: ErpSource) -> list[str]:
    """Names of the ERP assets partitioned by plant day (the daily job's and the change sensor's)."""
    return [f"erp_{role}" for role in source.roles() if role in DOCUMENT_ROLES] + [
        entity.name for entity in source.entity_sets if entity.date_column
    ]


def build_erp_jobs(source: ErpSource, timezone: str, names: InstanceNames | None = None) -> tuple[list, list]:
    """(jobs, schedules): dated entity sets daily after the plant day closes, the others once a day."""
    names = names or InstanceNames.single("erp")
    dated = dated_asset_names(source)
    whole = [f"erp_{role}" for role in source.roles() if role not in DOCUMENT_ROLES] + [
        entity.name for entity in source.entity_sets if not entity.date_column
    ]
    tags = {"gl/erp-service": urlsplit(source.service_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)}
    # 02:00 plant time: goods receipts of the closed day are usually posted by then.
    return daily_and_whole_jobs(
        names,
        dated,
        whole,
        tags,
        timezone,
        daily=("erp_daily_job", 2, "Daily ERP documents with their blocking checks."),
        whole_refresh=(
            "erp_master_data_job",
            "30 1 * * *",
            "ERP entity sets without a date (master data), replaced whole.",
            "Refreshes the ERP master data before the daily documents run.",
        ),
    )


def daily_and_whole_jobs(
    names: InstanceNames,
    dated: list[str],
    whole: list[str],
    tags: dict,
    timezone: str,
    daily: tuple[str, int, str],
    whole_refresh: tuple[str, str, str, str],
) -> tuple[list, list]:
    """(jobs, schedules) of an entity-set source: the dated sets' daily job, scheduled per plant day at
    `daily` = (job, hour of day, description) once the day is posted; the undated sets' job replaced whole on
    `whole_refresh` = (job, cron, job description, schedule description), before the daily one."""
    jobs, schedules = [], []
    if dated:
        job_name, hour, description = daily
        documents_job = define_asset_job(
            names.job(job_name),
            selection=AssetSelection.assets(*(names.key(name) for name in dated)),
            tags=tags,
            description=description,
        )
        jobs.append(documents_job)
        schedules.append(
            partition_schedule(
                documents_job,
                site_daily_partitions(timezone),
                minute_of_hour=0,
                hour_of_day=hour,
                source_resource_key=names.resource_key,
            )
        )
    if whole:
        job_name, cron, description, schedule_description = whole_refresh
        master_job = define_asset_job(
            names.job(job_name),
            selection=AssetSelection.assets(*(names.key(name) for name in whole)),
            tags=tags,
            description=description,
        )
        jobs.append(master_job)
        schedules.append(
            ScheduleDefinition(
                name=f"{master_job.name}_schedule",
                job=master_job,
                cron_schedule=cron,
                execution_timezone=timezone,
                description=schedule_description,
            )
        )
    return jobs, schedules
