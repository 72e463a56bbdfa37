"""Blocking checks on the report assets, evaluated in the step that builds the report.

Each report yields its own check results next to its table, so the check and the data it judged
are recorded in the same run: anything downstream (the monthly HTML report) asks `checks.gate`
whether they passed before it builds on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

ENERGY_BALANCE_CLOSES = "energy_balance_closes"
ENERGY_NON_NEGATIVE = "energy_balance_non_negative"
GHG_NON_NEGATIVE = "ghg_no_negative_emissions"
RECONCILIATION_WITHIN_TOLERANCE = "reconciliation_within_tolerance"
RECONCILIATION_NON_NEGATIVE = "reconciliation_non_negative"
INTENSITY_NON_NEGATIVE = "intensity_non_negative"

REPORT_BLOCKING_CHECKS = {
    "plant_energy_balance": (ENERGY_BALANCE_CLOSES, ENERGY_NON_NEGATIVE),
    "ghg_inventory": (GHG_NON_NEGATIVE,),
    "cems_fuel_reconciliation": (RECONCILIATION_NON_NEGATIVE,),
    "emissions_intensity": (INTENSITY_NON_NEGATIVE,),
}
_DESCRIPTIONS = {
    ENERGY_BALANCE_CLOSES: "Every unit-day: efficiency within the configured range, each input's good share "
    "above the minimum.",
    ENERGY_NON_NEGATIVE: "Fuel and steam totals present and not negative.",
    GHG_NON_NEGATIVE: "CO2, CH4, N2O and CO2e present and not negative on every row.",
    RECONCILIATION_WITHIN_TOLERANCE: "CEMS and fuel-based CO2 agree within the tolerance (a flag, not a block: the "
    "report shows the difference).",
    RECONCILIATION_NON_NEGATIVE: "CEMS and fuel-based CO2 not negative.",
    INTENSITY_NON_NEGATIVE: "CO2e and production not negative; intensity not negative where defined.",
}


def report_check_specs(report: str, asset: AssetKey | None = None) -> list[AssetCheckSpec]:
    """The checks of `report` on its asset: `asset` when the report carries an instance prefix."""
    asset = asset or AssetKey(report)
    names = list(REPORT_BLOCKING_CHECKS[report])
    specs = [AssetCheckSpec(name, asset=asset, blocking=True, description=_DESCRIPTIONS[name]) for name in names]
    if report == "cems_fuel_reconciliation":
        specs.append(
            AssetCheckSpec(
                RECONCILIATION_WITHIN_TOLERANCE,
                asset=asset,
                blocking=False,
                description=_DESCRIPTIONS[RECONCILIATION_WITHIN_TOLERANCE],
            )
        )
    return specs


def negative_rows(frame: pd.DataFrame, columns: Sequence[str], allow_null: Sequence[str] = ()) -> pd.DataFrame:
    """Rows where a column is negative, or null unless listed in `allow_null`."""
    bad = pd.Series(False, index=frame.index)
    for column in columns:
        values = frame[column].astype(float)
        bad |= values < 0
        if column not in allow_null:
            bad |= values.isna()
    return frame[bad]


def _result(name: str, asset: AssetKey, failing: pd.DataFrame, ok: str, problem: str, *, warn: bool = False):
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=failing.empty,
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR,
        description=ok if failing.empty else f"{len(failing)} row(s) {problem}",
        metadata={"failing_rows": len(failing), "examples": MetadataValue.md(_examples(failing))},
    )


def _examples(frame: pd.DataFrame) -> str:
    return "_none_" if frame.empty else frame.head(5).to_markdown(index=False)


def energy_balance_checks(balance: pd.DataFrame, asset: AssetKey | None = None) -> list[AssetCheckResult]:
    asset = asset or AssetKey("plant_energy_balance")  # an instance's report passes its prefixed key
    open_rows = balance[~balance["closes"].astype(bool)]
    negative = negative_rows(balance, ["fuel_energy_mmbtu", "steam_energy_mmbtu"])
    closes = _result(
        ENERGY_BALANCE_CLOSES,
        asset,
        open_rows,
        f"all {len(balance)} unit-day(s) close",
        "do not close (efficiency out of range or too few good samples)",
    )
    if balance.empty:
        closes = AssetCheckResult(
            asset_key=asset,
            check_name=ENERGY_BALANCE_CLOSES,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description="no unit-day in the window: the fuel or steam tag has no data",
        )
    return [
        closes,
        _result(ENERGY_NON_NEGATIVE, asset, negative, "no negative or missing totals", "negative or missing"),
    ]


def ghg_checks(inventory: pd.DataFrame, asset: AssetKey | None = None) -> list[AssetCheckResult]:
    asset = asset or AssetKey("ghg_inventory")  # an instance's report passes its prefixed key
    bad = negative_rows(inventory, ["co2_t", "ch4_t", "n2o_t", "co2e_t"])
    return [_result(GHG_NON_NEGATIVE, asset, bad, "no negative or missing emissions", "negative or missing")]


def reconciliation_checks(reconciliation: pd.DataFrame, asset: AssetKey | None = None) -> list[AssetCheckResult]:
    asset = asset or AssetKey("cems_fuel_reconciliation")  # an instance's report passes its prefixed key
    negative = negative_rows(reconciliation, ["cems_co2_t", "fuel_co2_t"], allow_null=["cems_co2_t", "fuel_co2_t"])
    outside = reconciliation[~reconciliation["within_tolerance"].astype(bool)]
    return [
        _result(RECONCILIATION_NON_NEGATIVE, asset, negative, "no negative CO2", "negative"),
        _result(
            RECONCILIATION_WITHIN_TOLERANCE,
            asset,
            outside,
            "every unit-month within tolerance",
            "outside the tolerance or missing a side (flagged in the report)",
            warn=True,
        ),
    ]


def intensity_checks(intensity: pd.DataFrame, asset: AssetKey | None = None) -> list[AssetCheckResult]:
    asset = asset or AssetKey("emissions_intensity")  # an instance's report passes its prefixed key
    bad = negative_rows(
        intensity,
        ["co2e_t", "production_quantity", "intensity_t_per_unit"],
        allow_null=["production_quantity", "intensity_t_per_unit"],
    )
    return [_result(INTENSITY_NON_NEGATIVE, asset, bad, "no negative values", "negative")]
