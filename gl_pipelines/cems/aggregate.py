"""Daily and quarterly CEMS totals per unit, summed from the hourly emissions (App. F Eq. F-3/F-12 form).

Periods are local standard time (Part 75 reporting days and quarters). Every total is the plain sum of
the hours, so a report always reconciles with `cems_hourly_emissions`.
"""

from __future__ import annotations

import pandas as pd

from gl_pipelines.cems.schema import SUBSTITUTED_PARAMETERS

LB_PER_SHORT_TON = 2_000.0
_SUMS = {
    "op_hours": "op_time",
    "heat_input_mmbtu": "heat_input_mmbtu",
    "so2_mass_lb": "so2_mass_lb",
    "nox_mass_lb": "nox_mass_lb",
    "co2_mass_tons": "co2_mass_tons",
    "gross_load_mwh": "gross_load_mwh",
}
_PMA = [f"pma_{p}" for p in SUBSTITUTED_PARAMETERS]
_SUBSTITUTED = [f"{p}_substituted_hours" for p in SUBSTITUTED_PARAMETERS]
PERIOD_COLUMNS = [
    "unit_id",
    "period_start_lst",
    "hours",
    "operating_hours_count",
    "operating_days",
    *_SUMS,
    "so2_mass_tons",
    "nox_mass_tons",
    *_PMA,
    *_SUBSTITUTED,
]


def _totals(emissions: pd.DataFrame, period_start: pd.Series) -> pd.DataFrame:
    frame = emissions.assign(
        period_start_lst=period_start,
        lst_day=emissions["hour_start_lst"].dt.floor("D"),
        operating=emissions["op_time"] > 0,
        gross_load_mwh=emissions["gross_load_mw"].fillna(0.0) * emissions["op_time"],
        **{
            f"{p}_substituted_hours": emissions[f"{p}_method"].str.startswith("sub_", na=False)
            for p in SUBSTITUTED_PARAMETERS
        },
    ).sort_values(["unit_id", "hour_start_utc"], kind="stable")
    grouped = frame.groupby(["unit_id", "period_start_lst"], sort=True)
    out = grouped.agg(
        hours=("op_time", "size"),
        operating_hours_count=("operating", "sum"),
        **{name: (column, "sum") for name, column in _SUMS.items()},
        **{name: (name, "sum") for name in _SUBSTITUTED},
        **{name: (name, "last") for name in _PMA},
    ).reset_index()
    operating_days = frame[frame["operating"]].groupby(["unit_id", "period_start_lst"])["lst_day"].nunique()
    out["operating_days"] = (
        out.set_index(["unit_id", "period_start_lst"]).index.map(operating_days).fillna(0).astype("int64")
    )
    out["so2_mass_tons"] = out["so2_mass_lb"] / LB_PER_SHORT_TON
    out["nox_mass_tons"] = out["nox_mass_lb"] / LB_PER_SHORT_TON
    return out[PERIOD_COLUMNS]


def daily_totals(emissions: pd.DataFrame) -> pd.DataFrame:
    """Per unit and local-standard-time day (`period_start_lst` = midnight LST)."""
    return _totals(emissions, emissions["hour_start_lst"].dt.floor("D"))


def quarterly_totals(emissions: pd.DataFrame) -> pd.DataFrame:
    """Per unit and calendar quarter in local standard time (`period_start_lst` = first day, midnight)."""
    return _totals(emissions, emissions["hour_start_lst"].dt.to_period("Q").dt.start_time)
