"""Workday reports per plant day (e.g. hours worked, for intensity per labour hour), stored like ERP documents.

A report is read through the ERP assets' own extraction (`assets.erp._extract`: provenance, rows outside
the window refused, the audit run before publish), with the ERP document checks that apply to any
keyed, dated row: keys unique and every date inside the partition's plant day.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from dagster import AssetExecutionContext, AssetsDefinition, asset

from gl_pipelines.assets.erp import _extract
from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.checks.erp import ErpAudit, duplicate_keys, outside_window
from gl_pipelines.resources.erp import EntityQuery, ErpExtract
from gl_pipelines.resources.workday import WorkdayReport, WorkdayResource, WorkdaySource


@dataclass(frozen=True)
class ReportReader:
    """One report read the way the ERP assets read an entity set: `read(query, window)`."""

    workday: WorkdayResource
    owner: str
    prompts: Mapping[str, str]

    def read(self, query: EntityQuery, window: tuple[datetime, datetime] | None) -> ErpExtract:
        return self.workday.read_report(self.owner, query, window, self.prompts)

    @property
    def source_name(self) -> str:
        return self.workday.source_name

    @property
    def safe_endpoint(self) -> str:
        return self.workday.safe_endpoint

    @property
    def step_retry_max_wait_s(self) -> float:
        return self.workday.step_retry_max_wait_s


def report_audit(asset_name: str, report: WorkdayReport, timezone: str) -> ErpAudit:
    keys, column = tuple(report.keys), report.date_column
    rules = {
        "keys_unique": (
            f"One row per key ({', '.join(keys)}).",
            lambda f, w: (duplicate_keys(f, keys), f"{len(f)} rows, keys unique"),
        ),
        "in_window": (
            f"Every {column} is inside the partition's plant day.",
            lambda f, w: (outside_window(f, column, *w, keys), f"all {column} in [{w[0]}, {w[1]})"),
        ),
    }
    return ErpAudit(
        asset_name,
        keys,
        {f"{asset_name}_{rule}": description for rule, (description, _) in rules.items()},
        {f"{asset_name}_{rule}": check for rule, (_, check) in rules.items()},
        site_daily_partitions(timezone),
    )


def build_workday_assets(source: WorkdaySource, timezone: str) -> list[AssetsDefinition]:
    """One daily asset `workday_<name>` per configured report (resource key `workday`)."""

    def report_asset(name: str, report: WorkdayReport) -> AssetsDefinition:
        asset_name = f"workday_{name}"
        audit = report_audit(asset_name, report, timezone)
        prompts = {"start": report.start_prompt, "end": report.end_prompt}

        @asset(
            name=asset_name,
            partitions_def=site_daily_partitions(timezone),
            backfill_policy=backfill_policy(),
            io_manager_key="warehouse",
            group_name="workday",
            kinds={"workday", "duckdb"},
            metadata={"partition_expr": report.date_column},
            check_specs=audit.specs(),
            pool=WAREHOUSE_POOL,
            description=f"Workday report {report.owner}/{report.report} per plant day ({report.date_column}).",
        )
        def _report(context: AssetExecutionContext, workday: WorkdayResource) -> Iterator:
            reader = ReportReader(workday, report.owner, prompts)
            yield from _extract(context, reader, report.query(), utc_window(context.partition_time_window), audit)

        return _report

    return [report_asset(name, report) for name, report in source.reports.items()]
