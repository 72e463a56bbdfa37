"""`plant_energy_balance`: per plant day and unit, fuel energy in vs steam energy out."""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.charts import bar_chart
from gl_pipelines.assets.partitions import (
    backfill_policy,
    site_daily_partitions,
)
from gl_pipelines.assets.reports.common import (
    WAREHOUSE_READER_KEY,
    report_asset_args,
    report_output,
)
from gl_pipelines.checks.reports import (
    energy_balance_checks,
    report_check_specs,
)
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import SiteConfig
from gl_pipelines.reporting import energy_balance as eb


def energy_balance_asset(
    site: SiteConfig, input_key: AssetKey, summarize, gate, root, names: InstanceNames
) -> AssetsDefinition:
    """`plant_energy_balance` from per-day tag summaries: `scada_daily_summary` as stored, or the
    historian's recorded values summarized the same way (`scada.daily_summary`)."""
    reporting, timezone = site.reporting, site.site.timezone
    key = names.key("plant_energy_balance")

    @asset(
        name="plant_energy_balance",
        partitions_def=site_daily_partitions(timezone),
        backfill_policy=backfill_policy(),
        ins={"upstream": AssetIn(key=input_key, partition_mapping=TimeWindowPartitionMapping())},
        metadata={"partition_expr": "day"},
        kinds={"pandas", "duckdb"},
        check_specs=report_check_specs("plant_energy_balance", key),
        required_resource_keys={WAREHOUSE_READER_KEY},  # the day's month file is rewritten from the warehouse
        **report_asset_args(names),
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
        summary = f"source: `{input_key.to_user_string()}`\n\n" + balance_summary(balance)
        yield from report_output(
            context, "plant_energy_balance", balance, eb.COLUMNS, summary, chart, root, reporting.csv_exports, timezone
        )
        yield from energy_balance_checks(balance, key)

    return plant_energy_balance


def balance_summary(balance: pd.DataFrame) -> str:
    if balance.empty:
        return "_no unit-day with both fuel and steam data_"
    lines = [
        f"- {r.unit_name} {r.day:%Y-%m-%d}: efficiency **{r.efficiency:.3f}**, fuel {r.fuel_energy_mmbtu:,.1f} mmBtu "
        f"({r.fuel_good_share:.1%} good), steam {r.steam_energy_mmbtu:,.1f} mmBtu ({r.steam_good_share:.1%} good)"
        f"{'' if r.closes else ' - does not close'}"
        for r in balance.itertuples()
    ]
    return "\n".join(lines[:31])
