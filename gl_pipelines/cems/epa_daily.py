"""EPA daily emissions files (AMPD `DLY_<year><state>Q<n>.csv` and CAMPD daily downloads), normalized.

The daily files are the only unit-level EPA data before 1997-ish that most users can get, and the
quickest way to check a state's annual totals. Masses in them are short TONS (the hourly files give
SO2 and NOx in lb). Both namings are read, .csv or .zip, through the same checks as the hourly
importer (`epa_campd.read_table`): every figure's column required, numbers clean, rows complete;
a malformed file raises EpaFileError naming file, line, column and value, and nothing is returned.
Days are local standard time; `epa_campd.coverage(daily, time_column="day_lst", step="D")` reports
the days a unit's quarter or year lacks.

CAMPD daily column names are today's download's, taken from EPA's own code (no real CAMPD daily file is
stored here): US-EPA-CAMD/easey-emissions-api `src/constants/field-mappings.ts` (`daily`, commit 60a7334,
2024-10-16) with the labels of US-EPA-CAMD/easey-common `src/constants/property-metadata.constants.ts`
(commit 32a1996): State, Facility Name, Facility ID, Unit ID, Associated Stacks, Date, Operating Time
Count, Sum of the Operating Time, Gross Load (MWh), Steam Load (1000 lb), SO2 Mass (short tons), SO2 Rate
(lbs/mmBtu), CO2 Mass (short tons), CO2 Rate (short tons/mmBtu), NOx Mass (short tons), NOx Rate
(lbs/mmBtu), Heat Input (mmBtu), then unit attributes (fuel types, unit type, controls, program code)
that are not read. Columns are matched by name, so their order does not matter.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gl_pipelines.cems.epa_campd import HOURLY_PERIOD_COLUMNS as PERIOD_COLUMNS
from gl_pipelines.cems.epa_campd import EpaFormat, read_files, read_table

_KEYS = ("state", "facility_id", "unit_id", "date", "op_hours", "op_hour_count")
NUMERIC_COLUMNS = [
    "op_hours",
    "op_hour_count",
    "gross_load_mwh",
    "steam_load_klb",
    "so2_mass_tons",
    "so2_rate_lb_mmbtu",
    "nox_rate_lb_mmbtu",
    "nox_mass_tons",
    "co2_mass_tons",
    "co2_rate_tons_mmbtu",
    "heat_input_mmbtu",
]
_FIGURES = tuple(c for c in NUMERIC_COLUMNS if c not in ("op_hours", "op_hour_count", "steam_load_klb"))
DLY = EpaFormat(
    "ampd_daily",
    "SUM_OP_TIME",
    {
        "STATE": "state",
        "FACILITY_NAME": "facility_name",
        "ORISPL_CODE": "facility_id",
        "UNITID": "unit_id",
        "OP_DATE": "date",
        "SUM_OP_TIME": "op_hours",
        "COUNT_OP_TIME": "op_hour_count",
        "GLOAD": "gross_load_mwh",
        "SLOAD": "steam_load_klb",
        "SO2_MASS": "so2_mass_tons",
        "SO2_RATE": "so2_rate_lb_mmbtu",
        "NOX_RATE": "nox_rate_lb_mmbtu",
        "NOX_MASS": "nox_mass_tons",
        "CO2_MASS": "co2_mass_tons",
        "CO2_RATE": "co2_rate_tons_mmbtu",
        "HEAT_INPUT": "heat_input_mmbtu",
    },
    (*_KEYS, *_FIGURES),
    NUMERIC_COLUMNS,
    "%m-%d-%Y",
)
CAMPD_DAILY = EpaFormat(
    "campd_daily",
    "Sum of the Operating Time",
    {
        "State": "state",
        "Facility Name": "facility_name",
        "Facility ID": "facility_id",
        "Unit ID": "unit_id",
        "Date": "date",
        "Sum of the Operating Time": "op_hours",
        "Operating Time Count": "op_hour_count",
        "Gross Load (MWh)": "gross_load_mwh",
        "Steam Load (1000 lb)": "steam_load_klb",
        "SO2 Mass (short tons)": "so2_mass_tons",
        "SO2 Rate (lbs/mmBtu)": "so2_rate_lb_mmbtu",
        "NOx Rate (lbs/mmBtu)": "nox_rate_lb_mmbtu",
        "NOx Mass (short tons)": "nox_mass_tons",
        "CO2 Mass (short tons)": "co2_mass_tons",
        "CO2 Rate (short tons/mmBtu)": "co2_rate_tons_mmbtu",
        "Heat Input (mmBtu)": "heat_input_mmbtu",
    },
    (*_KEYS, *_FIGURES),
    NUMERIC_COLUMNS,
    "%Y-%m-%d",
)
HOURLY_MARKERS = {
    "OP_HOUR": "an EPA hourly file (AMPD naming): read it with read_epa_hourly (cems.epa_folder)",
    "Hour": "an EPA hourly file (CAMPD naming): read it with read_epa_hourly (cems.epa_folder)",
}
EPA_DAILY_COLUMNS = [
    "state",
    "facility_name",
    "facility_id",
    "unit_id",
    "day_lst",
    *NUMERIC_COLUMNS,
    "source",
    "source_ref",
]


def _parse(origin: str, payload: bytes) -> pd.DataFrame:
    parsed = read_table(origin, payload, (DLY, CAMPD_DAILY), HOURLY_MARKERS)
    frame = parsed.frame
    hours, count = frame["op_hours"], frame["op_hour_count"]
    parsed.first(hours.isna() | (hours > 24), "op_hours", None, "operating hours must be 0..24")
    count_bad = count.isna() | (count > 24) | (count % 1 != 0) | (hours > count)
    parsed.first(count_bad, "op_hour_count", None, "must be whole hours 0..24, >= op hours")
    day = pd.to_datetime(frame["date"], format=parsed.format.date_format, errors="coerce")
    parsed.first(day.isna(), "date", frame["date"], "not a valid date")
    facility = pd.to_numeric(frame["facility_id"], errors="coerce")
    parsed.first(facility.isna() | (facility % 1 != 0), "facility_id", frame["facility_id"], "not an id")
    frame["facility_id"] = facility.astype("int64")
    frame["day_lst"] = day.astype("datetime64[ns]")
    if "facility_name" not in frame:
        frame["facility_name"] = ""
    frame["source"] = "epa_" + parsed.format.name
    frame["source_ref"] = origin + ":" + parsed.lines.astype(str)
    duplicated = frame.duplicated(["facility_id", "unit_id", "day_lst"], keep="first")
    parsed.first(duplicated, "date", frame["date"], "duplicated unit-day")
    return frame[EPA_DAILY_COLUMNS]


def read_epa_daily(paths: str | Path | list[str | Path]) -> pd.DataFrame:
    """Read EPA daily files (.csv or .zip, either naming) into one frame with EPA_DAILY_COLUMNS, sorted
    by facility, unit and day. A unit-day read twice (the same day in two files) is refused."""
    return read_files(paths, _parse, "day_lst", "day", "date")


def daily_period_totals(daily: pd.DataFrame, period: str = "quarter") -> pd.DataFrame:
    """Per unit and calendar quarter (or year, or day) of local standard time: the plain sums of the
    days, so a report reconciles with the file to the last printed digit."""
    freq = {"day": "D", "quarter": "Q", "year": "Y"}[period]
    keyed = daily.assign(period_start_lst=daily["day_lst"].dt.to_period(freq).dt.start_time)
    grouped = keyed.groupby(["facility_id", "unit_id", "period_start_lst"], sort=True)
    sums = ["op_hours", "gross_load_mwh", "heat_input_mmbtu", "so2_mass_tons", "nox_mass_tons", "co2_mass_tons"]
    return grouped[sums].sum(min_count=0).reset_index()[PERIOD_COLUMNS]
