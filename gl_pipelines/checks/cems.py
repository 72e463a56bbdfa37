"""Blocking checks on the CEMS assets: no report is built on a missing, repeated or impossible hour.

On `cems_hourly_raw` (per hourly partition): every configured unit has every hour; no unit-hour twice;
operating time within 0-1; valid readings within physical limits (per unit where the monitoring
plan gives one). On `cems_hourly_emissions` (per LST day): every unit has every hour of the day, and
every operating hour states the PMA of each substituted parameter. The emissions and report assets
refuse inputs whose checks did not pass (`checks.gate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    multi_asset_check,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, cems_daily_partitions, cems_hourly_partitions, utc_window
from gl_pipelines.cems.schema import KEY_COLUMNS, PARAMETERS, STATUS_VALID, SUBSTITUTED_PARAMETERS
from gl_pipelines.checks.wap import blocking_specs
from gl_pipelines.components.naming import InstanceNames, cems_names
from gl_pipelines.config import CemsSource, CemsUnit

RAW_CHECKS = (
    "cems_raw_hour_coverage",
    "cems_raw_no_duplicate_unit_hour",
    "cems_raw_op_time_in_range",
    "cems_raw_values_in_range",
)
EMISSIONS_CHECKS = ("cems_emissions_hour_coverage", "cems_emissions_pma_reported")
COVERAGE, DUPLICATES, OP_TIME, RANGES = RAW_CHECKS
DAY_COVERAGE, PMA_REPORTED = EMISSIONS_CHECKS
_PHYSICAL = {
    "co2_pct": (0.0, 20.0),  # no fuel's flue gas exceeds ~20 % CO2
    "o2_pct": (0.0, 21.0),  # ambient air is 20.9 %
    "moisture_pct": (0.0, 60.0),
    "so2_ppm": (0.0, None),
    "nox_ppm": (0.0, None),
    "nox_rate_lb_mmbtu": (0.0, 10.0),
}
UNIT_MARGIN = 1.25
"""A reading above 125 % of the unit's maximum potential flow or maximum hourly load is not physical."""


def missing_unit_hours(rows: pd.DataFrame, units: list[str], start: datetime, end: datetime) -> list[tuple]:
    """(unit, UTC hour start) of the window that `rows` has no row for."""
    present = set(zip(rows["unit_id"], rows["hour_start_utc"], strict=True))
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    return [(unit, hour) for unit in units for hour in hours if (unit, hour) not in present]


def limits_for(unit: CemsUnit) -> dict[str, tuple[float, float | None]]:
    """Physical limits of a unit's readings: general ones plus its monitoring-plan maxima."""
    return {
        **_PHYSICAL,
        "stack_flow_scfh": (0.0, unit.flow_mpf_scfh * UNIT_MARGIN if unit.flow_mpf_scfh else None),
        "gross_load_mw": (0.0, unit.max_load_mw * UNIT_MARGIN),
    }


def duplicated_unit_hours(rows: pd.DataFrame) -> list[str]:
    duplicated = rows[rows.duplicated(KEY_COLUMNS, keep=False)]
    return sorted({f"{r.unit_id} {r.hour_start_utc.isoformat()}" for r in duplicated.itertuples()})


def op_time_out_of_range(rows: pd.DataFrame) -> list[str]:
    bad = rows[rows["op_time"].isna() | (rows["op_time"] < 0) | (rows["op_time"] > 1)]
    return [f"{r.unit_id} {r.hour_start_utc.isoformat()}: op_time {r.op_time}" for r in bad.itertuples()]


def values_out_of_range(rows: pd.DataFrame, units: dict[str, CemsUnit]) -> list[str]:
    """'unit hour: column = value (limits)' for each valid reading (and any gross load) outside its limits."""
    status_of = {value: status for value, status in PARAMETERS.values()}
    status_of["nox_rate_lb_mmbtu"] = "nox_status"
    problems = []
    for unit_id, frame in rows.groupby("unit_id"):
        if unit_id not in units:
            problems.append(f"{unit_id}: not a configured unit")
            continue
        for column, (low, high) in limits_for(units[unit_id]).items():
            values = frame[column]
            considered = values.notna()
            if column in status_of:
                considered &= frame[status_of[column]] == STATUS_VALID
            bad = considered & ((values < low) | ((values > high) if high is not None else False))
            for r in frame[bad].itertuples():
                problems.append(
                    f"{unit_id} {r.hour_start_utc.isoformat()}: {column} = {getattr(r, column):g} "
                    f"(limits {low:g}..{high if high is not None else 'inf'})"
                )
    return problems


def pma_not_reported(emissions: pd.DataFrame) -> list[str]:
    """Operating unit-hours where a measured or substituted parameter has no PMA."""
    problems = []
    for parameter in SUBSTITUTED_PARAMETERS:
        method = emissions[f"{parameter}_method"].astype(str)
        needs = (emissions["op_time"] > 0) & ((method == "measured") | method.str.startswith("sub_"))
        bad = emissions[needs & emissions[f"pma_{parameter}"].isna()]
        problems += [f"{r.unit_id} {r.hour_start_utc.isoformat()}: pma_{parameter} missing" for r in bad.itertuples()]
    return problems


def _result(name: str, problems: list[str], ok: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=(f"{len(problems)} problem(s): " + "; ".join(problems[:10])) if problems else ok,
        metadata={"problems": problems[:100], "problem_count": len(problems)},
    )


def build_cems_checks(source: CemsSource, names: InstanceNames | None = None) -> list[AssetChecksDefinition]:
    names = cems_names(names)
    emissions = names.key("cems_hourly_emissions")
    units = {unit.unit_id: unit for unit in source.units}
    unit_ids = list(units)
    daily = cems_daily_partitions(source.lst_utc_offset_hours, source.history_start.isoformat())

    def spec(name: str, description: str) -> AssetCheckSpec:
        return AssetCheckSpec(name, asset=emissions, blocking=True, partitions_def=daily, description=description)

    @multi_asset_check(
        name=names.job("cems_hourly_emissions_checks"),
        specs=[
            spec(DAY_COVERAGE, "Every unit has every hour of the LST day."),
            spec(PMA_REPORTED, "Every operating hour states each parameter's PMA."),
        ],
        ins={"cems_hourly_emissions": AssetIn(emissions)},
        pool=WAREHOUSE_POOL,
    )
    def cems_hourly_emissions_checks(context, cems_hourly_emissions: pd.DataFrame) -> Iterator[AssetCheckResult]:
        start, end = utc_window(context.op_execution_context.partition_time_window)
        rows = cems_hourly_emissions.astype({"hour_start_utc": "datetime64[ns, UTC]"})
        missing = [f"{unit} {hour.isoformat()}" for unit, hour in missing_unit_hours(rows, unit_ids, start, end)]
        yield _result(DAY_COVERAGE, missing, f"{len(unit_ids)} unit(s), every hour of the day present")
        yield _result(PMA_REPORTED, pma_not_reported(rows), "PMA stated for every operating hour")

    return [cems_hourly_emissions_checks]


def raw_check_specs(source: CemsSource, names: InstanceNames | None = None) -> list[AssetCheckSpec]:
    """The blocking checks `cems_hourly_raw` runs on its rows before publishing them (`checks.wap`)."""
    return blocking_specs(
        cems_names(names).key("cems_hourly_raw"),
        {
            COVERAGE: "Every configured unit has a record for every hour.",
            DUPLICATES: "No unit-hour appears twice.",
            OP_TIME: "Operating time is present and within 0-1.",
            RANGES: "Valid readings within physical and unit limits.",
        },
        cems_hourly_partitions(source.lst_utc_offset_hours, source.history_start.isoformat()),
    )


def raw_results(source: CemsSource, rows: pd.DataFrame, start: datetime, end: datetime) -> list[AssetCheckResult]:
    units = {unit.unit_id: unit for unit in source.units}
    rows = rows.astype({"hour_start_utc": "datetime64[ns, UTC]"})
    missing = [f"{unit} {hour.isoformat()}" for unit, hour in missing_unit_hours(rows, list(units), start, end)]
    return [
        _result(COVERAGE, missing, f"{len(units)} unit(s), every hour present"),
        _result(DUPLICATES, duplicated_unit_hours(rows), "no duplicated unit-hour"),
        _result(OP_TIME, op_time_out_of_range(rows), "operating time within 0-1"),
        _result(RANGES, values_out_of_range(rows, units), "all valid readings within limits"),
    ]
