"""Emissions intensity: tonnes CO2e per unit of production, per plant month and product unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gl_pipelines.reporting.ghg import month_start

COLUMNS = {
    "month": "first instant of the plant month (UTC)",
    "plant": "ERP plant code",
    "co2e_t": "Scope 1 CO2e of the plant month, metric t (ghg_inventory)",
    "production_quantity": "production confirmed in the month, in production_unit",
    "production_unit": "ERP unit of the product quantity",
    "intensity_t_per_unit": "co2e_t / production_quantity",
}


def emissions_intensity(
    inventory: pd.DataFrame, production: pd.DataFrame, timezone: str, *, date_column: str = "date"
) -> pd.DataFrame:
    """Join the inventory's CO2e per plant month with production per plant month and unit. A plant
    month with emissions but no production keeps its row with a null intensity."""
    emissions = inventory.groupby(["month", "plant"], as_index=False)["co2e_t"].sum()
    made = (
        production.assign(month=month_start(production[date_column], timezone), plant=production["plant"].astype(str))
        .groupby(["month", "plant", "unit"], as_index=False)["quantity"]
        .sum()
        .rename(columns={"quantity": "production_quantity", "unit": "production_unit"})
    )
    result = emissions.merge(made, on=["month", "plant"], how="left")
    quantity = result["production_quantity"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        result["intensity_t_per_unit"] = result["co2e_t"] / quantity.where(quantity > 0)
    return result[list(COLUMNS)].sort_values(["month", "plant"], ignore_index=True)
