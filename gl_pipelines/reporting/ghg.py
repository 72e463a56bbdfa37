"""Scope 1 combustion GHG inventory from ERP fuel receipts (40 CFR 98 Subpart C, Tier 1).

Tier 1 (Equation C-1): CO2 = 1e-3 x Fuel x HHV x EF, with the Table C-1 default HHV and CO2
factor; CH4 and N2O (Equation C-8) use the same heat input with the Table C-2 factors. CO2e sums
each gas times its GWP. Results are metric tonnes.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from gl_pipelines.reporting.factors import FACTOR_VERSION, fuel_factors, gwp
from gl_pipelines.reporting.scratch import scratch_connection
from gl_pipelines.reporting.units import conversion_factor
from gl_pipelines.resources.warehouse_reader import WINDOW_ROWS

COLUMNS = {
    "month": "first instant of the plant month (UTC)",
    "plant": "ERP plant code",
    "fuel_type": "Part 98 Table C-1 fuel key",
    "fuel_quantity": "fuel received, in fuel_unit",
    "fuel_unit": "Table C-1 unit of the fuel (scf, gallon, short_ton)",
    "heat_input_mmbtu": "fuel x default HHV, mmBtu",
    "co2_t": "CO2, metric t (Table C-1 factor)",
    "ch4_t": "CH4, metric t (Table C-2 factor)",
    "n2o_t": "N2O, metric t (Table C-2 factor)",
    "co2e_t": "CO2 + CH4 x GWP + N2O x GWP, metric t CO2e",
    "gwp_set": "IPCC GWP set used",
    "documents": "ERP documents summed",
    "factor_version": "factor table version",
}


class InventoryInputError(ValueError):
    """An ERP receipt the inventory cannot convert (unit unknown or not a quantity of that fuel)."""


def month_start(instants: pd.Series, timezone: str) -> pd.Series:
    """The UTC instant of local midnight on the 1st of each instant's plant month (computed once per
    distinct instant: a month of hourly rows has ~744 of them, a month of documents ~31 dates)."""
    codes, uniques = pd.factorize(instants, use_na_sentinel=False)
    distinct = pd.Series(uniques)
    if distinct.empty:
        return pd.Series(pd.DatetimeIndex([], tz="UTC"), index=instants.index)
    local = distinct.dt.tz_convert(timezone).dt.tz_localize(None)
    first = local.dt.to_period("M").dt.start_time
    starts = first.dt.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward").dt.tz_convert("UTC")
    # Spread back by position (a take), not by a dict lookup per row, which costs ~5 us a row.
    return pd.Series(starts.array.take(codes), index=instants.index, name=instants.name)


RECEIPT_COLUMNS = ["posting_date", "plant", "material", "unit", "quantity", "document"]
"""The `erp_fuel_receipts` columns the inventory reads."""
DAILY_FUEL_SUMS = f"""
SELECT posting_date, plant::VARCHAR AS plant, material, unit, sum(quantity)::DOUBLE AS quantity,
       count(*) AS documents, min(document) AS first_document
FROM {WINDOW_ROWS}
GROUP BY ALL
ORDER BY ALL
"""
"""Receipts summed per posting day, plant, material and unit: every factor is linear in the quantity, so the
inventory converts the sums, never a receipt at a time. Run inside the warehouse
(`WarehouseReader.query_window`), only ~one row per day and material leaves it; `fuel_sums` runs it on a frame."""


def fuel_sums(receipts: pd.DataFrame) -> pd.DataFrame:
    """`DAILY_FUEL_SUMS` over receipts already in memory (the same SQL the warehouse runs)."""
    with scratch_connection() as connection:
        connection.register(WINDOW_ROWS, receipts[RECEIPT_COLUMNS])
        return connection.execute(DAILY_FUEL_SUMS).fetchdf()


def ghg_inventory(
    sums: pd.DataFrame,
    materials: Mapping[str, str],
    erp_units: Mapping[str, str],
    gwp_set: str,
    timezone: str,
) -> pd.DataFrame:
    """Per plant month, plant and fuel: heat input and CO2, CH4, N2O, CO2e, from `DAILY_FUEL_SUMS` rows.
    Materials not in `materials` are not fuel and are left out."""
    potentials = gwp(gwp_set)
    fuel = sums[sums["material"].isin(list(materials))]
    if fuel.empty:
        return _empty()
    sums = (
        fuel.assign(month=month_start(fuel["posting_date"], timezone))
        .groupby(["month", "plant", "material", "unit"], as_index=False, sort=False)
        .agg(quantity=("quantity", "sum"), documents=("documents", "sum"), first_document=("first_document", "min"))
    )
    rows = []
    for (material, erp_unit), group in sums.groupby(["material", "unit"], sort=False):
        factors = fuel_factors(materials[material])
        if erp_unit not in erp_units:
            raise InventoryInputError(
                f"erp_fuel_receipts: unit {erp_unit!r} of material {material!r} (document "
                f"{group['first_document'].iloc[0]}) is not in reporting.erp_units ({', '.join(erp_units)})"
            )
        try:
            to_fuel_unit = conversion_factor(erp_units[erp_unit], factors.fuel_unit)
        except ValueError as exc:
            raise InventoryInputError(
                f"erp_fuel_receipts: material {material!r} is mapped to {factors.fuel_type}, measured in "
                f"{factors.fuel_unit}, but its receipts are in {erp_unit!r}: {exc}"
            ) from None
        quantity = group["quantity"] * to_fuel_unit
        heat = quantity * factors.hhv_mmbtu_per_unit
        rows.append(
            pd.DataFrame(
                {
                    "month": group["month"],
                    "plant": group["plant"],
                    "fuel_type": factors.fuel_type,
                    "fuel_quantity": quantity,
                    "fuel_unit": factors.fuel_unit,
                    "heat_input_mmbtu": heat,
                    "co2_t": heat * factors.co2_kg_per_mmbtu / 1000.0,
                    "ch4_t": heat * factors.ch4_kg_per_mmbtu / 1000.0,
                    "n2o_t": heat * factors.n2o_kg_per_mmbtu / 1000.0,
                    "documents": group["documents"],
                }
            )
        )
    keys = ["month", "plant", "fuel_type", "fuel_unit"]
    total = pd.concat(rows, ignore_index=True).groupby(keys, as_index=False).sum(numeric_only=True)
    total["co2e_t"] = total["co2_t"] + total["ch4_t"] * potentials["CH4"] + total["n2o_t"] * potentials["N2O"]
    total["gwp_set"] = gwp_set
    total["factor_version"] = FACTOR_VERSION
    total["documents"] = total["documents"].astype("int64")
    return total[list(COLUMNS)].sort_values(["month", "plant", "fuel_type"], ignore_index=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in COLUMNS})
    return frame.astype(
        {
            "month": "datetime64[ns, UTC]",
            "plant": "object",
            "fuel_type": "object",
            "fuel_unit": "object",
            "gwp_set": "object",
            "documents": "int64",
            "factor_version": "object",
        }
    )
