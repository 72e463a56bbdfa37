"""`emissions_intensity`: t CO2e per unit of production per plant month."""

from collections.abc import Iterator, Sequence

import pandas as pd
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
    PRODUCTION_COLUMNS,
    WAREHOUSE_READER_KEY,
    Definition,
    assets_def_of,
    blocking_checks_of,
    gate,
    read_frames,
    report_asset_args,
    report_output,
    report_read,
    site_monthly_partitions,
)
from gl_pipelines.checks.reports import (
    REPORT_BLOCKING_CHECKS,
    intensity_checks,
    report_check_specs,
)
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.reporting import intensity
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.warehouse_reader import WindowRead


def emissions_intensity_asset(
    site, upstream: Sequence[Definition], production_key: AssetKey, root, names: InstanceNames
) -> AssetsDefinition:
    """`emissions_intensity` per plant month: ghg_inventory over the ERP production."""
    reporting, timezone = site.reporting, site.site.timezone
    key, inventory_key = names.key("emissions_intensity"), names.key("ghg_inventory")
    monthly = site_monthly_partitions(timezone)
    production_checks = blocking_checks_of(upstream, production_key)
    production_read = WindowRead(
        table_name(production_key),
        assets_def_of(upstream, production_key).metadata_by_key[production_key]["partition_expr"],
        PRODUCTION_COLUMNS,
    )

    @asset(
        partitions_def=monthly,
        backfill_policy=backfill_policy(),
        # Lineage and gating only (Nothing): the step reads both through one warehouse connection.
        ins={
            "ghg_inventory": AssetIn(key=inventory_key, dagster_type=Nothing),
            "erp_production": AssetIn(
                key=production_key, partition_mapping=TimeWindowPartitionMapping(), dagster_type=Nothing
            ),
        },
        required_resource_keys={WAREHOUSE_READER_KEY},
        metadata={"partition_expr": "month"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("emissions_intensity", key),
        description="t CO2e per unit of production, per plant month (ghg_inventory / ERP production).",
        **report_asset_args(names),
    )
    def emissions_intensity(context: AssetExecutionContext) -> Iterator:
        gate(context, inventory_key, REPORT_BLOCKING_CHECKS["ghg_inventory"], context.partition_keys)
        gate(context, production_key, production_checks, context.asset_partition_keys_for_input("erp_production"))
        reads = {"inventory": report_read("ghg_inventory", inventory_key), "production": production_read}
        frames = read_frames(
            getattr(context.resources, WAREHOUSE_READER_KEY), reads, utc_window(context.partition_time_window)
        )
        result = intensity.emissions_intensity(frames["inventory"], production_frame(frames["production"]), timezone)
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
        yield from report_output(
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
        yield from intensity_checks(result, key)

    return emissions_intensity


def production_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`erp_production` (posting_date, plant, product, quantity DECIMAL, unit) as the intensity input."""
    return frame.rename(columns={"posting_date": "date"}).astype({"quantity": float})
