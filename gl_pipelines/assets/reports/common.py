"""What every report shares: partitions, gates on upstream checks, export of the output, warehouse reads."""

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache

import pandas as pd
from dagster import (
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    MonthlyPartitionsDefinition,
    Output,
    TableColumn,
    TableSchema,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)

from gl_pipelines.assets.charts import chart_metadata
from gl_pipelines.assets.partitions import (
    WAREHOUSE_POOL,
    history_start,
    utc_window,
)
from gl_pipelines.checks.gate import require_checks_passed, writer_runs
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.reporting import energy_balance as eb
from gl_pipelines.reporting import ghg, intensity, reconciliation
from gl_pipelines.reporting.exports import (
    export_paths,
    plant_months,
    write_partition_exports,
)
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


def report_asset_args(names: InstanceNames, *, stored: bool = True) -> dict:
    """The @asset arguments every report of an instance shares: its key prefix, group and owners (the
    reports group when single-site), the DuckDB pool and, for a report `stored` as a table, the warehouse."""
    args = names.asset_args(REPORT_GROUP) | {"pool": WAREHOUSE_POOL}
    return args | ({"io_manager_key": "warehouse"} if stored else {})


def site_monthly_partitions(timezone: str) -> MonthlyPartitionsDefinition:
    """Plant months: the 1st at local midnight to the next 1st, in the site's zone, from the first whole month
    of the history start being built (`partitions.history_starting`): no month holds days before it."""
    start = date.fromisoformat(history_start())
    if start.day != 1:
        start = (start.replace(day=1) + timedelta(days=31)).replace(day=1)
    return _monthly(timezone, start.isoformat())


@cache
def _monthly(timezone: str, start: str) -> MonthlyPartitionsDefinition:
    return MonthlyPartitionsDefinition(start_date=start, timezone=timezone)


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


def gate(context, upstream: str | AssetKey, checks: Sequence[str], partition_keys: Sequence[str]) -> None:
    require_checks_passed(context, AssetKey.from_coercible(upstream), checks, partition_keys)


def gate_materialized(
    context, upstream: str | AssetKey, checks: Sequence[str], partition_keys: Sequence[str]
) -> list[str]:
    """Gate the partitions among `partition_keys` that hold data; return those that hold none (month to date)."""
    present = writer_runs(context.instance, AssetKey.from_coercible(upstream), partition_keys)
    gate(context, upstream, checks, [key for key in partition_keys if key in present])
    return [key for key in partition_keys if key not in present]


def report_output(
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
    daily report's day) rewrites that month's file from the warehouse, the other days included. The
    table read back is the asset's own (`<site>__<instance>__<name>` for an instance's report)."""
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
        stored = reader.read_window(
            table_name(context.asset_key), time_column, months_start, months_end, list(descriptions)
        )
        rows = stored.sort_values(time_column, kind="stable", ignore_index=True)  # days in order, whatever the runs
    write_partition_exports(rows, root, name, months, time_column, csv)


def assets_def_of(definitions: Sequence[Definition], key: AssetKey) -> AssetsDefinition:
    return next(d for d in definitions if isinstance(d, AssetsDefinition) and key in d.keys)


def range_label(context: AssetExecutionContext) -> str:
    keys = context.partition_keys
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def read_frames(reader, reads: Mapping[str, WindowRead], window: tuple[datetime, datetime]) -> dict[str, pd.DataFrame]:
    """Each read's rows in a UTC window, through one warehouse connection; no rows for a table not created yet."""
    stored = reader.read_windows(reads, *window)
    return {
        name: pd.DataFrame(columns=list(reads[name].columns)) if frame is None else frame
        for name, frame in stored.items()
    }


def stored_reports(
    reader, names: Sequence[str], window: tuple[datetime, datetime], instance: InstanceNames | None = None
) -> dict[str, pd.DataFrame]:
    """The reports' rows in a UTC window, by report name, read through one warehouse connection; an
    `instance`'s reports from its own tables."""
    key = (instance or InstanceNames.single("reports")).key
    return read_frames(reader, {name: report_read(name, key(name)) for name in names}, window)


def report_read(name: str, key: AssetKey | None = None) -> WindowRead:
    """How a report is read back: its documented columns, windowed on its time column, from the table of `key`
    (default: the short key `name`)."""
    columns = REPORT_COLUMNS[name]
    return WindowRead(table_name(key or AssetKey(name)), next(iter(columns)), list(columns))
