"""DAHS hourly export files: the layout our DAHS vendor writes, and a strict parser to `cems_hourly_raw`.

One CSV file (UTF-8, comma separated, one header line) holds hourly records of one or more units,
in order of hour within each unit. Columns, in this order:

| column | meaning |
| --- | --- |
| UNIT_ID | unit id as configured (`cems.units[].unit_id`) |
| OP_DATE, OP_HOUR | the hour in local standard time: date `YYYY-MM-DD`, hour-beginning 0-23 |
| HOUR_START_UTC | the same hour start in UTC, ISO 8601 (`2026-11-01T06:00:00Z`) |
| OP_TIME | operating time, fraction of the hour 0-1 |
| GLOAD_MW | gross load, MW |
| FLOW_SCFH, FLOW_MDC | stack flow, scfh (wet), and its monitor data code |
| CO2_PCT, CO2_MDC | CO2 %, basis as configured for the unit |
| O2_PCT, O2_MDC | O2 % |
| SO2_PPM, SO2_MDC | SO2 ppm |
| NOX_PPM, NOX_LB_MMBTU, NOX_MDC | NOx ppm and/or NOx rate lb/mmBtu; one code for both |
| H2O_PCT, H2O_MDC | stack moisture % |
| FUEL_FLOW, FUEL_FLOW_MDC | optional pair, last: fuel flow of an Appendix D unit, 100 scf/hr (gas) or lb/hr (oil) |

Monitor data codes: `V` valid, `M` missing, `C` failed calibration, `O` out of control. A valid
value must be present; any other code may leave it blank. A fuel flow is kept only when its code is
`V` (the raw table stores quality-assured fuel flow, NaN otherwise). Anything else (another header, a wrong
column count, a non-number, an unknown code, a UTC hour that is not the LST hour, a repeated or
out-of-order unit-hour, an hour before 1990 or more than a day in the future, no data rows) rejects
the whole file with its name, line and column. Errors quote at most a short, printable excerpt of
the bad value and of the file name: either may come from anywhere.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from gl_pipelines.cems.schema import (
    FUEL_FLOW_COLUMN,
    STATUS_CALIBRATION_FAILED,
    STATUS_MISSING,
    STATUS_OUT_OF_CONTROL,
    STATUS_VALID,
    CemsSchemaError,
    validate_raw_frame,
)
from gl_pipelines.scrub import excerpt, printable

DAHS_COLUMNS = (
    "UNIT_ID",
    "OP_DATE",
    "OP_HOUR",
    "HOUR_START_UTC",
    "OP_TIME",
    "GLOAD_MW",
    "FLOW_SCFH",
    "FLOW_MDC",
    "CO2_PCT",
    "CO2_MDC",
    "O2_PCT",
    "O2_MDC",
    "SO2_PPM",
    "SO2_MDC",
    "NOX_PPM",
    "NOX_LB_MMBTU",
    "NOX_MDC",
    "H2O_PCT",
    "H2O_MDC",
)
FUEL_FLOW_COLUMNS = ("FUEL_FLOW", "FUEL_FLOW_MDC")
"""Appended by a DAHS that meters fuel (Appendix D units); a file without them has no fuel flow."""
MDC_TO_STATUS = {
    "V": STATUS_VALID,
    "M": STATUS_MISSING,
    "C": STATUS_CALIBRATION_FAILED,
    "O": STATUS_OUT_OF_CONTROL,
}
STATUS_TO_MDC = {status: code for code, status in MDC_TO_STATUS.items()}
# parameter -> (value columns in the file, code column, raw value columns, raw status column)
DAHS_PARAMETERS = {
    "flow": (("FLOW_SCFH",), "FLOW_MDC", ("stack_flow_scfh",), "flow_status"),
    "co2": (("CO2_PCT",), "CO2_MDC", ("co2_pct",), "co2_status"),
    "o2": (("O2_PCT",), "O2_MDC", ("o2_pct",), "o2_status"),
    "so2": (("SO2_PPM",), "SO2_MDC", ("so2_ppm",), "so2_status"),
    "nox": (("NOX_PPM", "NOX_LB_MMBTU"), "NOX_MDC", ("nox_ppm", "nox_rate_lb_mmbtu"), "nox_status"),
    "moisture": (("H2O_PCT",), "H2O_MDC", ("moisture_pct",), "moisture_status"),
}
DAHS_SOURCE = "dahs"
EARLIEST_HOUR_UTC = datetime(1990, 1, 1, tzinfo=UTC)
"""Part 75 monitoring began in the 1990s; an earlier hour is a typo, not history."""
MAX_HOURS_AHEAD = timedelta(days=1)
"""A DAHS exports completed hours; an hour further ahead than clock skew explains is refused (a file
with hours up to the year 2256 took a 64.7 s tick and 4.6 GB before it was refused)."""


class DahsFormatError(ValueError):
    """A DAHS file that cannot be loaded; names the file, the line (1 = header) and the column."""

    def __init__(self, file: str, line: int, column: str | None, value: object, problem: str) -> None:
        self.file, self.line, self.column, self.value, self.problem = file, line, column, value, problem
        where = f"{printable(file)}, line {line}" + (f", column {printable(column, 40)}" if column else "")
        shown = f"{excerpt(value)} " if value is not None else ""
        super().__init__(f"{where}: {shown}{problem}")


def _number(text: str, file: str, line: int, column: str, required: bool) -> float:
    if text == "":
        if required:
            raise DahsFormatError(file, line, column, text, "value required")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise DahsFormatError(file, line, column, text, "not a number") from None
    if not math.isfinite(value):
        raise DahsFormatError(file, line, column, text, "not a finite number")
    return value


def _hour_start(row: dict[str, str], file: str, line: int, lst_offset: timedelta) -> tuple[datetime, datetime]:
    """(UTC hour start, LST hour start as a naive datetime), checked against each other."""
    try:
        day = datetime.strptime(row["OP_DATE"], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise DahsFormatError(file, line, "OP_DATE", row["OP_DATE"], "not a date YYYY-MM-DD") from None
    text = row["OP_HOUR"]
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise DahsFormatError(file, line, "OP_HOUR", text, "not an hour 0-23")
    lst = (day + timedelta(hours=int(text))).replace(tzinfo=None)  # Part 75 keeps LST as a wall clock
    try:
        utc = datetime.fromisoformat(row["HOUR_START_UTC"].replace("Z", "+00:00"))
    except ValueError:
        raise DahsFormatError(file, line, "HOUR_START_UTC", row["HOUR_START_UTC"], "not an ISO 8601 time") from None
    if utc.tzinfo is None:
        raise DahsFormatError(file, line, "HOUR_START_UTC", row["HOUR_START_UTC"], "has no UTC offset")
    utc = utc.astimezone(UTC)
    latest = datetime.now(UTC) + MAX_HOURS_AHEAD
    if not EARLIEST_HOUR_UTC <= utc <= latest:
        raise DahsFormatError(
            file,
            line,
            "HOUR_START_UTC",
            row["HOUR_START_UTC"],
            f"implausible hour: outside {EARLIEST_HOUR_UTC:%Y-%m-%d} .. {latest:%Y-%m-%d %H:%M}Z (now + 1 day)",
        )
    if utc.replace(tzinfo=None) + lst_offset != lst:
        raise DahsFormatError(
            file,
            line,
            "HOUR_START_UTC",
            row["HOUR_START_UTC"],
            f"is not OP_DATE {row['OP_DATE']} OP_HOUR {text} in local standard time (UTC{_offset_text(lst_offset)})",
        )
    return utc, lst


def _offset_text(offset: timedelta) -> str:
    hours = offset.total_seconds() / 3600
    return f"{hours:+g}"


def parse_dahs_csv(
    data: bytes,
    file: str,
    lst_offset_hours: float,
    units: Collection[str] | None = None,
    source: str = DAHS_SOURCE,
) -> pd.DataFrame:
    """A whole DAHS file -> a validated `cems_hourly_raw` frame, or DahsFormatError; never part of it.

    `file` names the file in errors and in each row's `source_ref` (`file:line`); `lst_offset_hours`
    is the plant's local standard time offset from UTC (e.g. -6); `units`, when given, the unit ids
    the file may contain.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DahsFormatError(file, line, None, None, f"not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DahsFormatError(file, 1, None, None, f"not CSV: {exc}") from None
    if header is None:
        raise DahsFormatError(file, 1, None, None, "empty file: no header")
    header = [name.strip() for name in header]
    metered = header[len(DAHS_COLUMNS) : len(DAHS_COLUMNS) + 1] == [FUEL_FLOW_COLUMNS[0]]
    columns = DAHS_COLUMNS + FUEL_FLOW_COLUMNS if metered else DAHS_COLUMNS
    if tuple(header) != columns:
        for position, expected in enumerate(columns):
            got = header[position] if position < len(header) else None
            if got != expected:
                raise DahsFormatError(
                    file, 1, f"#{position + 1}", got, f"bad header: expected {expected!r} ({len(columns)} columns)"
                )
        raise DahsFormatError(file, 1, f"#{len(columns) + 1}", header[len(columns)], "bad header: extra column")
    lst_offset = timedelta(hours=lst_offset_hours)
    records: list[dict[str, object]] = []
    last_hour: dict[str, tuple[datetime, int]] = {}
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue
            if len(fields) != len(columns):
                raise DahsFormatError(file, line, None, None, f"{len(fields)} columns, the header has {len(columns)}")
            row = dict(zip(columns, (field.strip() for field in fields), strict=True))
            records.append(_record(row, file, line, lst_offset, units, last_hour, source))
    except csv.Error as exc:
        raise DahsFormatError(file, reader.line_num, None, None, f"not CSV: {exc}") from None
    if not records:
        raise DahsFormatError(file, 2, None, None, "no data rows after the header")
    frame = pd.DataFrame.from_records(records)
    frame["hour_start_utc"] = pd.to_datetime(frame["hour_start_utc"], utc=True)
    frame["hour_start_lst"] = pd.to_datetime(frame["hour_start_lst"])
    try:
        return validate_raw_frame(frame, file)
    except CemsSchemaError as exc:
        ref = next((r for r in frame["source_ref"] if r in str(exc)), None)
        line = int(ref.rsplit(":", 1)[1]) if ref else 0
        raise DahsFormatError(file, line, None, None, str(exc)) from None


def _record(
    row: dict[str, str],
    file: str,
    line: int,
    lst_offset: timedelta,
    units: Collection[str] | None,
    last_hour: dict[str, tuple[datetime, int]],
    source: str,
) -> dict[str, object]:
    unit = row["UNIT_ID"]
    if not unit:
        raise DahsFormatError(file, line, "UNIT_ID", unit, "value required")
    if units is not None and unit not in units:
        raise DahsFormatError(file, line, "UNIT_ID", unit, f"not a configured unit ({', '.join(sorted(units))})")
    utc, lst = _hour_start(row, file, line, lst_offset)
    previous = last_hour.get(unit)
    if previous is not None:
        hour, previous_line = previous
        if utc == hour:
            raise DahsFormatError(
                file,
                line,
                "HOUR_START_UTC",
                row["HOUR_START_UTC"],
                f"duplicate unit-hour for {unit} (line {previous_line})",
            )
        if utc < hour:
            raise DahsFormatError(
                file,
                line,
                "HOUR_START_UTC",
                row["HOUR_START_UTC"],
                f"out of order for {unit}: after {hour.isoformat()} (line {previous_line})",
            )
    last_hour[unit] = (utc, line)
    record: dict[str, object] = {
        "unit_id": unit,
        "hour_start_utc": utc,
        "hour_start_lst": lst,
        "op_time": _number(row["OP_TIME"], file, line, "OP_TIME", required=True),
        "gross_load_mw": _number(row["GLOAD_MW"], file, line, "GLOAD_MW", required=False),
    }
    for file_columns, code_column, raw_columns, status_column in DAHS_PARAMETERS.values():
        code = _code(row, code_column, file, line)
        valid = code == "V"
        values = [_number(row[c], file, line, c, required=False) for c in file_columns]
        if valid and all(math.isnan(v) for v in values):
            raise DahsFormatError(file, line, file_columns[0], "", f"value required when {code_column} is V")
        record.update(zip(raw_columns, values, strict=True))
        record[status_column] = MDC_TO_STATUS[code]
    record[FUEL_FLOW_COLUMN] = _fuel_flow(row, file, line) if FUEL_FLOW_COLUMNS[0] in row else math.nan
    record["source"] = source
    record["source_ref"] = f"{file}:{line}"
    return record


def _code(row: dict[str, str], column: str, file: str, line: int) -> str:
    code = row[column]
    if code not in MDC_TO_STATUS:
        raise DahsFormatError(file, line, column, code, f"unknown monitor data code (one of {'/'.join(MDC_TO_STATUS)})")
    return code


def _fuel_flow(row: dict[str, str], file: str, line: int) -> float:
    """The hour's fuel flow when quality-assured (code V); NaN for M/C/O, whatever number stands beside it."""
    value_column, code_column = FUEL_FLOW_COLUMNS
    valid = _code(row, code_column, file, line) == "V"
    value = _number(row[value_column], file, line, value_column, required=valid)
    return value if valid else math.nan


def parse_dahs_file(
    path: str | Path, lst_offset_hours: float, units: Collection[str] | None = None, name: str | None = None
) -> pd.DataFrame:
    """`parse_dahs_csv` on a file; `name` (default: the file name) is what errors and source_ref show."""
    path = Path(path)
    return parse_dahs_csv(path.read_bytes(), name or path.name, lst_offset_hours, units)
