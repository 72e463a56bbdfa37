"""Report assets, one module per report: energy balance, GHG inventory, CEMS reconciliation, intensity, monthly HTML.

Thin wiring around `gl_pipelines.reporting`: check that every upstream partition passed its
blocking checks (`checks.gate`), compute, export Parquet/CSV, attach a column schema, a
markdown summary and a chart, and yield the report's own blocking checks. Only reports whose
sources exist in the code location are built. Reports follow the plant's clock (site zone); CEMS
follows Part 75 local standard time, so `cems_fuel_reconciliation` selects its CEMS days and hours
itself (see `reconciliation.reconciliation_asset`).
"""

from collections.abc import Mapping, Sequence

from dagster import AssetKey, AssetsDefinition

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.assets.reports.common import (
    CEMS_COLUMNS,
    INPUT_ROLES,
    PRODUCTION_COLUMNS,
    REPORT_COLUMNS,
    Definition,
    assets_def_of,
    blocking_checks_of,
    column_schema,
    gate,
    overlapping_partition_keys,
    read_frames,
    report_read,
    site_monthly_partitions,
    stored_reports,
)
from gl_pipelines.assets.reports.energy_balance import balance_summary, energy_balance_asset
from gl_pipelines.assets.reports.ghg_inventory import ghg_inventory_asset
from gl_pipelines.assets.reports.intensity import emissions_intensity_asset, production_frame
from gl_pipelines.assets.reports.monthly import monthly_report_asset, rows_in, section
from gl_pipelines.assets.reports.reconciliation import cems_hours_in_balance_days, reconciliation_asset
from gl_pipelines.assets.scada import daily_summary
from gl_pipelines.checks.reports import REPORT_BLOCKING_CHECKS
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import SiteConfig
from gl_pipelines.reporting.exports import reports_root

__all__ = [
    "CEMS_COLUMNS",
    "PRODUCTION_COLUMNS",
    "REPORT_COLUMNS",
    "balance_summary",
    "build_report_assets",
    "cems_hours_in_balance_days",
    "column_schema",
    "overlapping_partition_keys",
    "production_frame",
    "read_frames",
    "report_read",
    "rows_in",
    "section",
    "site_monthly_partitions",
    "stored_reports",
]


def build_report_assets(
    site: SiteConfig,
    upstream: Sequence[Definition],
    inputs: Mapping[str, AssetKey] | None = None,
    names: InstanceNames | None = None,
) -> list[AssetsDefinition]:
    """The report assets whose inputs are among the `upstream` assets (checks on them gate the reports).

    `inputs` maps an input's role (scada_daily_summary, scada_readings, historian_recorded, erp_fuel_receipts,
    erp_production, cems_hourly_emissions) to the key of the instance's asset that plays it; a role not
    mapped is looked up by its own name (the single-site file's short keys). `names`: how the reports
    instance names its assets (`<site>/<instance>/<report>`) and its export folder (`<reports_dir>/<site>/
    <instance>`), so several sites' reports live in one code location; default the short names."""
    inputs = dict(inputs or {})
    names = names or InstanceNames.single("reports")

    def key_of(role: str) -> AssetKey:
        return inputs.get(role, AssetKey(role))

    keys = {key for d in upstream if isinstance(d, AssetsDefinition) for key in d.keys}
    available = {role for role in INPUT_ROLES if key_of(role) in keys}
    upstream_checks = upstream
    reporting = site.reporting
    if reporting is None:
        return []
    timezone = site.site.timezone
    root = reports_root(reporting.reports_dir).joinpath(*names.prefix)
    hourly = site_hourly_partitions(timezone)
    built: list[AssetsDefinition] = []

    def present(report: str) -> bool:
        return names.key(report) in keys or any(names.key(report) in d.keys for d in built)

    settings = reporting.energy_balance
    has_tags = any(u.fuel_flow_tag and u.steam_flow_tag for u in reporting.units)
    if has_tags and settings.source == "scada" and "scada_daily_summary" in available:
        scada_checks = blocking_checks_of(upstream_checks, key_of("scada_readings"))

        def scada_gate(context, days):
            gate(context, key_of("scada_daily_summary"), (), days)
            hours = hourly.get_partition_keys_in_time_window(context.partition_time_window)
            gate(context, key_of("scada_readings"), scada_checks, hours)

        built.append(
            energy_balance_asset(site, key_of("scada_daily_summary"), lambda summary: summary, scada_gate, root, names)
        )
    elif has_tags and settings.source == "historian" and "historian_recorded" in available:
        historian_checks = blocking_checks_of(upstream_checks, key_of("historian_recorded"))

        def historian_gate(context, days):
            gate(context, key_of("historian_recorded"), historian_checks, days)

        built.append(
            energy_balance_asset(
                site,
                key_of("historian_recorded"),
                lambda recorded: daily_summary(recorded, timezone),
                historian_gate,
                root,
                names,
            )
        )

    if "erp_fuel_receipts" in available:
        built.append(ghg_inventory_asset(site, upstream, key_of("erp_fuel_receipts"), root, names))

    if "cems_hourly_emissions" in available and present("plant_energy_balance"):
        cems_key = key_of("cems_hourly_emissions")
        built.append(
            reconciliation_asset(site, assets_def_of(upstream, cems_key), cems_key, upstream_checks, root, names)
        )

    if "erp_production" in available and present("ghg_inventory"):
        built.append(emissions_intensity_asset(site, upstream, key_of("erp_production"), root, names))

    reports = [name for name in REPORT_BLOCKING_CHECKS if present(name)]
    built += monthly_report_asset(site, reports, [*upstream, *built], root, names)
    return built
