"""`ghg_inventory`: Scope 1 GHG per plant month from the ERP fuel receipts."""

from collections.abc import Iterator, Sequence

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
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
    WAREHOUSE_READER_KEY,
    Definition,
    assets_def_of,
    blocking_checks_of,
    gate,
    report_asset_args,
    report_output,
    site_monthly_partitions,
)
from gl_pipelines.checks.reports import (
    ghg_checks,
    report_check_specs,
)
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.reporting import ghg
from gl_pipelines.resources.warehouse import table_name


def ghg_inventory_asset(
    site, upstream: Sequence[Definition], receipts_key: AssetKey, root, names: InstanceNames
) -> AssetsDefinition:
    """`ghg_inventory` per plant month from the fuel receipts (summed in the warehouse)."""
    reporting, timezone = site.reporting, site.site.timezone
    key = names.key("ghg_inventory")
    monthly = site_monthly_partitions(timezone)
    erp_units = {**reporting.erp_units, **(site.erp.units if getattr(site, "erp", None) else {})}
    receipt_checks = blocking_checks_of(upstream, receipts_key)
    receipts_expr = assets_def_of(upstream, receipts_key).metadata_by_key[receipts_key]["partition_expr"]

    @asset(
        partitions_def=monthly,
        backfill_policy=backfill_policy(),
        # Lineage and gating only (Nothing): the step sums the receipts in the warehouse, so a year's
        # 200,000 documents never leave it (see ghg.DAILY_FUEL_SUMS).
        ins={
            "erp_fuel_receipts": AssetIn(
                key=receipts_key, partition_mapping=TimeWindowPartitionMapping(), dagster_type=Nothing
            )
        },
        required_resource_keys={WAREHOUSE_READER_KEY},
        metadata={"partition_expr": "month"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("ghg_inventory", key),
        description=f"Scope 1 CO2, CH4, N2O and CO2e per plant month and fuel from ERP fuel receipts x 40 CFR 98 "
        f"Table C-1/C-2 defaults, GWP set {reporting.gwp_set}.",
        **report_asset_args(names),
    )
    def ghg_inventory(context: AssetExecutionContext) -> Iterator:
        gate(
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
        yield from report_output(
            context, "ghg_inventory", inventory, ghg.COLUMNS, summary, chart, root, reporting.csv_exports, timezone
        )
        yield from ghg_checks(inventory, key)

    return ghg_inventory
