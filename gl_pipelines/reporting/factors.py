"""Emission factors and GWPs from the versioned, cited files in `data/` (see data/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import pandas as pd

from gl_pipelines.reporting.units import conversion_factor, parse_quantity

FACTOR_FILE = "part98_table_c1_c2.csv"
GWP_FILE = "gwp.csv"
FACTOR_VERSION = (
    "40 CFR 98 Subpart C: Table C-1 per 81 FR 89188 (2016-12-09); Table C-2 as amended 89 FR 42220 (2024-05-14)"
)
GWP_SETS = ("AR4", "AR5", "AR6")
GASES = ("CO2", "CH4", "N2O")


class FactorError(KeyError):
    """A fuel or GWP set the factor files do not list."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class FuelFactors:
    """Table C-1 and C-2 defaults for one fuel, in kg of gas per mmBtu (HHV)."""

    fuel_type: str
    hhv_mmbtu_per_unit: float
    fuel_unit: str
    co2_kg_per_mmbtu: float
    ch4_kg_per_mmbtu: float
    n2o_kg_per_mmbtu: float

    def mmbtu(self, quantity, unit: str):
        """Heat input (mmBtu) of `quantity` of this fuel measured in `unit` (vectorized)."""
        return quantity * conversion_factor(unit, self.fuel_unit) * self.hhv_mmbtu_per_unit


def _read(name: str) -> pd.DataFrame:
    with resources.files("gl_pipelines.reporting").joinpath("data", name).open("r") as handle:
        return pd.read_csv(handle, comment="#")


@cache
def factor_table() -> pd.DataFrame:
    """The factor file as a frame indexed by `fuel_type`."""
    return _read(FACTOR_FILE).set_index("fuel_type")


@cache
def gwp_table() -> pd.DataFrame:
    return _read(GWP_FILE)


def fuel_factors(fuel_type: str) -> FuelFactors:
    table = factor_table()
    if fuel_type not in table.index:
        raise FactorError(f"fuel type {fuel_type!r} is not in {FACTOR_FILE}; known: {', '.join(table.index)}")
    row = table.loc[fuel_type]
    # Table C-1 prints HHV as energy per fuel unit; split it into a number in mmBtu and the fuel unit.
    hhv = parse_quantity(f"{row.hhv} {row.hhv_unit}")
    fuel_unit = row.hhv_unit.split("/", 1)[1]
    return FuelFactors(
        fuel_type=fuel_type,
        hhv_mmbtu_per_unit=float(hhv.to(f"mmBtu/{fuel_unit}").magnitude),
        fuel_unit=fuel_unit,
        co2_kg_per_mmbtu=float(row.co2_kg_per_mmbtu),
        ch4_kg_per_mmbtu=float(row.ch4_kg_per_mmbtu),
        n2o_kg_per_mmbtu=float(row.n2o_kg_per_mmbtu),
    )


def gwp(gwp_set: str) -> dict[str, float]:
    """{'CO2': 1, 'CH4': ..., 'N2O': ...} for one IPCC set."""
    table = gwp_table()
    rows = table[table["gwp_set"] == gwp_set]
    if rows.empty:
        raise FactorError(
            f"GWP set {gwp_set!r} is not in {GWP_FILE}; known: {', '.join(sorted(table['gwp_set'].unique()))}"
        )
    return {row.gas: float(row.gwp) for row in rows.itertuples()}
