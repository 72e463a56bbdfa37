"""CEMS-measured CO2 against fuel-based CO2 for the same unit and month.

Fuel-based CO2 is the unit's metered fuel energy (from the energy balance) times the Table C-1
CO2 factor. CEMS reports CO2 mass in short tons (Part 75); both sides are compared in metric
tonnes. A difference beyond the tolerance is a flagged row, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gl_pipelines.reporting.factors import fuel_factors
from gl_pipelines.reporting.ghg import month_start
from gl_pipelines.reporting.settings import ReportingUnit
from gl_pipelines.reporting.units import conversion_factor

COLUMNS = {
    "month": "first instant of the plant month (UTC)",
    "unit_name": "combustion unit",
    "cems_unit_id": "CEMS unit id",
    "cems_co2_t": "CEMS CO2 mass, metric t (from short tons)",
    "cems_hours": "operating unit-hours behind the CEMS total",
    "fuel_co2_t": "fuel energy x Table C-1 CO2 factor, metric t",
    "fuel_days": "plant days of energy balance behind the fuel total",
    "difference_pct": "(CEMS - fuel) / fuel x 100",
    "within_tolerance": "|difference_pct| <= tolerance_pct",
    "tolerance_pct": "configured tolerance",
}
SHORT_TON_TO_T = conversion_factor("short_ton", "t")


def reconcile(
    cems_hourly: pd.DataFrame,
    balance: pd.DataFrame,
    units: Sequence[ReportingUnit],
    tolerance_pct: float,
    timezone: str,
) -> pd.DataFrame:
    """One row per (month, unit) that has CEMS data or fuel data (a side that is missing shows as NaN
    and is never within tolerance)."""
    rows = []
    for unit in units:
        if not unit.cems_unit_id:
            continue
        cems = cems_hourly[cems_hourly["unit_id"] == unit.cems_unit_id]
        cems_month = (
            cems.assign(month=month_start(cems["hour_start_utc"], timezone), op=cems["op_time"] > 0)
            .groupby("month")
            .agg(cems_co2_t=("co2_mass_tons", "sum"), cems_hours=("op", "sum"))
        )
        cems_month["cems_co2_t"] *= SHORT_TON_TO_T
        fuel = balance[balance["unit_name"] == unit.name]
        factor = fuel_factors(unit.fuel_type).co2_kg_per_mmbtu / 1000.0
        fuel_month = (
            fuel.assign(month=month_start(fuel["day"], timezone))
            .groupby("month")
            .agg(fuel_mmbtu=("fuel_energy_mmbtu", "sum"), fuel_days=("day", "size"))
        )
        fuel_month["fuel_co2_t"] = fuel_month.pop("fuel_mmbtu") * factor
        both = cems_month.join(fuel_month, how="outer").reset_index()
        both["unit_name"], both["cems_unit_id"] = unit.name, unit.cems_unit_id
        rows.append(both)
    if not rows:
        return _empty()
    result = pd.concat(rows, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        result["difference_pct"] = 100.0 * (result["cems_co2_t"] - result["fuel_co2_t"]) / result["fuel_co2_t"]
    result["within_tolerance"] = result["difference_pct"].abs() <= tolerance_pct
    result["tolerance_pct"] = float(tolerance_pct)
    result["cems_hours"] = result["cems_hours"].fillna(0).astype("int64")
    result["fuel_days"] = result["fuel_days"].fillna(0).astype("int64")
    return result[list(COLUMNS)].sort_values(["month", "unit_name"], ignore_index=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in COLUMNS})
    return frame.astype(
        {
            "month": "datetime64[ns, UTC]",
            "unit_name": "object",
            "cems_unit_id": "object",
            "cems_hours": "int64",
            "fuel_days": "int64",
            "within_tolerance": "bool",
        }
    )
