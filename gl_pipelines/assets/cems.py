"""CEMS (40 CFR Part 75): raw hours from DAHS files (PLC fallback), EPA history, emissions and reports.

- `cems_hourly_raw` (hourly): the rows of the accepted DAHS files (`cems.dahs_store`)
  whose hour falls in the window. For a unit-hour no file holds, and only when the window ends at
  the PLC's "last completed hour" (the hour just closed), the PLC register block fills it; an older
  hour is never filled from the PLC, whose block only holds the latest hour.
- `cems_campd_hourly`, `cems_epa_daily`, `cems_epa_quarterly`: EPA's published history (`assets/cems_epa.py`).
- `cems_hourly_emissions`, `cems_daily_emissions`, `cems_quarterly_emissions`: per day and quarter.
  Emissions read the day's raw hours plus `lookback_days` of raw history for the missing-data look-backs.

An instance declared in the defs folder prefixes every key with `<site>/<instance>` and names its PLC
resource `cems_plc__<site>__<instance>` (`InstanceNames`); a single-site file keeps the short names.

Every CEMS partition is on Part 75's own clock, local standard time (a fixed-offset zone such as
Etc/GMT+6, no daylight saving), not the site's civil zone: a partition is exactly a Part 75 hour, day
or calendar quarter, there is no 25-hour day, and Dagster maps hours to days only within one zone.
"""

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.cems_epa import build_epa_assets
from gl_pipelines.assets.charts import bar_chart, chart_metadata
from gl_pipelines.assets.partitions import (
    WAREHOUSE_POOL,
    backfill_policy,
    cems_daily_partitions,
    cems_hourly_partitions,
    cems_quarterly_partitions,
    utc_window,
)
from gl_pipelines.assets.provenance import preview_markdown, provenance_metadata
from gl_pipelines.cems.aggregate import daily_totals, quarterly_totals
from gl_pipelines.cems.dahs_store import rows_for_window
from gl_pipelines.cems.emissions import compute_hourly_emissions, open_end_gaps
from gl_pipelines.cems.plc import plc_block_rows
from gl_pipelines.cems.schema import KEY_COLUMNS, RAW_COLUMNS, validate_raw_frame
from gl_pipelines.checks.cems import EMISSIONS_CHECKS, RAW_CHECKS, missing_unit_hours, raw_check_specs, raw_results
from gl_pipelines.checks.gate import blocking_problems, problems_by_partition, require_checks_passed, writer_runs
from gl_pipelines.checks.wap import audited
from gl_pipelines.components.naming import InstanceNames, cems_names
from gl_pipelines.config import CemsSource
from gl_pipelines.resources.modbus import RESOURCE_VERSION as MODBUS_VERSION
from gl_pipelines.resources.modbus import ModbusResource

DAHS_READER_VERSION = "gl-pipelines-dahs/1"
PLC_RESOURCE_KEY = "cems_plc"
OPEN_GAPS_KEY = "open_gaps_at_end"


def plc_resource_key(names: InstanceNames) -> str:
    """The PLC's Modbus resource of one CEMS instance (`cems_plc` in a single-site file)."""
    return "__".join((PLC_RESOURCE_KEY, *names.prefix))


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_cems_assets(source: CemsSource, names: InstanceNames | None = None) -> list[AssetsDefinition]:
    """The CEMS assets of one instance (or the site file's `cems:` section), partitioned in local standard time."""
    names = cems_names(names)
    raw_key, emissions_key = names.key("cems_hourly_raw"), names.key("cems_hourly_emissions")
    plc_key = plc_resource_key(names)
    units = {unit.unit_id: unit for unit in source.units}
    unit_ids = list(units)
    offset = source.lst_utc_offset_hours
    start = source.history_start.isoformat()
    daily = cems_daily_partitions(offset, start)
    quarterly = cems_quarterly_partitions(offset, start)
    hourly = cems_hourly_partitions(offset, start)
    plc_keys = {plc_key} if source.plc else set()

    @asset(
        partitions_def=hourly,
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        **names.asset_args("cems"),
        kinds={"csv", "modbus", "duckdb"} if source.plc else {"csv", "duckdb"},
        metadata={"partition_expr": "hour_start_utc"},
        check_specs=raw_check_specs(source, names),
        pool=WAREHOUSE_POOL,
        required_resource_keys=plc_keys,
        description="Hourly CEMS records (cems_hourly_raw schema) from accepted DAHS files; the PLC block "
        "fills the hour just closed when no file holds it yet.",
    )
    def cems_hourly_raw(context: AssetExecutionContext) -> Iterator:
        began = time.perf_counter()
        start, end = utc_window(context.partition_time_window)
        rows, files = rows_for_window(source.accepted_folder, start, end, offset, unit_ids)
        refs = [f"{entry.ref}:{entry.sha256}" for entry in files]
        endpoints = [f"file://{source.accepted_folder}"]
        missing = missing_unit_hours(rows, unit_ids, start, end)
        plc_rows = 0
        last_closed = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        if missing and source.plc and start <= last_closed < end:
            plc: ModbusResource = getattr(context.resources, plc_key)
            snapshot = plc.read_points()
            endpoint = ", ".join(snapshot.endpoints)
            block = plc_block_rows(snapshot.frame, unit_ids, offset, endpoint)
            wanted = set(missing)
            block = block[[key in wanted for key in zip(block["unit_id"], block["hour_start_utc"], strict=True)]]
            plc_rows = len(block)
            endpoints.append(endpoint)
            refs.append(f"plc:{snapshot.payload_sha256}")
            if plc_rows:
                rows = pd.concat([rows, block], ignore_index=True).sort_values(KEY_COLUMNS)
        rows = validate_raw_frame(
            rows.reset_index(drop=True)[RAW_COLUMNS], f"{raw_key.to_user_string()}[{context.partition_key_range}]"
        )
        metadata = provenance_metadata(
            endpoint=", ".join(endpoints),
            window=(start, end),
            query=f"{len(files)} accepted DAHS file(s), units {', '.join(unit_ids)}",
            payload_sha256=_digest(refs),
            resource_version=f"{DAHS_READER_VERSION}; {MODBUS_VERSION}" if plc_rows else DAHS_READER_VERSION,
            duration_s=time.perf_counter() - began,
            frame=rows,
        )
        all_valid = (rows[[c for c in RAW_COLUMNS if c.endswith("_status")]] == "valid").all(axis=1)
        metadata.update(
            {
                # Records carry a status per parameter, not one quality: good = every parameter valid.
                "rows_good": int(all_valid.sum()),
                "rows_bad": int((~all_valid).sum()),
                "files": MetadataValue.json([entry.ref for entry in files]),
                "rows_from_plc": plc_rows,
                "unit_hours_missing": len(missing) - plc_rows,
                "non_valid_statuses": MetadataValue.json(
                    {c: int((rows[c] != "valid").sum()) for c in RAW_COLUMNS if c.endswith("_status")}
                ),
            }
        )
        yield from audited(context, rows, metadata, raw_results(source, rows, start, end))

    @asset(
        partitions_def=daily,
        ins={
            "cems_hourly_raw": AssetIn(
                key=raw_key,
                # The day before for look-backs, the day after to close a gap that runs past midnight.
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=-source.lookback_days, end_offset=1, allow_nonexistent_upstream_partitions=True
                ),
            )
        },
        io_manager_key="warehouse",
        **names.asset_args("cems"),
        kinds={"pandas", "duckdb"},
        metadata={"partition_expr": "hour_start_utc"},
        pool=WAREHOUSE_POOL,
        description="Part 75 hourly emissions per unit for one local-standard-time day: missing data "
        f"substituted (§75.33, {source.lookback_days} days of look-back), Appendix F rates and masses.",
    )
    def cems_hourly_emissions(context: AssetExecutionContext, cems_hourly_raw: pd.DataFrame) -> Output[pd.DataFrame]:
        start, end = utc_window(context.partition_time_window)
        day_hours = hourly.get_partition_keys_in_time_window(context.partition_time_window)
        require_checks_passed(context, raw_key, RAW_CHECKS, day_hours)
        raw = cems_hourly_raw.astype({"hour_start_utc": "datetime64[ns, UTC]", "hour_start_lst": "datetime64[ns]"})
        hours = raw["hour_start_utc"]
        today, history = raw[(hours >= start) & (hours < end)], raw[hours < start]
        following = _checked_following_hours(context, raw[hours >= end])
        emissions = compute_hourly_emissions(today, units, history, following)
        open_gaps = open_end_gaps(emissions, following)
        substituted = {
            p: int(emissions[f"{p}_method"].astype(str).str.startswith("sub_").sum())
            for p in ("so2", "co2", "nox", "flow")
        }
        return Output(
            emissions,
            metadata={
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "input_rows": len(today),
                "history_rows": len(history),
                "following_rows": len(following),
                # Read by the cems_open_gaps sensor: these are recomputed when the next day's hours arrive.
                OPEN_GAPS_KEY: MetadataValue.json(open_gaps),
                "substituted_hours": MetadataValue.json(substituted),
                "dagster/row_count": len(emissions),
                "preview": MetadataValue.md(preview_markdown(emissions, rows=24)),
            },
        )

    def _checked_following_hours(context: AssetExecutionContext, following: pd.DataFrame) -> pd.DataFrame:
        """The next day's raw hours whose blocking checks passed: only those may close a gap."""
        if following.empty:
            return following
        keys = {hour: hour.tz_convert(hourly.timezone).strftime(hourly.fmt) for hour in following["hour_start_utc"]}
        problems = problems_by_partition(context.instance, raw_key, RAW_CHECKS, sorted(set(keys.values())))
        passed = [not problems[keys[hour]] for hour in following["hour_start_utc"]]
        return following[passed]

    @asset(
        partitions_def=daily,
        ins={"cems_hourly_emissions": AssetIn(key=emissions_key)},
        io_manager_key="warehouse",
        **names.asset_args("cems"),
        kinds={"pandas", "duckdb"},
        metadata={"partition_expr": "day_start_utc"},
        pool=WAREHOUSE_POOL,
        description="Per unit and local-standard-time day: SO2/NOx lbs, CO2 tons, heat input, operating "
        "hours, substituted hours, PMA at the day's end; hourly CO2 chart.",
    )
    def cems_daily_emissions(
        context: AssetExecutionContext, cems_hourly_emissions: pd.DataFrame
    ) -> Output[pd.DataFrame]:
        require_checks_passed(context, emissions_key, EMISSIONS_CHECKS, [context.partition_key])
        start, end = utc_window(context.partition_time_window)
        totals = daily_totals(cems_hourly_emissions)
        totals.insert(0, "day_start_utc", pd.Timestamp(start))
        by_hour = cems_hourly_emissions.sort_values("hour_start_utc")
        labels = [f"{h:%H}" for h in pd.to_datetime(by_hour["hour_start_lst"]).drop_duplicates()]
        series = {
            unit: frame.sort_values("hour_start_utc")["co2_mass_tons"].tolist()
            for unit, frame in cems_hourly_emissions.groupby("unit_id")
        }
        chart = bar_chart(labels, series, f"CO2 per hour, {context.partition_key} (LST)", "short tons")
        return Output(
            totals,
            metadata={
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "dagster/row_count": len(totals),
                "co2_tons": float(totals["co2_mass_tons"].sum()),
                "heat_input_mmbtu": float(totals["heat_input_mmbtu"].sum()),
                "totals": MetadataValue.md(preview_markdown(totals, rows=50)),
                "chart": chart_metadata(chart, f"hourly CO2 {context.partition_key}"),
            },
        )

    @asset(
        partitions_def=quarterly,
        # The quarter in progress maps to days still to come; those are listed as missing.
        ins={
            "cems_hourly_emissions": AssetIn(
                key=emissions_key,
                partition_mapping=TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True),
            )
        },
        io_manager_key="warehouse",
        **names.asset_args("cems"),
        kinds={"pandas", "duckdb"},
        metadata={"partition_expr": "quarter_start_utc"},
        pool=WAREHOUSE_POOL,
        description="Per unit and calendar quarter (local standard time), quarter to date: totals, "
        "operating hours, PMA at the last hour; daily CO2 chart. Days not yet computed are listed, never guessed.",
    )
    def cems_quarterly_emissions(
        context: AssetExecutionContext, cems_hourly_emissions: pd.DataFrame
    ) -> Output[pd.DataFrame]:
        days = context.asset_partition_keys_for_input("cems_hourly_emissions")
        present = writer_runs(context.instance, emissions_key, days)
        problems = blocking_problems(
            context.instance, emissions_key, EMISSIONS_CHECKS, [d for d in days if d in present]
        )
        if problems:
            raise Failure(
                description=f"blocked: {len(problems)} blocking check result(s) on {emissions_key.to_user_string()} "
                "did not pass: " + "; ".join(problems[:10]),
                metadata={"blocking_problems": MetadataValue.json(problems)},
            )
        if cems_hourly_emissions.empty:
            label = context.asset_key.to_user_string()
            raise Failure(description=f"{label}[{context.partition_key}]: no day computed yet")
        start, end = utc_window(context.partition_time_window)
        totals = quarterly_totals(cems_hourly_emissions)
        totals.insert(0, "quarter_start_utc", pd.Timestamp(start))
        totals["days_computed"] = len(present)
        daily_co2 = cems_hourly_emissions.assign(day=pd.to_datetime(cems_hourly_emissions["hour_start_lst"]).dt.date)
        pivot = daily_co2.pivot_table(index="day", columns="unit_id", values="co2_mass_tons", aggfunc="sum")
        chart = bar_chart(
            [f"{d:%m-%d}" for d in pivot.index],
            {unit: pivot[unit].tolist() for unit in pivot.columns},
            f"CO2 per day, quarter from {context.partition_key} (LST)",
            "short tons",
        )
        missing_days = [d for d in days if d not in present]
        return Output(
            totals,
            metadata={
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "days_computed": len(present),
                "days_missing": len(missing_days),
                "days_missing_list": MetadataValue.json(missing_days[:100]),
                "dagster/row_count": len(totals),
                "co2_tons": float(totals["co2_mass_tons"].sum()),
                "totals": MetadataValue.md(preview_markdown(totals, rows=50)),
                "chart": chart_metadata(chart, f"daily CO2 quarter {context.partition_key}"),
            },
        )

    return [
        cems_hourly_raw,
        cems_hourly_emissions,
        cems_daily_emissions,
        cems_quarterly_emissions,
        *build_epa_assets(source, names),
    ]
