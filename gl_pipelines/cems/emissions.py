"""Hourly Part 75 emissions from `cems_hourly_raw`: substitute missing data, then apply Appendix F.

The unit's configuration (`CemsUnit`) picks the equation: monitor basis (wet/dry), heat input from CO2
(F-15) or O2 (F-17/F-18), NOx rate from ppm and diluent (F-5/F-6/F-7a/F-7b) or reported directly, SO2
from the CEMS (F-1/F-2) or a default rate, CO2 from the monitor (F-11) or from the heat input (App. G
Eq. G-4, `co2_method: appendix_g`, as EPA computes gas and oil units). An Appendix D unit takes heat
input, SO2 and CO2 from its metered fuel flow instead (D-6/D-8, D-2/D-4/D-5, G-4). Rates are per
operating hour; masses are rate x operating time. Non-operating hours carry zero mass and no rates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gl_pipelines.cems import equations as eq
from gl_pipelines.cems.fuel_based import appendix_d_rates, co2_tons_g4
from gl_pipelines.cems.schema import (
    EMISSIONS_COLUMNS,
    EMISSIONS_DTYPES,
    FUEL_FLOW_COLUMN,
    PARAMETERS,
    STATUS_VALID,
    SUBSTITUTED_PARAMETERS,
    CemsSchemaError,
)
from gl_pipelines.cems.substitution import substitute_units
from gl_pipelines.config import CemsUnit


def _to_basis(values, basis: str, target: str, moisture):
    if basis == target:
        return values
    return eq.wet_from_dry(values, moisture) if target == "wet" else eq.dry_from_wet(values, moisture)


def unit_rates(filled: Mapping[str, np.ndarray], unit: CemsUnit) -> dict[str, np.ndarray]:
    """Part 75 rates for one unit's substituted hours: heat input, SO2, CO2, NOx (per operating hour).

    A CEMS unit's heat input, SO2 and CO2 follow Appendix F (CO2 by App. G Eq. G-4 with `co2_method:
    appendix_g`); an Appendix D unit's come from its metered fuel flow (`fuel_based.appendix_d_rates`).
    NOx is the NOx-diluent CEMS's either way."""
    flow = filled["stack_flow_scfh"]
    if unit.moisture_method == "default":
        moisture = np.full(len(flow), float(unit.moisture_default_pct))
    else:
        moisture = filled["moisture_pct"]
    co2 = filled["co2_pct"]
    o2 = filled["o2_pct"]

    if unit.appendix_d is not None:
        fuel = appendix_d_rates(filled[FUEL_FLOW_COLUMN], unit.appendix_d)
        heat_input, so2_lb_hr, co2_tons_hr = fuel["heat_input_mmbtu_hr"], fuel["so2_lb_hr"], fuel["co2_tons_hr"]
    else:
        if unit.heat_input_method == "co2":
            heat_input = eq.heat_input_co2_wet(flow, _to_basis(co2, unit.co2_basis, "wet", moisture), unit.fc_factor)
        elif unit.o2_basis == "dry":
            heat_input = eq.heat_input_o2_dry(flow, o2, moisture, unit.fd_factor)
        else:
            heat_input = eq.heat_input_o2_wet(flow, o2, moisture, unit.fd_factor)

        if unit.co2_method == "appendix_g":
            co2_tons_hr = co2_tons_g4(heat_input, unit.fc_factor)
        elif unit.co2_basis == "wet":
            co2_tons_hr = eq.co2_tons_hr_wet(co2, flow)
        else:
            co2_tons_hr = eq.co2_tons_hr_dry(co2, flow, moisture)

        if unit.so2_method == "default_rate":
            so2_lb_hr = eq.so2_lb_hr_default_rate(unit.so2_default_rate_lb_mmbtu, heat_input)
        elif unit.so2_basis == "wet":
            so2_lb_hr = eq.so2_lb_hr_wet(filled["so2_ppm"], flow)
        else:
            so2_lb_hr = eq.so2_lb_hr_dry(filled["so2_ppm"], flow, moisture)

    if unit.nox_method == "rate":
        nox_rate = filled["nox_rate_lb_mmbtu"]
    elif unit.heat_input_method == "o2":
        nox = _to_basis(filled["nox_ppm"], unit.nox_basis, unit.o2_basis, moisture)
        if unit.o2_basis == "dry":
            nox_rate = eq.nox_rate_o2_dry(nox, o2, unit.fd_factor)
        else:
            nox_rate = eq.nox_rate_o2_wet(nox, o2, moisture, unit.fd_factor)
    else:
        nox = _to_basis(filled["nox_ppm"], unit.nox_basis, unit.co2_basis, moisture)
        nox_rate = eq.nox_rate_co2_dry(nox, co2, unit.fc_factor)
    return {
        "heat_input_mmbtu_hr": heat_input,
        "so2_lb_hr": so2_lb_hr,
        "co2_tons_hr": co2_tons_hr,
        "nox_rate_lb_mmbtu": nox_rate,
        "moisture_pct": moisture,
    }


def _ordered(
    raw: pd.DataFrame, history: pd.DataFrame | None, following: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """History + raw + following rows sorted by unit then hour, a raw hour replacing the same hour in
    history (`following` starts after `raw` ends).

    Returns the rows, each row's unit number (in order of first appearance) and which rows are raw.
    """
    units = raw["unit_id"].unique()
    before = history[history["unit_id"].isin(units)] if history is not None else raw.iloc[:0]
    after = following[following["unit_id"].isin(units)] if following is not None else raw.iloc[:0]
    current = np.concatenate([np.zeros(len(before), bool), np.ones(len(raw), bool), np.zeros(len(after), bool)])
    if len(before) or len(after):
        hours = pd.concat([before, raw, after], ignore_index=True)
    else:
        hours = raw if isinstance(raw.index, pd.RangeIndex) and raw.index.start == 0 else raw.reset_index(drop=True)
    codes, _ = pd.factorize(hours["unit_id"])
    stamps = hours["hour_start_utc"].to_numpy(dtype="datetime64[ns]").view("int64")
    in_order = len(codes) < 2 or bool(
        np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (stamps[1:] > stamps[:-1])))
    )
    if not in_order:
        order = np.lexsort((stamps, codes))  # stable: a raw row stays after the history row it repeats
        codes, stamps, current = codes[order], stamps[order], current[order]
        keep = np.concatenate([(codes[1:] != codes[:-1]) | (stamps[1:] != stamps[:-1]), [True]])
        hours = hours.take(order[keep]).reset_index(drop=True)
        codes, current = codes[keep], current[keep]
        codes = pd.factorize(codes)[0]
    return hours, codes, current


def open_end_gaps(emissions: pd.DataFrame, following: pd.DataFrame | None) -> list[str]:
    """`unit/parameter` for each gap still open at the end of `emissions`: the unit's last operating
    hour is substituted and no quality-assured hour of that parameter follows in `following`. Such an
    hour was filled from the hour before alone; it is to be recomputed once the hour after arrives."""
    open_gaps = []
    for unit, rows in emissions[emissions["op_time"] > 0].groupby("unit_id", sort=True):
        last = rows.loc[rows["hour_start_utc"].idxmax()]
        later = None
        if following is not None:
            later = following[(following["unit_id"] == unit) & (following["op_time"] > 0)]
        for parameter in SUBSTITUTED_PARAMETERS:
            if not str(last[f"{parameter}_method"]).startswith("sub_"):
                continue
            value, status = PARAMETERS[parameter]
            closed = later is not None and bool((later[status].eq(STATUS_VALID) & later[value].notna()).any())
            if not closed:
                open_gaps.append(f"{unit}/{parameter}")
    return open_gaps


def _refuse_missing_fuel_flow(hours: pd.DataFrame, units: Mapping[str, CemsUnit], checked: np.ndarray) -> None:
    """An Appendix D unit's operating hour needs a quality-assured fuel flow. App. D §2.4.2 has its own
    missing-data procedure for fuel flowmeters, which is not implemented here (its text was not at hand
    to follow), so such an hour stops the computation rather than taking a made-up value."""
    metered = hours["unit_id"].map(lambda unit: units[unit].appendix_d is not None).to_numpy(dtype=bool)
    missing = checked & metered & np.isnan(hours[FUEL_FLOW_COLUMN].to_numpy(dtype="float64"))
    if missing.any():
        row = hours.iloc[int(np.flatnonzero(missing)[0])]
        raise CemsSchemaError(
            f"cems_hourly_raw: column {FUEL_FLOW_COLUMN!r} value None: Appendix D unit {row['unit_id']} operated in "
            f"the hour {row['hour_start_lst']:%Y-%m-%d %H:%M} LST ({row['source_ref']}) without a quality-assured "
            f"fuel flow ({int(missing.sum())} such hour(s)); App. D §2.4.2 fuel-flowmeter substitution is not "
            "implemented: have the DAHS report its substituted fuel flow for these hours"
        )


def compute_hourly_emissions(
    raw: pd.DataFrame,
    units: Mapping[str, CemsUnit],
    history: pd.DataFrame | None = None,
    following: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per unit-hour of `raw` with substituted values, rates, masses, methods and PMA.

    `raw`, `history` and `following` are `cems_hourly_raw` frames (see schema.validate_raw_frame).
    `history` supplies the look-back (PMA over 8,760 operating hours, 720/2,160-hour substitution
    windows); a raw hour also present in history wins. `following` holds hours after `raw`: a gap
    running to the end of `raw` is closed by its hour after (and its whole length counted) instead
    of being filled from the hour before alone. Neither's hours are returned; PMA and look-backs
    only ever use earlier hours. Output columns: schema.EMISSIONS_COLUMNS.
    """
    unknown = sorted(set(raw["unit_id"]) - set(units))
    if unknown:
        raise CemsSchemaError(f"cems_hourly_raw: column 'unit_id' value {unknown[0]!r}: no CemsUnit configured")
    if raw.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in EMISSIONS_DTYPES.items()})
    hours, unit_code, current = _ordered(raw, history, following)
    filled = substitute_units(hours, dict(units), unit_code)
    op_time = hours["op_time"].to_numpy()
    operating = op_time > 0
    filled[FUEL_FLOW_COLUMN] = hours[FUEL_FLOW_COLUMN].to_numpy(dtype="float64")
    _refuse_missing_fuel_flow(hours, units, operating & current)
    rate_columns = ("heat_input_mmbtu_hr", "so2_lb_hr", "co2_tons_hr", "nox_rate_lb_mmbtu", "moisture_pct")
    rates = {name: np.full(len(hours), np.nan) for name in rate_columns}
    bounds = np.flatnonzero(np.concatenate([[True], unit_code[1:] != unit_code[:-1], [True]]))
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        unit = units[hours["unit_id"].iat[start]]
        piece = unit_rates({k: v[start:end] for k, v in filled.items() if not k.endswith("_method")}, unit)
        for name in rate_columns:
            rates[name][start:end] = piece[name]

    def mass(rate):
        return np.where(operating, eq.hourly_mass(rate, op_time), 0.0)

    # a warehouse may hand back microsecond timestamps or string dtypes: return the contract's dtypes
    out = {
        column: hours[column].astype(EMISSIONS_DTYPES[column], copy=False).array
        for column in ("unit_id", "hour_start_utc", "hour_start_lst", "source", "source_ref")
    }
    out["op_time"], out["gross_load_mw"] = op_time, hours["gross_load_mw"].to_numpy()
    for column in ("so2_ppm", "co2_pct", "o2_pct", "nox_ppm", "stack_flow_scfh"):
        out[column] = filled[column]
    for name in rate_columns:
        out[name] = np.where(operating, rates[name], np.nan)
    out["so2_mass_lb"] = mass(rates["so2_lb_hr"])
    out["co2_mass_tons"] = mass(rates["co2_tons_hr"])
    out["heat_input_mmbtu"] = mass(rates["heat_input_mmbtu_hr"])
    out["nox_mass_lb"] = mass(eq.nox_lb_hr(rates["nox_rate_lb_mmbtu"], rates["heat_input_mmbtu_hr"]))
    out.update({k: v for k, v in filled.items() if k.endswith("_method") or k.startswith("pma_")})
    # copy=False: pandas keeps each array as its own block instead of copying them into one
    result = pd.DataFrame({column: out[column] for column in EMISSIONS_COLUMNS}, copy=False)
    if not current.all():
        result = result[current].reset_index(drop=True)
    return result
