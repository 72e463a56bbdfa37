"""Report assets: energy balance, GHG inventory, CEMS reconciliation, intensity, monthly HTML.

Thin wiring around `gl_pipelines.reporting`: check that every upstream partition passed its
blocking checks (`checks.gate`), compute, export Parquet/CSV, attach a column schema, a
markdown summary and a chart, and yield the report's own blocking checks. Only reports whose
sources exist in the code location are built. Reports follow the plant's clock (site zone); CEMS
follows Part 75 local standard time, so `cems_fuel_reconciliation` selects its CEMS days and hours
itself (see `_reconciliation_asset`).
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetChecksDefinition,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    Nothing,
    Output,
    TableColumn,
    TableSchema,
    TimeWindow,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    asset,
)

from gl_pipelines.assets.charts import bar_chart, chart_metadata
from gl_pipelines.assets.partitions import (
    HISTORY_START,
    WAREHOUSE_POOL,
    backfill_policy,
    site_daily_partitions,
    site_hourly_partitions,
    utc_window,
)
from gl_pipelines.assets.scada import daily_summary
from gl_pipelines.checks.gate import require_checks_passed, writer_runs
from gl_pipelines.checks.reports import (
    REPORT_BLOCKING_CHECKS,
    energy_balance_checks,
    ghg_checks,
    intensity_checks,
    reconciliation_checks,
    report_check_specs,
)
from gl_pipelines.config import SiteConfig
from gl_pipelines.reporting import energy_balance as eb
from gl_pipelines.reporting import ghg, intensity, reconciliation
from gl_pipelines.reporting.check_results import stored_check_results
from gl_pipelines.reporting.exports import (
    export_paths,
    plant_months,
    reports_root,
    utc_nanoseconds,
    write_partition_exports,
)
from gl_pipelines.reporting.html_report import Section, render_check_results, render_report, write_html
from gl_pipelines.reporting.settings import ReportingUnit
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.warehouse_reader import WindowRead

REPORT_GROUP = "reports"
INPUT_ROLES = (
    "scada_daily_summary",
    "scada_readings",
    "historian_recorded",
    "erp_fuel_receipts",
    "erp_production",
    "cems_hourly_emissions",
)
"""What the reports read, by role; `build_report_assets(inputs=...)` maps each to an instance's asset key."""
WAREHOUSE_READER_KEY = "warehouse_reader"
CEMS_COLUMNS = {
    "unit_id": "object",
    "hour_start_utc": "datetime64[ns, UTC]",
    "op_time": "float",
    "co2_mass_tons": "float",
}
Definition = AssetsDefinition | AssetChecksDefinition
REPORT_COLUMNS = {
    "plant_energy_balance": eb.COLUMNS,
    "ghg_inventory": ghg.COLUMNS,
    "cems_fuel_reconciliation": reconciliation.COLUMNS,
    "emissions_intensity": intensity.COLUMNS,
}
"""Each report's documented columns; the first is its time column (the warehouse partition_expr)."""
PRODUCTION_COLUMNS = ["posting_date", "plant", "product", "quantity", "unit"]
"""The `erp_production` columns `emissions_intensity` reads."""
_DTYPES = {"datetime64": "TIMESTAMP WITH TIME ZONE", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN"}


@cache
def site_monthly_partitions(timezone: str) -> MonthlyPartitionsDefinition:
    """Plant months: the 1st at local midnight to the next 1st, in the site's zone."""
    return MonthlyPartitionsDefinition(start_date=HISTORY_START, timezone=timezone)


def column_schema(frame: pd.DataFrame, descriptions: Mapping[str, str]) -> TableSchema:
    """The stable, documented schema of a report (column order, SQL type, meaning)."""
    columns = []
    for name, description in descriptions.items():
        kind = str(frame[name].dtype) if name in frame else "object"
        sql = next((sql for prefix, sql in _DTYPES.items() if kind.startswith(prefix)), "VARCHAR")
        columns.append(TableColumn(name=name, type=sql, description=description))
    return TableSchema(columns=columns)


def blocking_checks_of(upstream: Sequence[Definition], asset: str | AssetKey) -> tuple[str, ...]:
    """Names of the blocking checks on `asset`, whether an asset check or a spec on the asset itself."""
    key = AssetKey.from_coercible(asset)
    return tuple(
        sorted({spec.name for d in upstream for spec in d.check_specs if spec.asset_key == key and spec.blocking})
    )


def overlapping_partition_keys(partitions_def: TimeWindowPartitionsDefinition, window: TimeWindow) -> list[str]:
    """Keys of the partitions whose window overlaps `window`, whatever the two clocks. Unlike
    `get_partition_keys_in_time_window`, this includes the partition that straddles the window's start:
    in daylight time, the CEMS LST day whose last hour is the plant month's first."""
    start, end = utc_window(window)
    first = partitions_def.time_window_for_partition_key(
        partitions_def.get_partition_key_for_timestamp(start.timestamp())
    )
    history_start = partitions_def.start.timestamp()
    return [
        key
        for key in partitions_def.get_partition_keys_in_time_window(TimeWindow(first.start, end))
        if partitions_def.time_window_for_partition_key(key).start.timestamp() >= history_start
    ]


def _gate(context, upstream: str | AssetKey, checks: Sequence[str], partition_keys: Sequence[str]) -> None:
    require_checks_passed(context, AssetKey.from_coercible(upstream), checks, partition_keys)


def _gate_materialized(
    context, upstream: str | AssetKey, checks: Sequence[str], partition_keys: Sequence[str]
) -> list[str]:
    """Gate the partitions among `partition_keys` that hold data; return those that hold none (month to date)."""
    present = writer_runs(context.instance, AssetKey.from_coercible(upstream), partition_keys)
    _gate(context, upstream, checks, [key for key in partition_keys if key in present])
    return [key for key in partition_keys if key not in present]


def _report_output(
    context: AssetExecutionContext,
    name: str,
    frame: pd.DataFrame,
    descriptions: Mapping[str, str],
    summary: str,
    chart: str | None,
    root,
    csv: bool,
    timezone: str,
    extra: Mapping[str, object] | None = None,
) -> Iterator[Output]:
    """Yield the report's Output, then write its export files: one per plant month the run touches.

    Dagster stores a yielded Output (the warehouse IO manager's transaction) before it resumes the
    generator, so the files are written only once the table holds the same rows: a failed warehouse
    write leaves the previous export files as they were. A run that covers only part of a month (a
    daily report's day) rewrites that month's file from the warehouse, the other days included."""
    time_column = next(iter(descriptions))
    start, end = utc_window(context.partition_time_window)
    months = plant_months(start, end, timezone)
    metadata = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "dagster/row_count": len(frame),
        "dagster/column_schema": column_schema(frame, descriptions),
        "summary": MetadataValue.md(summary),
        "export_folder": MetadataValue.path(str(root / name)),
    }
    if len(months) == 1:
        paths = export_paths(root, name, next(iter(months)))
        metadata |= {
            f"export_{fmt}": MetadataValue.path(str(path)) for fmt, path in paths.items() if csv or fmt != "csv"
        }
    if chart is not None:
        metadata["chart"] = chart_metadata(chart, f"{name} {context.partition_key_range.start}")
    yield Output(frame, metadata=metadata | dict(extra or {}))
    months_start, months_end = next(iter(months.values()))[0], list(months.values())[-1][1]
    rows = frame
    if (start, end) != (months_start, months_end):
        reader = getattr(context.resources, WAREHOUSE_READER_KEY)
        stored = reader.read_window(name, time_column, months_start, months_end, list(descriptions))
        rows = stored.sort_values(time_column, kind="stable", ignore_index=True)  # days in order, whatever the runs
    write_partition_exports(rows, root, name, months, time_column, csv)


def build_report_assets(
    site: SiteConfig, upstream: Sequence[Definition], inputs: Mapping[str, AssetKey] | None = None
) -> list[AssetsDefinition]:
    """The report assets whose inputs are among the `upstream` assets (checks on them gate the reports).

    `inputs` maps an input's role (scada_daily_summary, scada_readings, historian_recorded, erp_fuel_receipts,
    erp_production, cems_hourly_emissions) to the key of the instance's asset that plays it; a role not
    mapped is looked up by its own name (the single-site file's short keys)."""
    inputs = dict(inputs or {})

    def key_of(role: str) -> AssetKey:
        return inputs.get(role, AssetKey(role))

    keys = {key for d in upstream if isinstance(d, AssetsDefinition) for key in d.keys}
    available = {role for role in INPUT_ROLES if key_of(role) in keys}
    upstream_checks = upstream
    reporting = site.reporting
    if reporting is None:
        return []
    timezone = site.site.timezone
    root = reports_root(reporting.reports_dir)
    monthly = site_monthly_partitions(timezone)
    hourly = site_hourly_partitions(timezone)
    from_days = TimeWindowPartitionMapping()
    common = {"io_manager_key": "warehouse", "group_name": REPORT_GROUP, "pool": WAREHOUSE_POOL}
    built: list[AssetsDefinition] = []

    settings = reporting.energy_balance
    has_tags = any(u.fuel_flow_tag and u.steam_flow_tag for u in reporting.units)
    if has_tags and settings.source == "scada" and "scada_daily_summary" in available:
        scada_checks = blocking_checks_of(upstream_checks, key_of("scada_readings"))

        def scada_gate(context, days):
            _gate(context, key_of("scada_daily_summary"), (), days)
            hours = hourly.get_partition_keys_in_time_window(context.partition_time_window)
            _gate(context, key_of("scada_readings"), scada_checks, hours)

        built.append(
            _energy_balance_asset(site, key_of("scada_daily_summary"), lambda summary: summary, scada_gate, root)
        )
    elif has_tags and settings.source == "historian" and "historian_recorded" in available:
        historian_checks = blocking_checks_of(upstream_checks, key_of("historian_recorded"))

        def historian_gate(context, days):
            _gate(context, key_of("historian_recorded"), historian_checks, days)

        built.append(
            _energy_balance_asset(
                site,
                key_of("historian_recorded"),
                lambda recorded: daily_summary(recorded, timezone),
                historian_gate,
                root,
            )
        )

    if "erp_fuel_receipts" in available:
        erp_units = {**reporting.erp_units, **(site.erp.units if getattr(site, "erp", None) else {})}
        receipts_key = key_of("erp_fuel_receipts")
        receipt_checks = blocking_checks_of(upstream_checks, receipts_key)
        receipts_expr = _assets_def_of(upstream, receipts_key).metadata_by_key[receipts_key]["partition_expr"]

        @asset(
            partitions_def=monthly,
            backfill_policy=backfill_policy(),
            # Lineage and gating only (Nothing): the step sums the receipts in the warehouse, so a year's
            # 200,000 documents never leave it (see ghg.DAILY_FUEL_SUMS).
            ins={"erp_fuel_receipts": AssetIn(key=receipts_key, partition_mapping=from_days, dagster_type=Nothing)},
            required_resource_keys={WAREHOUSE_READER_KEY},
            metadata={"partition_expr": "month"},
            kinds={"pandas", "duckdb"},
            check_specs=report_check_specs("ghg_inventory"),
            description=f"Scope 1 CO2, CH4, N2O and CO2e per plant month and fuel from ERP fuel receipts x 40 CFR 98 "
            f"Table C-1/C-2 defaults, GWP set {reporting.gwp_set}.",
            **common,
        )
        def ghg_inventory(context: AssetExecutionContext) -> Iterator:
            _gate(
                context,
                receipts_key,
                receipt_checks,
                context.asset_partition_keys_for_input("erp_fuel_receipts"),
            )
            start, end = utc_window(context.partition_time_window)
            reader = getattr(context.resources, WAREHOUSE_READER_KEY)
            sums = reader.query_window(
                table_name(receipts_key), receipts_expr, start, end, ghg.RECEIPT_COLUMNS, ghg.DAILY_FUEL_SUMS
            )
            inventory = ghg.ghg_inventory(
                sums,
                reporting.erp_materials,
                erp_units,
                reporting.gwp_set,
                timezone,
            )
            chart = None
            if not inventory.empty:
                chart = bar_chart(
                    [f"{r.plant} {r.fuel_type}" for r in inventory.itertuples()],
                    {"t CO2e": inventory["co2e_t"]},
                    "Scope 1 emissions",
                    "t CO2e",
                )
            summary = (
                f"**{inventory['co2e_t'].sum():,.3f} t CO2e** ({reporting.gwp_set}) from "
                f"{int(inventory['documents'].sum())} fuel receipts; CO2 {inventory['co2_t'].sum():,.3f} t, "
                f"CH4 {inventory['ch4_t'].sum():,.5f} t, N2O {inventory['n2o_t'].sum():,.6f} t."
            )
            yield from _report_output(
                context, "ghg_inventory", inventory, ghg.COLUMNS, summary, chart, root, reporting.csv_exports, timezone
            )
            yield from ghg_checks(inventory)

        built.append(ghg_inventory)

    names = available | {key.to_user_string() for key in keys} | {a.key.to_user_string() for a in built}
    if "cems_hourly_emissions" in names and "plant_energy_balance" in names:
        cems_key = key_of("cems_hourly_emissions")
        built.append(_reconciliation_asset(site, _assets_def_of(upstream, cems_key), cems_key, upstream_checks))

    names = available | {key.to_user_string() for key in keys} | {a.key.to_user_string() for a in built}
    if "erp_production" in names and "ghg_inventory" in names:
        production_key = key_of("erp_production")
        production_checks = blocking_checks_of(upstream_checks, production_key)
        production_read = WindowRead(
            table_name(production_key),
            _assets_def_of(upstream, production_key).metadata_by_key[production_key]["partition_expr"],
            PRODUCTION_COLUMNS,
        )

        @asset(
            partitions_def=monthly,
            backfill_policy=backfill_policy(),
            # Lineage and gating only (Nothing): the step reads both through one warehouse connection.
            ins={
                "ghg_inventory": AssetIn(dagster_type=Nothing),
                "erp_production": AssetIn(key=production_key, partition_mapping=from_days, dagster_type=Nothing),
            },
            required_resource_keys={WAREHOUSE_READER_KEY},
            metadata={"partition_expr": "month"},
            kinds={"pandas", "duckdb"},
            check_specs=report_check_specs("emissions_intensity"),
            description="t CO2e per unit of production, per plant month (ghg_inventory / ERP production).",
            **common,
        )
        def emissions_intensity(context: AssetExecutionContext) -> Iterator:
            _gate(context, "ghg_inventory", REPORT_BLOCKING_CHECKS["ghg_inventory"], context.partition_keys)
            _gate(context, production_key, production_checks, context.asset_partition_keys_for_input("erp_production"))
            reads = {"inventory": report_read("ghg_inventory"), "production": production_read}
            frames = read_frames(
                getattr(context.resources, WAREHOUSE_READER_KEY), reads, utc_window(context.partition_time_window)
            )
            result = intensity.emissions_intensity(
                frames["inventory"], production_frame(frames["production"]), timezone
            )
            chart = None
            if not result.empty:
                chart = bar_chart(
                    list(result["plant"]),
                    {"intensity": result["intensity_t_per_unit"].fillna(0)},
                    "Emissions intensity",
                    "t CO2e per unit",
                )
            summary = (
                "".join(
                    f"- plant {r.plant}: {r.intensity_t_per_unit:.6g} t CO2e/{r.production_unit}\n"
                    for r in result.itertuples()
                )
                or "_no rows_"
            )
            yield from _report_output(
                context,
                "emissions_intensity",
                result,
                intensity.COLUMNS,
                summary,
                chart,
                root,
                reporting.csv_exports,
                timezone,
            )
            yield from intensity_checks(result)

        built.append(emissions_intensity)

    present = {key.to_user_string() for key in keys} | {a.key.to_user_string() for a in built}
    reports = [name for name in REPORT_BLOCKING_CHECKS if name in present]
    built += _monthly_report(site, reports, [*upstream, *built])
    return built


def _assets_def_of(definitions: Sequence[Definition], key: AssetKey) -> AssetsDefinition:
    return next(d for d in definitions if isinstance(d, AssetsDefinition) and key in d.keys)


def _reconciliation_asset(
    site: SiteConfig, cems: AssetsDefinition, cems_key: AssetKey, upstream: Sequence[Definition]
) -> AssetsDefinition:
    """`cems_fuel_reconciliation` per plant month, reading CEMS hours on their own clock.

    CEMS partitions are Part 75 days in local standard time (a fixed-offset zone such as Etc/GMT+6);
    the report is a plant month in the site zone. Dagster maps time partitions only within one zone
    (`TimeWindowPartitionMapping` fails at run time: "Timezones ... don't match"), so the CEMS input is
    a dependency on all CEMS partitions (`AllPartitionMapping`, lineage only) and the step itself:
    - gates on exactly the CEMS days whose LST window overlaps the plant month (the day that
      straddles the month's start included): each such day that holds data must have passed every
      blocking check in the run that wrote it;
    - reads with SQL (`WarehouseReader`, one connection) only the CEMS hours and the plant days inside
      the month's UTC window, never the whole table, and compares the hours inside the plant days held
      (`cems_hours_in_balance_days`), so both sides cover the same hours whatever the two clocks.
    Days not materialized on either side are listed in the metadata, not guessed and not blocking, so
    a month can be reconciled to date; the row's `cems_hours` and `fuel_days` show what was compared.
    A plant day whose CEMS hours are missing shows as a CEMS total too low: flagged, not hidden.
    """
    reporting, timezone = site.reporting, site.site.timezone
    root = reports_root(reporting.reports_dir)
    cems_partitions = cems.partitions_def
    cems_expr = cems.metadata_by_key[cems_key]["partition_expr"]
    cems_checks = blocking_checks_of(upstream, cems_key)
    balance_checks = REPORT_BLOCKING_CHECKS["plant_energy_balance"]

    @asset(
        partitions_def=site_monthly_partitions(timezone),
        backfill_policy=backfill_policy(),
        deps=[AssetDep(cems_key, partition_mapping=AllPartitionMapping())],
        # Lineage and gating only (Nothing): the step reads the plant days and the CEMS hours through one connection.
        ins={"plant_energy_balance": AssetIn(partition_mapping=TimeWindowPartitionMapping(), dagster_type=Nothing)},
        required_resource_keys={WAREHOUSE_READER_KEY},
        metadata={"partition_expr": "month"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("cems_fuel_reconciliation"),
        description=f"CEMS CO2 vs fuel-based CO2 per unit and plant month; differences beyond "
        f"{reporting.reconciliation_tolerance_pct} % are flagged rows. CEMS hours are selected by UTC instant "
        "(CEMS days are local standard time).",
        io_manager_key="warehouse",
        group_name=REPORT_GROUP,
        pool=WAREHOUSE_POOL,
    )
    def cems_fuel_reconciliation(context: AssetExecutionContext) -> Iterator:
        window = context.partition_time_window
        cems_days = overlapping_partition_keys(cems_partitions, window)
        lst_days = f"{cems_days[0]}..{cems_days[-1]}" if cems_days else "none"
        cems_missing = _gate_materialized(context, cems_key, cems_checks, cems_days)
        plant_days = context.asset_partition_keys_for_input("plant_energy_balance")
        plant_missing = _gate_materialized(context, "plant_energy_balance", balance_checks, plant_days)
        if len(cems_missing) == len(cems_days) and len(plant_missing) == len(plant_days):
            raise Failure(
                description=f"cems_fuel_reconciliation[{_range_label(context)}]: no CEMS day ({lst_days}) and "
                "no plant day materialized; nothing to reconcile"
            )
        reads = {
            "hours": WindowRead(table_name(cems_key), cems_expr, list(CEMS_COLUMNS)),
            "balance": report_read("plant_energy_balance"),
        }
        frames = read_frames(getattr(context.resources, WAREHOUSE_READER_KEY), reads, utc_window(window))
        hours, plant_energy_balance = frames["hours"].astype(CEMS_COLUMNS), frames["balance"]
        compared = cems_hours_in_balance_days(hours, plant_energy_balance, reporting.units, timezone)
        result = reconciliation.reconcile(
            compared, plant_energy_balance, reporting.units, reporting.reconciliation_tolerance_pct, timezone
        )
        chart = None
        if not result.empty:
            chart = bar_chart(
                list(result["unit_name"]),
                {"CEMS": result["cems_co2_t"].fillna(0), "fuel-based": result["fuel_co2_t"].fillna(0)},
                "CO2: CEMS vs fuel",
                "t CO2",
            )
        flagged = result[~result["within_tolerance"]]
        summary = (
            f"{len(result)} unit-month(s); **{len(flagged)} flagged** beyond "
            f"{reporting.reconciliation_tolerance_pct} %. Data: {len(cems_days) - len(cems_missing)} of "
            f"{len(cems_days)} CEMS days (LST {lst_days}), "
            f"{len(plant_days) - len(plant_missing)} of {len(plant_days)} plant days; {len(compared)} CEMS "
            "unit-hours inside those plant days compared."
            + "".join(f"\n- {r.unit_name}: {r.difference_pct:+.2f} %" for r in result.itertuples())
        )
        coverage = {
            "cems_partitions": MetadataValue.json(cems_days),
            "cems_partitions_missing": MetadataValue.json(cems_missing),
            "plant_days_missing": MetadataValue.json(plant_missing),
            "cems_rows_read": len(hours),
            "cems_rows_compared": len(compared),
        }
        yield from _report_output(
            context,
            "cems_fuel_reconciliation",
            result,
            reconciliation.COLUMNS,
            summary,
            chart,
            root,
            reporting.csv_exports,
            timezone,
            coverage,
        )
        yield from reconciliation_checks(result)

    return cems_fuel_reconciliation


def cems_hours_in_balance_days(
    hours: pd.DataFrame, balance: pd.DataFrame, units: Sequence[ReportingUnit], timezone: str
) -> pd.DataFrame:
    """The CEMS unit-hours that fall inside a plant day the energy balance holds for the same unit."""
    days = site_daily_partitions(timezone)
    keep = np.zeros(len(hours), dtype=bool)
    instants = utc_nanoseconds(hours["hour_start_utc"])
    for unit in units:
        if not unit.cems_unit_id:
            continue
        keys = {
            pd.Timestamp(day).tz_convert(timezone).strftime("%Y-%m-%d")
            for day in balance.loc[balance["unit_name"] == unit.name, "day"]
        }
        if not keys:
            continue
        # Plant days do not overlap: find each hour's candidate day by its start (one search for all
        # hours, not one pass over the hours per day), then check the hour is before that day's end.
        windows = sorted(utc_window(days.time_window_for_partition_key(key)) for key in keys)
        low = utc_nanoseconds([start for start, _ in windows])
        high = utc_nanoseconds([end for _, end in windows])
        slot = np.searchsorted(low, instants, side="right") - 1
        inside = (slot >= 0) & (instants < high[np.clip(slot, 0, None)])
        keep |= (hours["unit_id"] == unit.cems_unit_id).to_numpy() & inside
    return hours[keep]


def _range_label(context: AssetExecutionContext) -> str:
    keys = context.partition_keys
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def _energy_balance_asset(site: SiteConfig, input_key: AssetKey, summarize, gate, root) -> AssetsDefinition:
    """`plant_energy_balance` from per-day tag summaries: `scada_daily_summary` as stored, or the
    historian's recorded values summarized the same way (`scada.daily_summary`)."""
    reporting, timezone = site.reporting, site.site.timezone

    @asset(
        name="plant_energy_balance",
        partitions_def=site_daily_partitions(timezone),
        backfill_policy=backfill_policy(),
        ins={"upstream": AssetIn(key=input_key, partition_mapping=TimeWindowPartitionMapping())},
        metadata={"partition_expr": "day"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("plant_energy_balance"),
        required_resource_keys={WAREHOUSE_READER_KEY},  # the day's month file is rewritten from the warehouse
        io_manager_key="warehouse",
        group_name=REPORT_GROUP,
        pool=WAREHOUSE_POOL,
        description=f"Per plant day and unit, from {input_key.to_user_string()}: fuel energy in (HHV from config) "
        "vs steam energy "
        "out, boiler efficiency, and the good-quality share behind each number.",
    )
    def plant_energy_balance(context: AssetExecutionContext, upstream: pd.DataFrame) -> Iterator:
        gate(context, context.asset_partition_keys_for_input("upstream"))
        balance = eb.energy_balance(summarize(upstream), reporting.units, reporting.energy_balance, timezone)
        chart = None
        if not balance.empty:
            labels = [f"{r.unit_name} {pd.Timestamp(r.day).tz_convert(timezone):%m-%d}" for r in balance.itertuples()]
            chart = bar_chart(
                labels,
                {"fuel in": balance["fuel_energy_mmbtu"], "steam out": balance["steam_energy_mmbtu"]},
                "Boiler energy balance",
                "mmBtu",
            )
        summary = f"source: `{input_key.to_user_string()}`\n\n" + _balance_summary(balance)
        yield from _report_output(
            context, "plant_energy_balance", balance, eb.COLUMNS, summary, chart, root, reporting.csv_exports, timezone
        )
        yield from energy_balance_checks(balance)

    return plant_energy_balance


def _monthly_report(site: SiteConfig, reports: list[str], definitions: Sequence[Definition]) -> list[AssetsDefinition]:
    """The month's HTML report and its validation-results page, from the reports that exist."""
    if not reports:
        return []
    reporting, timezone = site.reporting, site.site.timezone
    root = reports_root(reporting.reports_dir)
    monthly = site_monthly_partitions(timezone)
    # Lineage and gating only (Nothing): the step reads the four reports through one warehouse connection.
    ins = {
        name: AssetIn(
            partition_mapping=TimeWindowPartitionMapping() if name == "plant_energy_balance" else None,
            dagster_type=Nothing,
        )
        for name in reports
    }
    partitions = {
        key.to_user_string(): d.partitions_def for d in definitions if isinstance(d, AssetsDefinition) for key in d.keys
    }
    checked = {spec.asset_key.to_user_string() for d in definitions for spec in d.check_specs}
    validated = sorted(name for name in checked if partitions.get(name) is not None)

    def render_month(instance, month: str, frames: Mapping[str, pd.DataFrame]):
        window = monthly.time_window_for_partition_key(month)
        results = pd.concat(
            [
                stored_check_results(instance, name, overlapping_partition_keys(partitions[name], window))
                for name in validated
            ],
            ignore_index=True,
        )
        checks_path = write_html(
            root / "monthly" / f"checks_{month}.html",
            render_check_results(f"{site.site.name}: data-quality results, month {month}", results),
        )
        start, end = utc_window(window)
        sections = [_section(name, _rows_in(frames[name], name, start, end), timezone) for name in reports]
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
        group_name=REPORT_GROUP,
        kinds={"html"},
        pool=WAREHOUSE_POOL,
        description="Self-contained HTML report per plant month (tables, charts as data URIs) and a page of the "
        "month's data-quality check results, in the reports folder.",
    )
    def monthly_report(context: AssetExecutionContext) -> MaterializeResult:
        for name in reports:
            keys = context.asset_partition_keys_for_input(name)
            _gate(context, name, REPORT_BLOCKING_CHECKS[name], keys)
        reader = getattr(context.resources, WAREHOUSE_READER_KEY)
        frames = stored_reports(reader, reports, utc_window(context.partition_time_window))
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


def read_frames(reader, reads: Mapping[str, WindowRead], window: tuple[datetime, datetime]) -> dict[str, pd.DataFrame]:
    """Each read's rows in a UTC window, through one warehouse connection; no rows for a table not created yet."""
    stored = reader.read_windows(reads, *window)
    return {
        name: pd.DataFrame(columns=list(reads[name].columns)) if frame is None else frame
        for name, frame in stored.items()
    }


def stored_reports(reader, names: Sequence[str], window: tuple[datetime, datetime]) -> dict[str, pd.DataFrame]:
    """The reports' rows in a UTC window, read through one warehouse connection."""
    return read_frames(reader, {name: report_read(name) for name in names}, window)


def report_read(name: str) -> WindowRead:
    """How a report is read back: its documented columns, windowed on its time column."""
    return WindowRead(name, next(iter(REPORT_COLUMNS[name])), list(REPORT_COLUMNS[name]))


def _rows_in(frame: pd.DataFrame, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The rows of a loaded report that belong to one plant month (a range run loads several)."""
    time_column = next(iter(REPORT_COLUMNS[name]))
    if frame.empty or time_column not in frame:
        return frame
    return frame[(frame[time_column] >= start) & (frame[time_column] < end)]


def _section(name: str, frame: pd.DataFrame, timezone: str) -> Section:
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


def _balance_summary(balance: pd.DataFrame) -> str:
    if balance.empty:
        return "_no unit-day with both fuel and steam data_"
    lines = [
        f"- {r.unit_name} {r.day:%Y-%m-%d}: efficiency **{r.efficiency:.3f}**, fuel {r.fuel_energy_mmbtu:,.1f} mmBtu "
        f"({r.fuel_good_share:.1%} good), steam {r.steam_energy_mmbtu:,.1f} mmBtu ({r.steam_good_share:.1%} good)"
        f"{'' if r.closes else ' - does not close'}"
        for r in balance.itertuples()
    ]
    return "\n".join(lines[:31])


def production_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`erp_production` (posting_date, plant, product, quantity DECIMAL, unit) as the intensity input."""
    return frame.rename(columns={"posting_date": "date"}).astype({"quantity": float})
