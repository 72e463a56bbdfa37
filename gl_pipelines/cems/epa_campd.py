"""EPA hourly emissions bulk files (AMPD and CAMPD namings), normalized to one frame.

A user loads EPA's published hours for their units to compare with their own computation. Both column
namings are read: the older AMPD FTP files (`OP_DATE`, `OP_HOUR`, `SO2_MASS (lbs)`, `*_MEASURE_FLG`)
and the newer CAMPD downloads (`Date`, `Hour`, `SO2 Mass (lbs)`, `* Measure Indicator`), as .csv or
as .zip archives of CSVs. The CAMPD names are EPA's own labels (US-EPA-CAMD/easey-common
`property-metadata.constants.ts`, commit 32a1996; the hourly field mapping of easey-emissions-api at
60a7334 includes `Heat Input Measure Indicator`); columns are matched by name, others are ignored.
Hours in the files are local standard time; the UTC instant uses the state's standard offset unless
the caller gives a per-facility one. A malformed file raises EpaFileError naming the file, the line and
the column, and nothing from it is returned: every column a published figure depends on must be in the
header, every number must be a clean decimal (a NUL byte, stray bytes or a word where a number belongs
is refused, never read as a shorter number or a null), and every row must have as many fields as the
header. `coverage` reports the hours a unit's quarter or year lacks, which is how a file cut at a line boundary shows.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gl_pipelines.cems.schema import SUBSTITUTED_PARAMETERS

# Standard-time UTC offset (hours) of each state's main time zone. States split between zones are
# listed under the zone most of their units are in; pass facility_utc_offsets for the others (for
# example the Rathdrum plants in northern Idaho, which keep Pacific time).
_EASTERN = ("CT", "DC", "DE", "FL", "GA", "IN", "KY", "MA", "MD", "ME", "MI")
_EASTERN += ("NC", "NH", "NJ", "NY", "OH", "PA", "RI", "SC", "VA", "VT", "WV")
_CENTRAL = ("AL", "AR", "IA", "IL", "KS", "LA", "MN", "MO", "MS", "ND", "NE", "OK", "SD", "TN", "TX", "WI")
STATE_STANDARD_UTC_OFFSET: dict[str, int] = {
    **dict.fromkeys(_EASTERN, -5),
    **dict.fromkeys(_CENTRAL, -6),
    **dict.fromkeys(("AZ", "CO", "ID", "MT", "NM", "UT", "WY"), -7),
    **dict.fromkeys(("CA", "NV", "OR", "WA"), -8),
    "AK": -9,
    "HI": -10,
    "PR": -4,
}

# Published measure indicator -> our method flag ("sub_" prefix = a substituted hour, as in emissions).
MEASURE_INDICATOR_METHODS: dict[str, str | None] = {
    "": None,
    "Measured": "measured",
    "Calculated": "calculated",
    "Substitute": "sub_epa_substitute",
    "Measured and Substitute": "sub_epa_measured_and_substitute",
    "LME": "lme",
    "Other": "other",
}

_OLD = {
    "STATE": "state",
    "FACILITY_NAME": "facility_name",
    "ORISPL_CODE": "facility_id",
    "UNITID": "unit_id",
    "OP_DATE": "date",
    "OP_HOUR": "hour",
    "OP_TIME": "op_time",
    "GLOAD (MW)": "gross_load_mw",
    "SLOAD (1000lb/hr)": "steam_load_klb_hr",
    "SLOAD (1000lbs)": "steam_load_klb_hr",
    "SLOAD (1000 lbs)": "steam_load_klb_hr",
    "SO2_MASS (lbs)": "so2_mass_lb",
    "SO2_MASS_MEASURE_FLG": "so2_mass_indicator",
    "SO2_RATE (lbs/mmBtu)": "so2_rate_lb_mmbtu",
    "SO2_RATE_MEASURE_FLG": "so2_rate_indicator",
    "NOX_RATE (lbs/mmBtu)": "nox_rate_lb_mmbtu",
    "NOX_RATE_MEASURE_FLG": "nox_rate_indicator",
    "NOX_MASS (lbs)": "nox_mass_lb",
    "NOX_MASS_MEASURE_FLG": "nox_mass_indicator",
    "CO2_MASS (tons)": "co2_mass_tons",
    "CO2_MASS_MEASURE_FLG": "co2_mass_indicator",
    "CO2_RATE (tons/mmBtu)": "co2_rate_tons_mmbtu",
    "CO2_RATE_MEASURE_FLG": "co2_rate_indicator",
    "HEAT_INPUT (mmBtu)": "heat_input_mmbtu",
}
_NEW = {
    "State": "state",
    "Facility Name": "facility_name",
    "Facility ID": "facility_id",
    "Unit ID": "unit_id",
    "Date": "date",
    "Hour": "hour",
    "Operating Time": "op_time",
    "Gross Load (MW)": "gross_load_mw",
    "Steam Load (1000 lb/hr)": "steam_load_klb_hr",
    "SO2 Mass (lbs)": "so2_mass_lb",
    "SO2 Mass Measure Indicator": "so2_mass_indicator",
    "SO2 Rate (lbs/mmBtu)": "so2_rate_lb_mmbtu",
    "SO2 Rate Measure Indicator": "so2_rate_indicator",
    "NOx Rate (lbs/mmBtu)": "nox_rate_lb_mmbtu",
    "NOx Rate Measure Indicator": "nox_rate_indicator",
    "NOx Mass (lbs)": "nox_mass_lb",
    "NOx Mass Measure Indicator": "nox_mass_indicator",
    "CO2 Mass (short tons)": "co2_mass_tons",
    "CO2 Mass Measure Indicator": "co2_mass_indicator",
    "CO2 Rate (short tons/mmBtu)": "co2_rate_tons_mmbtu",
    "CO2 Rate Measure Indicator": "co2_rate_indicator",
    "Heat Input (mmBtu)": "heat_input_mmbtu",
    "Heat Input Measure Indicator": "heat_input_indicator",
}
_DATE_FORMATS = {"old": "%m-%d-%Y", "new": "%Y-%m-%d"}
_REQUIRED_KEYS = ("state", "facility_id", "unit_id", "date", "hour", "op_time")
NUMERIC_COLUMNS = [
    "op_time",
    "gross_load_mw",
    "steam_load_klb_hr",
    "so2_mass_lb",
    "so2_rate_lb_mmbtu",
    "nox_rate_lb_mmbtu",
    "nox_mass_lb",
    "co2_mass_tons",
    "co2_rate_tons_mmbtu",
    "heat_input_mmbtu",
]
# Every published figure the totals, reports and consistency checks use: a file without one of them
# would load as nulls (zero tons) and replace good data, so it is refused instead.
_REQUIRED_FIGURES = (
    *(column for column in NUMERIC_COLUMNS if column not in ("op_time", "steam_load_klb_hr")),
    "so2_mass_indicator",
    "nox_rate_indicator",
    "co2_mass_indicator",
)
INDICATOR_COLUMNS = [
    "so2_mass_indicator",
    "so2_rate_indicator",
    "nox_rate_indicator",
    "nox_mass_indicator",
    "co2_mass_indicator",
    "co2_rate_indicator",
    "heat_input_indicator",
]
EPA_HOURLY_COLUMNS = [
    "state",
    "facility_name",
    "facility_id",
    "unit_id",
    "hour_start_lst",
    "hour_start_utc",
    *NUMERIC_COLUMNS,
    *INDICATOR_COLUMNS,
    "so2_method",
    "co2_method",
    "nox_method",
    "heat_input_method",
    "source",
    "source_ref",
]


class EpaFileError(ValueError):
    """An EPA file that cannot be read as published; names file, line, column and value."""


def _texts(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise EpaFileError(f"{path}: not a readable zip archive ({exc})") from None
        with archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if not members:
                raise EpaFileError(f"{path}: zip archive holds no .csv file")
            for name in members:
                try:
                    yield f"{path.name}:{name}", archive.read(name)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # a cut or corrupt member
                    raise EpaFileError(f"{path}: member {name!r} cannot be read ({exc})") from None
    else:
        yield path.name, path.read_bytes()


def excerpt(value: object, limit: int = 40) -> str:
    """A short, printable quote of a bad value (repr escapes NUL and stray bytes), cut at `limit` chars."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(origin: str, line: int | None, column: str, value: object, problem: str) -> EpaFileError:
    where = f"line {line}, " if line is not None else ""
    return EpaFileError(f"{origin}: {where}column {column!r} value {excerpt(value)}: {problem}")


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class EpaFormat:
    """One published column naming: how to recognise it, what to rename, what must be there."""

    name: str
    marker: str
    mapping: Mapping[str, str]
    required: Sequence[str]
    numeric: Sequence[str]
    date_format: str


@dataclass
class EpaTable:
    """A parsed file: columns renamed to ours (strings, numbers as float64), and where each row came from."""

    origin: str
    format: EpaFormat
    frame: pd.DataFrame
    lines: pd.Series
    source_column: dict[str, str]
    raw: pa.Table
    raw_names: dict[str, str]

    def text(self, column: str) -> pd.Series:
        """The column's values as printed in the file."""
        return self.raw.column(self.raw_names[self.source_column[column]]).to_pandas()

    def fail(self, row, column: str, value: object, problem: str) -> EpaFileError:
        return _fail(self.origin, int(self.lines[row]), self.source_column.get(column, column), value, problem)

    def first(self, bad: pd.Series, column: str, values: pd.Series | None, problem: str) -> None:
        """Raise for the first row flagged in `bad`, quoting its value of `column` (`values`, or as printed
        in the file when None)."""
        if bad.any():
            row = bad[bad].index[0]
            raise self.fail(row, column, (self.text(column) if values is None else values)[row], problem)


def read_table(origin: str, payload: bytes, formats: Sequence[EpaFormat], refuse: Mapping[str, str]) -> EpaTable:
    """Decode, split and check one EPA CSV; `refuse` maps a header marker of another kind of EPA file
    to the reason it is not read here.

    Arrow's CSV reader splits and converts the columns (single-threaded, so a short or long row is
    reported with its line number); a value Arrow cannot take as a float is then located with pandas
    to name its line. Every field is text first: nothing is guessed from the data.
    """
    try:
        payload.decode("utf-8")
        data = payload
    except UnicodeDecodeError:
        data = payload.decode("latin-1").encode("utf-8")  # the AMPD FTP files are latin-1
    data = data.rstrip(b"\r\n\t ") + b"\n"  # trailing blank lines are no rows
    first_line = data.split(b"\n", 1)[0].decode("utf-8")
    header = [column.strip() for column in next(csv.reader([first_line]), [])]
    if not any(header):
        raise EpaFileError(f"{origin}: empty file (no header line)")
    for marker, reason in refuse.items():
        if marker in header:
            raise _fail(origin, 1, marker, marker, reason)
    fmt = next((f for f in formats if f.marker in header), None)
    if fmt is None:
        names = " or ".join(repr(f.marker) for f in formats)
        raise _fail(origin, 1, formats[0].marker, ",".join(header), f"header has none of {names}: not this EPA format")
    missing = [name for column in fmt.required for name in [_header_of(fmt, column, header)] if name not in header]
    if missing:
        raise EpaFileError(
            f"{origin}: line 1, column(s) {', '.join(repr(m) for m in missing)} missing from the header "
            f"(every figure a total or report depends on is required)"
        )
    control = _CONTROL.search(payload)
    if control:
        _raise_control(origin, data.decode("utf-8"), header, control.start(), payload)
    names = [f"{index}:{name}" for index, name in enumerate(header)]  # Arrow needs unique names
    invalid: list = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        arrow = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise EpaFileError(f"{origin}: malformed CSV: {exc}") from None
    if invalid:
        row = invalid[0]
        raise EpaFileError(
            f"{origin}: line {row.number}: {row.actual_columns} fields where the header has {row.expected_columns} "
            f"(a broken row or a file cut short): {excerpt(row.text)}"
        )
    columns = {}
    for name, header_name in zip(names, header, strict=True):
        ours = fmt.mapping.get(header_name, header_name)
        if ours not in columns:  # aliases (SLOAD spellings): the first one present wins
            columns[ours] = (header_name, pc.utf8_trim_whitespace(arrow.column(name)))
    count = arrow.num_rows
    lines = pd.Series(np.arange(2, count + 2))  # header is line 1
    source_column = {ours: header_name for ours, (header_name, _) in columns.items()}
    frame = pd.DataFrame(index=lines.index)
    parsed = EpaTable(origin, fmt, frame, lines, source_column, arrow, dict(zip(header, names, strict=True)))
    for ours, (_, values) in columns.items():
        if ours not in fmt.numeric:
            frame[ours] = values.to_pandas()
    for column in fmt.numeric:
        if column not in columns:
            frame[column] = np.nan
            continue
        values = columns[column][1]
        nulled = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        try:
            numbers = pc.cast(nulled, pa.float64()).to_numpy()
        except pa.ArrowInvalid:
            numbers = None
        if (
            numbers is None
            or not np.isfinite(numbers[~np.isnan(numbers)]).all()
            or np.isnan(numbers).sum() != (pc.sum(pc.is_null(nulled)).as_py() or 0)
        ):
            _raise_unclean(parsed, column, values.to_pandas())
        parsed.first(pd.Series(numbers < 0), column, None, "negative")
        frame[column] = numbers
    return parsed


def _raise_unclean(parsed: EpaTable, column: str, values: pd.Series) -> None:
    """Name the first value of `column` that is not a decimal number or empty (a word, stray bytes, "nan")."""
    numbers = pd.to_numeric(values, errors="coerce")
    unclean = (numbers.isna() & values.ne("")) | np.isinf(numbers)
    parsed.first(unclean, column, values, "not a number")
    for row, value in values.items():  # anything pandas took that Arrow did not
        try:
            pc.cast(pa.scalar(value or "0"), pa.float64())
        except pa.ArrowInvalid:
            raise parsed.fail(row, column, value, "not a number") from None
    raise EpaFileError(f"{parsed.origin}: column {parsed.source_column[column]!r}: not clean numbers")


def _header_of(fmt: EpaFormat, column: str, header: list[str]) -> str:
    """The header name a required column goes by (the one present, when a format has aliases)."""
    names = [k for k, v in fmt.mapping.items() if v == column]
    return next((name for name in names if name in header), names[0])


def _raise_control(origin: str, text: str, header: list[str], index: int, payload: bytes) -> None:
    """A NUL or other control byte: name the line, the field holding it and its value."""
    line = payload[:index].count(b"\n") + 1
    raw = text.splitlines()[line - 1]
    fields = next(csv.reader([raw]))
    column = next((header[i] for i, f in enumerate(fields) if _CONTROL.search(f.encode("latin-1", "replace"))), "?")
    value = next((f for f in fields if _CONTROL.search(f.encode("latin-1", "replace"))), raw)
    raise _fail(origin, line, column, value, "control byte (NUL or similar) inside a value: not a clean number or text")


OLD_HOURLY = EpaFormat(
    "ampd", "OP_DATE", _OLD, (*_REQUIRED_KEYS, *_REQUIRED_FIGURES), NUMERIC_COLUMNS, _DATE_FORMATS["old"]
)
NEW_HOURLY = EpaFormat(
    "campd",
    "Date",
    _NEW,
    (*_REQUIRED_KEYS, *_REQUIRED_FIGURES, "heat_input_indicator"),
    NUMERIC_COLUMNS,
    _DATE_FORMATS["new"],
)
DAILY_MARKERS = {
    "SUM_OP_TIME": "an EPA daily file (DLY_ format): read it with read_epa_daily (cems.epa_daily_folder)",
    "Sum of the Operating Time": "an EPA CAMPD daily file: read it with read_epa_daily (cems.epa_daily_folder)",
}


def _parse(origin: str, payload: bytes, utc_offset_hours: int | None, facility_offsets: Mapping[int, int]):
    parsed = read_table(origin, payload, (OLD_HOURLY, NEW_HOURLY), DAILY_MARKERS)
    frame, lines = parsed.frame, parsed.lines
    naming = "new" if parsed.format is NEW_HOURLY else "old"
    for column in INDICATOR_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    op_time_bad = frame["op_time"].isna() | (frame["op_time"] > 1)
    parsed.first(op_time_bad, "op_time", None, "operating time must be within 0..1")

    date = pd.to_datetime(frame["date"], format=_DATE_FORMATS[naming], errors="coerce")
    hour = pd.to_numeric(frame["hour"], errors="coerce")
    parsed.first(date.isna(), "date", frame["date"], "not a valid date/hour")
    hour_bad = hour.isna() | (hour < 0) | (hour > 23) | (hour % 1 != 0)
    parsed.first(hour_bad, "hour", frame["hour"], "not a valid date/hour")
    facility = pd.to_numeric(frame["facility_id"], errors="coerce")
    parsed.first(facility.isna(), "facility_id", frame["facility_id"], "not an id")
    frame["facility_id"] = facility.astype("int64")
    frame["hour_start_lst"] = (date + pd.to_timedelta(hour, unit="h")).astype("datetime64[ns]")

    offsets = frame["facility_id"].map(facility_offsets) if facility_offsets else pd.Series(np.nan, frame.index)
    if utc_offset_hours is not None:
        offsets = offsets.fillna(utc_offset_hours)
    offsets = offsets.fillna(frame["state"].map(STATE_STANDARD_UTC_OFFSET))
    parsed.first(
        offsets.isna(),
        "state",
        frame["state"],
        "no standard UTC offset known for this state; pass utc_offset_hours or facility_utc_offsets",
    )
    frame["hour_start_utc"] = (frame["hour_start_lst"] - pd.to_timedelta(offsets, unit="h")).dt.tz_localize("UTC")

    for column in INDICATOR_COLUMNS:
        values = frame[column]
        parsed.first(
            ~values.isin(MEASURE_INDICATOR_METHODS),
            column,
            values,
            f"unknown measure indicator (known: {sorted(k for k in MEASURE_INDICATOR_METHODS if k)})",
        )
        frame[column] = values.replace("", None)
    frame["so2_method"] = frame["so2_mass_indicator"].map(MEASURE_INDICATOR_METHODS)
    frame["co2_method"] = frame["co2_mass_indicator"].map(MEASURE_INDICATOR_METHODS)
    frame["nox_method"] = frame["nox_rate_indicator"].map(MEASURE_INDICATOR_METHODS)
    frame["heat_input_method"] = frame["heat_input_indicator"].map(MEASURE_INDICATOR_METHODS)
    if "facility_name" not in frame:
        frame["facility_name"] = ""
    frame["source"] = "epa_campd" if naming == "new" else "epa_ampd"
    frame["source_ref"] = origin + ":" + lines.astype(str)

    duplicated = frame.duplicated(["facility_id", "unit_id", "hour_start_lst"], keep="first")
    parsed.first(duplicated, "hour", frame["hour"], "duplicated unit-hour")
    return frame[EPA_HOURLY_COLUMNS]


def read_epa_hourly(
    paths: str | Path | list[str | Path],
    utc_offset_hours: int | None = None,
    facility_utc_offsets: Mapping[int, int] | None = None,
) -> pd.DataFrame:
    """Read EPA hourly files (.csv or .zip, either naming) into one frame with EPA_HOURLY_COLUMNS.

    `utc_offset_hours` overrides the state map for every row; `facility_utc_offsets` (facility id ->
    standard offset) overrides both for the facilities it names. Raises EpaFileError on the first
    malformed file, naming file (and zip member), line and column.
    """
    offsets = facility_utc_offsets or {}
    return read_files(
        paths,
        lambda origin, payload: _parse(origin, payload, utc_offset_hours, offsets),
        "hour_start_lst",
        "hour",
        "hour",
    )


def read_files(
    paths: str | Path | list[str | Path], parse, time_column: str, period: str, file_column: str
) -> pd.DataFrame:
    """`parse(origin, payload)` on every file and zip member, then one frame sorted by facility, unit and
    `time_column`; a unit-`period` that two files both hold is refused, naming the second's `file_column`."""
    paths = [paths] if isinstance(paths, str | Path) else paths
    result = pd.concat(
        [parse(origin, payload) for path in map(Path, paths) for origin, payload in _texts(path)], ignore_index=True
    )
    keys = ["facility_id", "unit_id", time_column]
    duplicated = result.duplicated(keys, keep="first")
    if duplicated.any():
        row = result.loc[duplicated[duplicated].index[0]]
        raise EpaFileError(
            f"{row['source_ref']}: column {file_column!r} value {str(row[time_column])!r}: "
            f"unit {row['facility_id']}:{row['unit_id']} already read for this {period} from another file"
        )
    return result.sort_values(keys, ignore_index=True)


def as_emissions(epa: pd.DataFrame) -> pd.DataFrame:
    """EPA hours in the shape the aggregate functions take (unit_id = '<facility id>:<unit id>').

    Flow, O2 and moisture are not published: their methods are 'not_reported' and PMA is unknown.
    """
    out = pd.DataFrame(
        {
            "unit_id": epa["facility_id"].astype(str) + ":" + epa["unit_id"],
            "hour_start_utc": epa["hour_start_utc"],
            "hour_start_lst": epa["hour_start_lst"],
            "op_time": epa["op_time"],
            "gross_load_mw": epa["gross_load_mw"],
            "heat_input_mmbtu": epa["heat_input_mmbtu"].fillna(0.0),
            "so2_mass_lb": epa["so2_mass_lb"].fillna(0.0),
            "nox_mass_lb": epa["nox_mass_lb"].fillna(0.0),
            "co2_mass_tons": epa["co2_mass_tons"].fillna(0.0),
            "nox_rate_lb_mmbtu": epa["nox_rate_lb_mmbtu"],
            "source": epa["source"],
            "source_ref": epa["source_ref"],
        }
    )
    for parameter in SUBSTITUTED_PARAMETERS:
        out[f"{parameter}_method"] = epa.get(f"{parameter}_method", "not_reported")
        out[f"{parameter}_method"] = out[f"{parameter}_method"].where(epa["op_time"] > 0, "not_operating")
        out[f"pma_{parameter}"] = np.nan
    return out


def consistency_violations(epa: pd.DataFrame, decimals: Mapping[str, int]) -> pd.DataFrame:
    """Hours whose published numbers disagree beyond their rounding (Part 75: NOx mass = NOx rate x heat
    input; SO2 and CO2 rate = mass / heat input).

    `decimals` gives the published decimal places of each hourly *rate* (full-hour values): heat input and
    masses are rate x operating time, so their rounding error is half a unit of the rate's last decimal x
    operating time, plus half a unit of the 3rd decimal the product is printed to. Returns the offending
    rows with a `check` and a `residual` column (empty when every hour is consistent).
    """

    def half(column: str, op_time: pd.Series) -> pd.Series:
        return 0.5 * 10.0 ** -decimals[column] * op_time + 0.0005

    operating = epa[(epa["op_time"] > 0) & (epa["heat_input_mmbtu"] > 0)]
    t = operating["op_time"]
    hi = operating["heat_input_mmbtu"]
    hi_err = half("heat_input_mmbtu", t)
    checks = []
    nox = operating["nox_rate_lb_mmbtu"].notna() & operating["nox_mass_lb"].notna()
    residual = (operating["nox_mass_lb"] - operating["nox_rate_lb_mmbtu"] * hi).abs()
    # NOx mass is computed from the rounded rate and heat input, then printed: only the printing remains.
    tolerance = half("nox_mass_lb", t) + 1e-9
    labelled = operating.assign(check="nox_mass = nox_rate x heat_input", residual=residual)
    checks.append(labelled[nox & (residual > tolerance)])
    for mass, rate in (("so2_mass_lb", "so2_rate_lb_mmbtu"), ("co2_mass_tons", "co2_rate_tons_mmbtu")):
        present = operating[rate].notna() & operating[mass].notna()
        m = operating[mass]
        residual = (operating[rate] - m / hi).abs()
        tolerance = 0.5 * 10.0 ** -decimals[rate] + half(mass, t) / hi + m * hi_err / hi**2 + 1e-9
        labelled = operating.assign(check=f"{rate} = {mass} / heat_input", residual=residual)
        checks.append(labelled[present & (residual > tolerance)])
    return pd.concat(checks, ignore_index=True)


COVERAGE_COLUMNS = ["facility_id", "unit_id", "period_start_lst", "expected", "present", "first_missing_lst"]


def coverage(
    frame: pd.DataFrame, period: str = "quarter", time_column: str = "hour_start_lst", step: str = "h"
) -> pd.DataFrame:
    """Per unit and calendar quarter (or year) its rows touch: how many hours (or days, step "D") the
    period has in local standard time (no DST), how many are present, and the first missing one.

    EPA publishes a row for every hour (day) of a unit's reporting period, operating or not, so a
    period with fewer rows is a file cut at a line boundary or a month left out, not a quiet unit.
    """
    freq = {"quarter": "Q", "year": "Y"}[period]
    if frame.empty:
        return pd.DataFrame(columns=COVERAGE_COLUMNS)
    keyed = frame.assign(period_start_lst=frame[time_column].dt.to_period(freq).dt.start_time)
    groups = keyed.groupby(["facility_id", "unit_id", "period_start_lst"], sort=True)[time_column]
    out = groups.nunique().rename("present").reset_index()
    starts = out["period_start_lst"]
    ends = (starts.dt.to_period(freq) + 1).dt.start_time
    out["expected"] = ((ends - starts) / pd.Timedelta(1, unit=step)).astype("int64")
    out["first_missing_lst"] = pd.NaT
    for index in out.index[out["present"] < out["expected"]]:
        key = tuple(out.loc[index, ["facility_id", "unit_id", "period_start_lst"]])
        wanted = pd.date_range(starts[index], ends[index], freq=step, inclusive="left")
        out.loc[index, "first_missing_lst"] = wanted.difference(pd.DatetimeIndex(groups.get_group(key)))[0]
    return out[COVERAGE_COLUMNS]


def incomplete_periods(report: pd.DataFrame, unit: str = "hours") -> list[str]:
    """`facility:unit period: present/expected hours, first missing <time>` per period short of rows."""
    short = report[report["present"] < report["expected"]]
    return [
        f"{r.facility_id}:{r.unit_id} {r.period_start_lst:%Y-%m-%d}: {r.present}/{r.expected} {unit}, "
        f"first missing {r.first_missing_lst:%Y-%m-%d %H:%M} LST"
        for r in short.itertuples()
    ]


HOURLY_PERIOD_COLUMNS = [
    "facility_id",
    "unit_id",
    "period_start_lst",
    "op_hours",
    "gross_load_mwh",
    "heat_input_mmbtu",
    "so2_mass_tons",
    "nox_mass_tons",
    "co2_mass_tons",
]


def hourly_period_totals(epa: pd.DataFrame, period: str = "quarter") -> pd.DataFrame:
    """Per unit and calendar quarter (or year, or day) of local standard time, from published hours:
    operating hours, gross MWh (load x operating time), heat input, SO2/NOx tons (lb / 2,000), CO2 tons."""
    freq = {"day": "D", "quarter": "Q", "year": "Y"}[period]
    keyed = epa.assign(
        period_start_lst=epa["hour_start_lst"].dt.to_period(freq).dt.start_time,
        gross_load_mwh=epa["gross_load_mw"] * epa["op_time"],
        so2_mass_tons=epa["so2_mass_lb"] / 2_000.0,
        nox_mass_tons=epa["nox_mass_lb"] / 2_000.0,
        op_hours=epa["op_time"],
    )
    grouped = keyed.groupby(["facility_id", "unit_id", "period_start_lst"], sort=True)
    return grouped[HOURLY_PERIOD_COLUMNS[3:]].sum(min_count=0).reset_index()[HOURLY_PERIOD_COLUMNS]
