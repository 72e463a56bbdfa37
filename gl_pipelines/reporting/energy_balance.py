"""Daily boiler energy balance: fuel energy in (volume x HHV) against steam energy out.

Inputs are per-day, per-tag summaries (the shape of `scada_daily_summary`): the mean of the good
samples, sample counts, and the hours in the plant day (23, 24 or 25). A flow's daily total is its
good mean times those hours, so the good share travels with every number it supports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gl_pipelines.reporting.settings import EnergyBalanceSettings, ReportingUnit
from gl_pipelines.reporting.units import conversion_factor, parse_quantity

COLUMNS = {
    "day": "plant day, as the UTC instant of local midnight",
    "unit_name": "combustion unit (reporting.units[].name)",
    "fuel_tag": "tag the fuel flow came from",
    "fuel_volume_scf": "fuel burned in the day, scf",
    "fuel_energy_mmbtu": "fuel energy in, mmBtu HHV",
    "steam_t": "steam produced in the day, metric t",
    "steam_energy_mmbtu": "steam energy out (steam x enthalpy rise), mmBtu",
    "efficiency": "steam energy out / fuel energy in",
    "fuel_good_share": "share of fuel-flow samples with good quality",
    "steam_good_share": "share of steam-flow samples with good quality",
    "closes": "efficiency within the configured range and both good shares above the minimum",
}


def day_hours(days: pd.Series, timezone: str) -> pd.Series:
    """Hours in each plant day (23/24/25 across DST changes), from the UTC instants of local midnight."""
    local = days.dt.tz_convert(timezone)
    next_midnight = (local.dt.tz_localize(None) + pd.Timedelta(days=1)).dt.tz_localize(
        timezone, ambiguous=False, nonexistent="shift_forward"
    )
    return (next_midnight.dt.tz_convert("UTC") - days.dt.tz_convert("UTC")).dt.total_seconds() / 3600.0


def flow_totals(summary: pd.DataFrame, tag: str, to_unit: str, hours: pd.Series) -> pd.DataFrame:
    """Per day: total of one flow tag in `to_unit` (good mean x hours) and its good share."""
    rows = summary[summary["tag"] == tag]
    if rows.empty:
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns, UTC]"), "total": [], "good_share": []})
    units = rows["unit"].unique()
    if len(units) != 1:
        raise ValueError(f"tag {tag!r} has several units in one window: {list(units)}")
    rate_unit = f"({units[0]}) * hour"
    factor = conversion_factor(rate_unit, to_unit)
    span = hours.loc[rows.index]
    return pd.DataFrame(
        {
            "day": rows["day"].to_numpy(),
            "total": (rows["mean"] * span * factor).to_numpy(),
            "good_share": (rows["count_good"] / rows["count"]).to_numpy(),
        }
    )


def energy_balance(
    summary: pd.DataFrame, units: Sequence[ReportingUnit], settings: EnergyBalanceSettings, timezone: str
) -> pd.DataFrame:
    """One row per (day, unit) with both a fuel and a steam tag configured."""
    hhv = parse_quantity(settings.fuel_hhv).to("mmBtu/scf").magnitude
    enthalpy = parse_quantity(settings.steam_enthalpy_rise).to("mmBtu/t").magnitude
    hours = day_hours(summary["day"], timezone) if not summary.empty else pd.Series(dtype=float)
    frames = []
    for unit in units:
        if not (unit.fuel_flow_tag and unit.steam_flow_tag):
            continue
        fuel = flow_totals(summary, unit.fuel_flow_tag, "scf", hours)
        steam = flow_totals(summary, unit.steam_flow_tag, "t", hours)
        both = fuel.merge(steam, on="day", how="outer", suffixes=("_fuel", "_steam"))
        frames.append(
            pd.DataFrame(
                {
                    "day": both["day"],
                    "unit_name": unit.name,
                    "fuel_tag": unit.fuel_flow_tag,
                    "fuel_volume_scf": both["total_fuel"],
                    "fuel_energy_mmbtu": both["total_fuel"] * hhv,
                    "steam_t": both["total_steam"],
                    "steam_energy_mmbtu": both["total_steam"] * enthalpy,
                    "fuel_good_share": both["good_share_fuel"].fillna(0.0),
                    "steam_good_share": both["good_share_steam"].fillna(0.0),
                }
            )
        )
    if not frames:
        return _empty()
    result = pd.concat(frames, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        result["efficiency"] = result["steam_energy_mmbtu"] / result["fuel_energy_mmbtu"].where(
            result["fuel_energy_mmbtu"] > 0
        )
    result["closes"] = (
        result["efficiency"].between(settings.efficiency_min, settings.efficiency_max)
        & (result["fuel_good_share"] >= settings.min_good_share)
        & (result["steam_good_share"] >= settings.min_good_share)
    )
    return result[list(COLUMNS)].sort_values(["day", "unit_name"], ignore_index=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in COLUMNS})
    return frame.astype({"day": "datetime64[ns, UTC]", "unit_name": "object", "fuel_tag": "object", "closes": "bool"})
