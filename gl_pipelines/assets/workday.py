"""Workday reports (RaaS) and REST collections as assets, stored like OData entity sets.

Each report or collection is read through the ERP assets' own extraction (`assets.erp._extract`: provenance,
rows outside the window refused, the audit run before publish) with the checks of an OData entity set
(`checks.erp.entity_set_audit`): keys unique, required columns present and, for a dated one, every date
inside the partition's plant day. A dated one is stored per plant day, the others are replaced whole.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    ScheduleDefinition,
    asset,
)

from gl_pipelines.assets.erp import _extract, daily_and_whole_jobs
from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.checks.erp import entity_set_audit
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import ErpEntitySet
from gl_pipelines.resources.erp import EntityQuery, ErpExtract
from gl_pipelines.resources.workday import WorkdayCollection, WorkdayReport, WorkdayResource, WorkdaySource
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime

DAILY_JOB = "workday_daily_job"
WHOLE_JOB = "workday_refresh_job"


@dataclass(frozen=True)
class WorkdayReader:
    """One report or collection read the way the ERP assets read an entity set: `read(query, window)`."""

    workday: WorkdayResource
    item: WorkdayReport | WorkdayCollection

    def read(self, query: EntityQuery, window: tuple[datetime, datetime] | None) -> ErpExtract:
        item = self.item
        if isinstance(item, WorkdayReport):
            return self.workday.read_report(item.owner, query, window, item.prompts, item.filter)
        return self.workday.read_collection(item.service, query, item.column_types(), window, item.filter)

    @property
    def source_name(self) -> str:
        return self.workday.source_name

    @property
    def safe_endpoint(self) -> str:
        return self.workday.safe_endpoint

    @property
    def step_retry_max_wait_s(self) -> float:
        return self.workday.step_retry_max_wait_s


def as_entity_set(item: WorkdayReport | WorkdayCollection) -> ErpEntitySet:
    """The OData entity set the item would be, so its checks are the entity sets' own."""
    return ErpEntitySet(
        name=item.name,
        entity_set=item.path,
        fields=item.fields,
        key=item.key,
        date_column=item.date_column,
        required=item.required,
        description=item.description,
    )


def _description(item: WorkdayReport | WorkdayCollection) -> str:
    report = isinstance(item, WorkdayReport)
    what = f"report {item.owner}/{item.report}" if report else f"collection {item.service}/{item.resource}"
    refresh = f"{item.date_column} per plant day" if item.date_column else "replaced whole on each run"
    return item.description or f"Workday {what} ({refresh})."


def build_workday_assets(
    source: WorkdaySource, timezone: str, names: InstanceNames | None = None
) -> list[AssetsDefinition]:
    """One asset per report and collection (resource key `names.resource_key`, `workday` for a single site)."""
    names = names or InstanceNames.single("workday")
    daily = site_daily_partitions(timezone)

    def item_asset(item: WorkdayReport | WorkdayCollection) -> AssetsDefinition:
        audit = entity_set_audit(as_entity_set(item), timezone, names.key(item.name))
        dated = item.date_column is not None

        @asset(
            name=item.name,
            partitions_def=daily if dated else None,
            backfill_policy=backfill_policy() if dated else None,
            io_manager_key="warehouse",
            kinds={"workday", "duckdb"},
            metadata={"partition_expr": item.date_column} if dated else None,
            check_specs=audit.specs(),
            pool=WAREHOUSE_POOL,
            description=_description(item),
            required_resource_keys={names.resource_key},
            **names.asset_args("workday"),
        )
        def _item(context: AssetExecutionContext) -> Iterator:
            reader = WorkdayReader(getattr(context.resources, names.resource_key), item)
            window = utc_window(context.partition_time_window) if dated else None
            yield from _extract(context, reader, item.query(), window, audit)

        return _item

    return [item_asset(item) for item in source.sets()]


def build_workday_jobs(
    source: WorkdaySource, timezone: str, names: InstanceNames
) -> tuple[list, list[ScheduleDefinition]]:
    """(jobs, schedules): dated sets daily after the plant day closes, the others once a day before them."""
    dated = [item.name for item in source.sets() if item.date_column]
    whole = [item.name for item in source.sets() if not item.date_column]
    tags = {"gl/workday-tenant": source.tenant, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)}
    # 03:00 plant time: time blocks of the closed day are usually submitted by then.
    return daily_and_whole_jobs(
        names,
        dated,
        whole,
        tags,
        timezone,
        daily=(DAILY_JOB, 3, "Daily Workday reports and collections with their blocking checks."),
        whole_refresh=(
            WHOLE_JOB,
            "30 2 * * *",
            "Workday reports and collections without a date, replaced whole.",
            "Refreshes the undated Workday sets (e.g. workers) before the daily ones run.",
        ),
    )
