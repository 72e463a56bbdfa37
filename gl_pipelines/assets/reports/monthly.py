"""`monthly_report`: the HTML report of a plant month and its data-quality results page."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    Nothing,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.charts import bar_chart
from gl_pipelines.assets.partitions import (
    backfill_policy,
    utc_window,
)
from gl_pipelines.assets.reports.common import (
    REPORT_COLUMNS,
    WAREHOUSE_READER_KEY,
    Definition,
    gate,
    overlapping_partition_keys,
    report_asset_args,
    site_monthly_partitions,
    stored_reports,
)
from gl_pipelines.checks.reports import REPORT_BLOCKING_CHECKS
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import SiteConfig
from gl_pipelines.reporting.check_results import stored_check_results
from gl_pipelines.reporting.html_report import Section, render_check_results, render_report, write_html


def monthly_report_asset(
    site: SiteConfig, reports: list[str], definitions: Sequence[Definition], root, names: InstanceNames
) -> list[AssetsDefinition]:
    """The month's HTML report and its validation-results page, from the reports that exist."""
    if not reports:
        return []
    reporting, timezone = site.reporting, site.site.timezone
    monthly = site_monthly_partitions(timezone)
    # Lineage and gating only (Nothing): the step reads the four reports through one warehouse connection.
    ins = {
        name: AssetIn(
            key=names.key(name),
            partition_mapping=TimeWindowPartitionMapping() if name == "plant_energy_balance" else None,
            dagster_type=Nothing,
        )
        for name in reports
    }
    partitions = {key: d.partitions_def for d in definitions if isinstance(d, AssetsDefinition) for key in d.keys}
    checked = {spec.asset_key for d in definitions for spec in d.check_specs}
    validated = sorted((key for key in checked if partitions.get(key) is not None), key=AssetKey.to_user_string)

    def render_month(instance, month: str, frames: Mapping[str, pd.DataFrame]):
        window = monthly.time_window_for_partition_key(month)
        results = pd.concat(
            [
                stored_check_results(instance, key, overlapping_partition_keys(partitions[key], window))
                for key in validated
            ],
            ignore_index=True,
        )
        checks_path = write_html(
            root / "monthly" / f"checks_{month}.html",
            render_check_results(f"{site.site.name}: data-quality results, month {month}", results),
        )
        start, end = utc_window(window)
        sections = [section(name, rows_in(frames[name], name, start, end), timezone) for name in reports]
        html_path = write_html(
            root / "monthly" / f"report_{month}.html",
            render_report(
                f"{site.site.name}: monthly energy and emissions report, {month}",
                f"plant month {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC; generated "
                f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; GWP {reporting.gwp_set}",
                sections,
                {"data-quality check results": checks_path.name},
            ),
        )
        return html_path, checks_path, results

    @asset(
        name="monthly_report",
        partitions_def=monthly,
        backfill_policy=backfill_policy(),
        ins=ins,
        required_resource_keys={WAREHOUSE_READER_KEY},
        kinds={"html"},
        **report_asset_args(names, stored=False),
        description="Self-contained HTML report per plant month (tables, charts as data URIs) and a page of the "
        "month's data-quality check results, in the reports folder.",
    )
    def monthly_report(context: AssetExecutionContext) -> MaterializeResult:
        for name in reports:
            keys = context.asset_partition_keys_for_input(name)
            gate(context, names.key(name), REPORT_BLOCKING_CHECKS[name], keys)
        reader = getattr(context.resources, WAREHOUSE_READER_KEY)
        frames = stored_reports(reader, reports, utc_window(context.partition_time_window), names)
        # A single-run backfill loads the range's rows once and writes one page pair per month.
        pages = [render_month(context.instance, month, frames) for month in context.partition_keys]
        results = pd.concat([month_results for _, _, month_results in pages], ignore_index=True)
        failed = int((~results["passed"]).sum()) if not results.empty else 0
        if len(pages) == 1:
            html_path, checks_path, _ = pages[0]
            metadata = {
                "report_html": MetadataValue.path(str(html_path)),
                "report_url": MetadataValue.url(html_path.as_uri()),
                "check_results_html": MetadataValue.path(str(checks_path)),
                "check_results_url": MetadataValue.url(checks_path.as_uri()),
            }
        else:
            metadata = {
                "report_folder": MetadataValue.path(str(root / "monthly")),
                "report_files": MetadataValue.json([path.name for page in pages for path in page[:2]]),
            }
        return MaterializeResult(metadata=metadata | {"check_evaluations": len(results), "check_failures": failed})

    return [monthly_report]


def rows_in(frame: pd.DataFrame, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The rows of a loaded report that belong to one plant month (a range run loads several)."""
    time_column = next(iter(REPORT_COLUMNS[name]))
    if frame.empty or time_column not in frame:
        return frame
    return frame[(frame[time_column] >= start) & (frame[time_column] < end)]


def section(name: str, frame: pd.DataFrame, timezone: str) -> Section:
    titles = {
        "plant_energy_balance": ("Boiler energy balance (daily)", None),
        "ghg_inventory": ("Scope 1 GHG inventory", None),
        "cems_fuel_reconciliation": ("CEMS vs fuel-based CO2", "within_tolerance"),
        "emissions_intensity": ("Emissions intensity", None),
    }
    title, flag = titles[name]
    chart = None
    if name == "plant_energy_balance" and not frame.empty:
        days = [f"{pd.Timestamp(d).tz_convert(timezone):%d}" for d in frame["day"]]
        chart = bar_chart(days, {"efficiency": frame["efficiency"].fillna(0)}, "Boiler efficiency by day", "ratio")
    elif name == "ghg_inventory" and not frame.empty:
        chart = bar_chart(list(frame["fuel_type"]), {"t CO2e": frame["co2e_t"]}, "Scope 1 CO2e by fuel", "t CO2e")
    elif name == "cems_fuel_reconciliation" and not frame.empty:
        chart = bar_chart(
            list(frame["unit_name"]),
            {"CEMS": frame["cems_co2_t"].fillna(0), "fuel-based": frame["fuel_co2_t"].fillna(0)},
            "CO2: CEMS vs fuel",
            "t CO2",
        )
    return Section(title, frame, chart, flag_column=flag)
