"""`cems_fuel_reconciliation`: CEMS CO2 vs fuel-based CO2 per unit and plant month."""

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Nothing,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.charts import bar_chart
from gl_pipelines.assets.partitions import (
    backfill_policy,
    site_daily_partitions,
    utc_window,
)
from gl_pipelines.assets.reports.common import (
    CEMS_COLUMNS,
    WAREHOUSE_READER_KEY,
    Definition,
    blocking_checks_of,
    gate_materialized,
    overlapping_partition_keys,
    range_label,
    read_frames,
    report_asset_args,
    report_output,
    report_read,
    site_monthly_partitions,
)
from gl_pipelines.checks.reports import (
    REPORT_BLOCKING_CHECKS,
    reconciliation_checks,
    report_check_specs,
)
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import SiteConfig
from gl_pipelines.reporting import reconciliation
from gl_pipelines.reporting.exports import utc_nanoseconds
from gl_pipelines.reporting.settings import ReportingUnit
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.warehouse_reader import WindowRead


def reconciliation_asset(
    site: SiteConfig,
    cems: AssetsDefinition,
    cems_key: AssetKey,
    upstream: Sequence[Definition],
    root,
    names: InstanceNames,
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
    key, balance_key = names.key("cems_fuel_reconciliation"), names.key("plant_energy_balance")
    cems_partitions = cems.partitions_def
    cems_expr = cems.metadata_by_key[cems_key]["partition_expr"]
    cems_checks = blocking_checks_of(upstream, cems_key)
    balance_checks = REPORT_BLOCKING_CHECKS["plant_energy_balance"]

    @asset(
        partitions_def=site_monthly_partitions(timezone),
        backfill_policy=backfill_policy(),
        deps=[AssetDep(cems_key, partition_mapping=AllPartitionMapping())],
        # Lineage and gating only (Nothing): the step reads the plant days and the CEMS hours through one connection.
        ins={
            "plant_energy_balance": AssetIn(
                key=balance_key, partition_mapping=TimeWindowPartitionMapping(), dagster_type=Nothing
            )
        },
        required_resource_keys={WAREHOUSE_READER_KEY},
        metadata={"partition_expr": "month"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("cems_fuel_reconciliation", key),
        description=f"CEMS CO2 vs fuel-based CO2 per unit and plant month; differences beyond "
        f"{reporting.reconciliation_tolerance_pct} % are flagged rows. CEMS hours are selected by UTC instant "
        "(CEMS days are local standard time).",
        **report_asset_args(names),
    )
    def cems_fuel_reconciliation(context: AssetExecutionContext) -> Iterator:
        window = context.partition_time_window
        cems_days = overlapping_partition_keys(cems_partitions, window)
        lst_days = f"{cems_days[0]}..{cems_days[-1]}" if cems_days else "none"
        cems_missing = gate_materialized(context, cems_key, cems_checks, cems_days)
        plant_days = context.asset_partition_keys_for_input("plant_energy_balance")
        plant_missing = gate_materialized(context, balance_key, balance_checks, plant_days)
        if len(cems_missing) == len(cems_days) and len(plant_missing) == len(plant_days):
            raise Failure(
                description=f"cems_fuel_reconciliation[{range_label(context)}]: no CEMS day ({lst_days}) and "
                "no plant day materialized; nothing to reconcile"
            )
        reads = {
            "hours": WindowRead(table_name(cems_key), cems_expr, list(CEMS_COLUMNS)),
            "balance": report_read("plant_energy_balance", balance_key),
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
        yield from report_output(
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
        yield from reconciliation_checks(result, key)

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
