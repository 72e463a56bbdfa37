"""The `reporting:` section of the site config: which numbers feed which report, and the limits.

Quantities are written with their unit ('1.026e-3 mmBtu/scf') and checked for dimension at load,
so a heating value typed per kilogram instead of per cubic foot fails before any run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gl_pipelines.reporting.factors import GWP_SETS, factor_table
from gl_pipelines.reporting.units import PintUnit, parse_quantity

DEFAULT_ERP_UNITS = {
    "M3": "m**3",
    "SCF": "scf",
    "MSC": "Mscf",
    "MSCF": "Mscf",
    "GAL": "gallon",
    "L": "liter",
    "KG": "kg",
    "TO": "t",
    "T": "t",
    "TON": "short_ton",
    "MMBTU": "mmBtu",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _known_fuel(value: str) -> str:
    if value not in factor_table().index:
        raise ValueError(f"fuel type {value!r} is not in the Part 98 factor file ({', '.join(factor_table().index)})")
    return value


class ReportingUnit(_Strict):
    """One combustion unit, named the way each source names it."""

    name: str = Field(min_length=1, description="Unit name used in the reports, e.g. 'Boiler1'.")
    erp_plant: str | None = Field(
        default=None, description="ERP plant code whose fuel and production it reports under."
    )
    cems_unit_id: str | None = Field(default=None, description="CEMS unit id (cems_hourly_emissions.unit_id).")
    fuel_type: str = Field(default="natural_gas", description="Part 98 Table C-1 fuel key for this unit's fuel.")
    fuel_flow_tag: str | None = Field(default=None, description="SCADA/historian tag of fuel volume flow.")
    steam_flow_tag: str | None = Field(default=None, description="SCADA/historian tag of steam mass flow.")

    _fuel_known = field_validator("fuel_type")(_known_fuel)


class EnergyBalanceSettings(_Strict):
    source: Literal["scada", "historian"] = Field(
        default="scada",
        description="Where the fuel and steam flow tags are read: scada_daily_summary or historian_recorded.",
    )
    fuel_hhv: str = Field(default="1.026e-3 mmBtu/scf", description="Fuel higher heating value, energy per volume.")
    steam_enthalpy_rise: str = Field(
        default="2.75 GJ/t", description="Steam enthalpy minus feedwater enthalpy, energy per mass of steam."
    )
    efficiency_min: float = Field(default=0.6, gt=0, lt=1, description="Lowest efficiency that counts as closing.")
    efficiency_max: float = Field(default=0.95, gt=0, le=1, description="Highest efficiency that counts as closing.")
    min_good_share: float = Field(default=0.9, ge=0, le=1, description="Good-quality share each input needs.")

    @field_validator("fuel_hhv")
    @classmethod
    def _hhv_is_energy_per_volume(cls, value: str) -> str:
        parse_quantity(value, dimension_of="mmBtu/scf")
        return value

    @field_validator("steam_enthalpy_rise")
    @classmethod
    def _enthalpy_is_energy_per_mass(cls, value: str) -> str:
        parse_quantity(value, dimension_of="GJ/t")
        return value

    @model_validator(mode="after")
    def _range_ordered(self) -> EnergyBalanceSettings:
        if self.efficiency_min >= self.efficiency_max:
            raise ValueError(
                f"efficiency_min ({self.efficiency_min}) must be below efficiency_max ({self.efficiency_max})"
            )
        return self


class ReportingConfig(_Strict):
    gwp_set: Literal[GWP_SETS] = Field(default="AR5", description="IPCC GWP set for CO2e.")
    reports_dir: str = Field(default="data/reports", description="Folder for HTML, Parquet and CSV report files.")
    csv_exports: bool = Field(default=False, description="Also write each report as CSV next to the Parquet file.")
    energy_balance: EnergyBalanceSettings = EnergyBalanceSettings()
    reconciliation_tolerance_pct: float = Field(
        default=10.0, gt=0, description="CEMS vs fuel-based CO2 difference above this is flagged."
    )
    erp_materials: dict[str, str] = Field(
        default_factory=dict,
        description="ERP material number -> Part 98 fuel key (receipts of other materials are not fuel).",
    )
    erp_units: dict[str, PintUnit] = Field(
        default_factory=lambda: dict(DEFAULT_ERP_UNITS), description="ERP unit of measure -> pint unit."
    )
    units: list[ReportingUnit] = Field(default_factory=list)

    @field_validator("erp_materials")
    @classmethod
    def _materials_are_fuels(cls, value: dict[str, str]) -> dict[str, str]:
        for fuel in value.values():
            _known_fuel(fuel)
        return value

    @model_validator(mode="after")
    def _unique_units(self) -> ReportingConfig:
        for field in ("name", "cems_unit_id"):
            values = [getattr(unit, field) for unit in self.units if getattr(unit, field)]
            duplicated = sorted({v for v in values if values.count(v) > 1})
            if duplicated:
                raise ValueError(f"duplicate unit {field} {duplicated[0]!r}")
        return self
