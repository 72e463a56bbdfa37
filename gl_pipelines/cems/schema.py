"""The CEMS table contracts: `cems_hourly_raw` (what monitors reported) and `cems_hourly_emissions`.

Every input (DAHS file, PLC register block, EPA bulk file) is normalized to `cems_hourly_raw` before
any Part 75 arithmetic runs, so one validator guards all of them. Part 75 hours are clock hours in
local standard time (no daylight saving), so each row carries both that hour and its UTC instant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STATUS_VALID = "valid"
STATUS_MISSING = "missing"
STATUS_CALIBRATION_FAILED = "calibration_failed"
STATUS_OUT_OF_CONTROL = "out_of_control"
STATUSES = frozenset({STATUS_VALID, STATUS_MISSING, STATUS_CALIBRATION_FAILED, STATUS_OUT_OF_CONTROL})

# parameter -> (value column, status column); the value is only usable when the status is "valid".
PARAMETERS: dict[str, tuple[str, str]] = {
    "so2": ("so2_ppm", "so2_status"),
    "co2": ("co2_pct", "co2_status"),
    "o2": ("o2_pct", "o2_status"),
    "nox": ("nox_ppm", "nox_status"),
    "flow": ("stack_flow_scfh", "flow_status"),
    "moisture": ("moisture_pct", "moisture_status"),
}

KEY_COLUMNS = ["unit_id", "hour_start_utc"]
MONITOR_VALUE_COLUMNS = [
    "op_time",
    "gross_load_mw",
    "stack_flow_scfh",
    "co2_pct",
    "o2_pct",
    "so2_ppm",
    "nox_ppm",
    "nox_rate_lb_mmbtu",
    "moisture_pct",
]
FUEL_FLOW_COLUMN = "fuel_flow"
"""Appendix D fuel flow of the hour: 100 scf/hr (gas) or lb/hr (oil). It has no status column: only a
quality-assured reading is stored, so NaN means the hour has none (or the unit is not fuel-metered)."""
VALUE_COLUMNS = [*MONITOR_VALUE_COLUMNS, FUEL_FLOW_COLUMN]
STATUS_COLUMNS = [status for _, status in PARAMETERS.values()]

RAW_DTYPES: dict[str, str] = {
    "unit_id": "object",
    "hour_start_utc": "datetime64[ns, UTC]",
    "hour_start_lst": "datetime64[ns]",
    **dict.fromkeys(MONITOR_VALUE_COLUMNS, "float64"),
    **dict.fromkeys(STATUS_COLUMNS, "object"),
    "source": "object",
    "source_ref": "object",
    # last, so a warehouse table from before it gains it with a plain ALTER TABLE ... ADD COLUMN
    FUEL_FLOW_COLUMN: "float64",
}
RAW_COLUMNS = list(RAW_DTYPES)

# Physical bounds a reading must respect whatever the unit; site spans are checked downstream.
_BOUNDS: dict[str, tuple[float, float | None]] = {
    "op_time": (0.0, 1.0),
    "gross_load_mw": (0.0, None),
    "stack_flow_scfh": (0.0, None),
    "co2_pct": (0.0, 100.0),
    "o2_pct": (0.0, 100.0),
    "so2_ppm": (0.0, None),
    "nox_ppm": (0.0, None),
    "nox_rate_lb_mmbtu": (0.0, None),
    "moisture_pct": (0.0, 100.0),
    FUEL_FLOW_COLUMN: (0.0, None),
}

METHOD_MEASURED = "measured"
# Parameters that get a `<param>_method` and `pma_<param>` column in the emissions output.
SUBSTITUTED_PARAMETERS = ["so2", "co2", "o2", "nox", "flow", "moisture"]

EMISSIONS_DTYPES: dict[str, str] = {
    "unit_id": "object",
    "hour_start_utc": "datetime64[ns, UTC]",
    "hour_start_lst": "datetime64[ns]",
    "op_time": "float64",
    "gross_load_mw": "float64",
    # values after substitution, the ones the equations used
    "so2_ppm": "float64",
    "co2_pct": "float64",
    "o2_pct": "float64",
    "nox_ppm": "float64",
    "stack_flow_scfh": "float64",
    "moisture_pct": "float64",
    # rates (per operating hour) and hourly masses (rate x operating time)
    "so2_lb_hr": "float64",
    "so2_mass_lb": "float64",
    "co2_tons_hr": "float64",
    "co2_mass_tons": "float64",
    "heat_input_mmbtu_hr": "float64",
    "heat_input_mmbtu": "float64",
    "nox_rate_lb_mmbtu": "float64",
    "nox_mass_lb": "float64",
    **{f"{p}_method": "object" for p in SUBSTITUTED_PARAMETERS},
    **{f"pma_{p}": "float64" for p in SUBSTITUTED_PARAMETERS},
    "source": "object",
    "source_ref": "object",
}
EMISSIONS_COLUMNS = list(EMISSIONS_DTYPES)


class CemsSchemaError(ValueError):
    """A CEMS frame that breaks its contract; the message names origin, column, value and row."""


def empty_raw_frame() -> pd.DataFrame:
    """A zero-row `cems_hourly_raw` frame with the contract's dtypes."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in RAW_DTYPES.items()})


def _where(df: pd.DataFrame, mask: pd.Series) -> tuple[object, str]:
    """First offending row: its position label and, when present, its source_ref."""
    index = mask[mask].index[0]
    ref = df.at[index, "source_ref"] if "source_ref" in df.columns else None
    return index, f" (row {index}{', ' + str(ref) if ref is not None and ref == ref else ''})"


def _fail(origin: str, column: str, value: object, problem: str, where: str = "") -> CemsSchemaError:
    if isinstance(value, np.generic):
        value = value.item()
    return CemsSchemaError(f"{origin}: column {column!r} value {value!r}: {problem}{where}")


def _check_strings(df: pd.DataFrame, origin: str, column: str) -> None:
    series = df[column]
    bad = series.isna() | ~series.map(lambda v: isinstance(v, str) and v.strip() != "")
    if bad.any():
        index, where = _where(df, bad)
        raise _fail(origin, column, series[index], "must be a non-empty string", where)


def _check_times(df: pd.DataFrame, origin: str) -> pd.DataFrame:
    utc, lst = df["hour_start_utc"], df["hour_start_lst"]
    if not isinstance(utc.dtype, pd.DatetimeTZDtype):
        raise _fail(origin, "hour_start_utc", str(utc.dtype), "must be timezone-aware (UTC)")
    if isinstance(lst.dtype, pd.DatetimeTZDtype) or not pd.api.types.is_datetime64_dtype(lst):
        raise _fail(origin, "hour_start_lst", str(lst.dtype), "must be naive datetimes in local standard time")
    utc = utc.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    lst = lst.astype("datetime64[ns]")
    for column, series in (("hour_start_utc", utc), ("hour_start_lst", lst)):
        bad = series.isna() | (series != series.dt.floor("h"))
        if bad.any():
            index, where = _where(df, bad)
            raise _fail(origin, column, series[index], "must be a whole hour (hour-beginning)", where)
    # Standard time has one fixed offset per unit; a DST shift or a wrong zone shows up here.
    offset = lst - utc.dt.tz_localize(None)
    per_unit = offset.groupby(df["unit_id"]).transform("first")
    bad = offset != per_unit
    if bad.any():
        index, where = _where(df, bad)
        raise _fail(
            origin,
            "hour_start_lst",
            lst[index],
            f"offset from UTC {offset[index]} differs from the unit's {per_unit[index]} (daylight time?)",
            where,
        )
    return df.assign(hour_start_utc=utc, hour_start_lst=lst)


def validate_raw_frame(df: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Check a frame against `cems_hourly_raw` and return it with the contract's column order and dtypes.

    Raises CemsSchemaError naming `origin` (file, register block...), the column, the value and the row
    (with its source_ref) of the first problem found. The input frame is not modified. `fuel_flow` may
    be left out (only Appendix D units meter fuel): it is then NaN.
    """
    if FUEL_FLOW_COLUMN not in df.columns:
        df = df.assign(**{FUEL_FLOW_COLUMN: np.nan})
    missing = [column for column in RAW_COLUMNS if column not in df.columns]
    if missing:
        raise _fail(origin, missing[0], None, f"column missing (all missing: {missing})")
    extra = [column for column in df.columns if column not in RAW_DTYPES]
    if extra:
        raise _fail(origin, extra[0], None, f"column not in cems_hourly_raw (all extra: {extra})")
    df = df[RAW_COLUMNS].copy()
    for column in ("unit_id", "source", "source_ref"):
        _check_strings(df, origin, column)
    df = _check_times(df, origin)
    for column in VALUE_COLUMNS:
        numeric = pd.to_numeric(df[column], errors="coerce").astype("float64")
        bad = numeric.isna() & df[column].notna()
        if bad.any():
            index, where = _where(df, bad)
            raise _fail(origin, column, df.at[index, column], "not a number", where)
        low, high = _BOUNDS[column]
        bad = (numeric < low) | (numeric > high if high is not None else False)
        if bad.any():
            index, where = _where(df, bad)
            raise _fail(
                origin, column, numeric[index], f"outside [{low}, {high if high is not None else 'inf'}]", where
            )
        df[column] = numeric
    if df["op_time"].isna().any():
        index, where = _where(df, df["op_time"].isna())
        raise _fail(origin, "op_time", None, "operating time is required", where)
    for value_column, status_column in PARAMETERS.values():
        status = df[status_column]
        bad = ~status.isin(STATUSES)
        if bad.any():
            index, where = _where(df, bad)
            raise _fail(origin, status_column, status[index], f"must be one of {sorted(STATUSES)}", where)
        present = df[value_column].notna()
        if status_column == "nox_status":  # a NOx monitor reports ppm, lb/mmBtu, or both
            present |= df["nox_rate_lb_mmbtu"].notna()
        bad = status.eq(STATUS_VALID) & ~present
        if bad.any():
            index, where = _where(df, bad)
            raise _fail(origin, value_column, None, f"{status_column} is 'valid' but the value is empty", where)
    duplicated = df.duplicated(KEY_COLUMNS, keep=False)
    if duplicated.any():
        index, where = _where(df, duplicated)
        raise _fail(origin, "hour_start_utc", df.at[index, "hour_start_utc"], "duplicated unit-hour", where)
    return df.astype(RAW_DTYPES)
