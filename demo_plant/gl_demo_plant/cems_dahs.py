"""Demo plant, DAHS: hourly export files as our DAHS vendor writes them (layout in `cems.dahs`).

One file per unit and local-standard-time day (`GLDAHS_<unit>_<YYYYMMDD>.csv`) or per hour
(`GLDAHS_<unit>_<YYYYMMDD>_<HH>.csv`). Files appear atomically (written aside, then renamed), as a
DAHS that exports to a share should, so a watcher never sees half a file. `write_malformed`
writes the broken files a real share sees now and then.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd

from gl_demo_plant.cems_model import CemsFaults, cems_hours, demo_faults, hour_starts
from gl_demo_plant.plant_model import DEFAULT_SEED
from gl_pipelines.cems.dahs import DAHS_COLUMNS, DAHS_PARAMETERS, STATUS_TO_MDC

_FORMATS = {
    "OP_TIME": "{:.2f}",
    "GLOAD_MW": "{:.2f}",
    "FLOW_SCFH": "{:.0f}",
    "CO2_PCT": "{:.3f}",
    "O2_PCT": "{:.3f}",
    "SO2_PPM": "{:.3f}",
    "NOX_PPM": "{:.2f}",
    "NOX_LB_MMBTU": "{:.4f}",
    "H2O_PCT": "{:.2f}",
}
MALFORMED_KINDS = ("bad_header", "column_count", "non_numeric", "duplicate_hour", "out_of_order", "unknown_code")


def _number(column: str, value: float) -> str:
    return "" if value is None or math.isnan(value) else _FORMATS[column].format(value)


def dahs_lines(frame: pd.DataFrame, lst_offset_hours: int) -> list[str]:
    """Header and one line per row of a `cems_model` frame, in the vendor layout."""
    lines = [",".join(DAHS_COLUMNS)]
    for row in frame.sort_values(["unit_id", "hour_start_utc"]).itertuples(index=False):
        hour = row.hour_start_utc.to_pydatetime()
        lst = hour.replace(tzinfo=None) + timedelta(hours=lst_offset_hours)
        fields = {
            "UNIT_ID": row.unit_id,
            "OP_DATE": f"{lst:%Y-%m-%d}",
            "OP_HOUR": str(lst.hour),
            "HOUR_START_UTC": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "OP_TIME": _number("OP_TIME", row.op_time),
            "GLOAD_MW": _number("GLOAD_MW", row.gross_load_mw),
        }
        values = row._asdict()
        for file_columns, code_column, raw_columns, status_column in DAHS_PARAMETERS.values():
            for file_column, raw_column in zip(file_columns, raw_columns, strict=True):
                fields[file_column] = _number(file_column, values[raw_column])
            fields[code_column] = STATUS_TO_MDC[values[status_column]]
        lines.append(",".join(fields[column] for column in DAHS_COLUMNS))
    return lines


def write_atomically(path: Path, text: str) -> Path:
    """Write aside and rename: the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def lst_day_window(day: date, lst_offset_hours: int) -> tuple[datetime, datetime]:
    """The UTC instants of a local-standard-time day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=lst_offset_hours)
    return start, start + timedelta(days=1)


def write_day(
    folder: Path,
    unit_id: str,
    day: date,
    lst_offset_hours: int,
    faults: CemsFaults | None | Literal["demo"] = "demo",
    per_hour: bool = False,
    seed: int = DEFAULT_SEED,
) -> list[Path]:
    """The DAHS export of one unit and local-standard-time day: one file, or one per hour.
    `faults="demo"` injects the demo's daily faults (`cems_model.demo_faults`)."""
    start, end = lst_day_window(day, lst_offset_hours)
    if faults == "demo":
        faults = demo_faults(hour_starts(start, end), lst_offset_hours)
    frame = cems_hours(unit_id, start, end, faults, seed)
    if not per_hour:
        name = f"GLDAHS_{unit_id}_{day:%Y%m%d}.csv"
        return [write_atomically(folder / name, "\n".join(dahs_lines(frame, lst_offset_hours)) + "\n")]
    paths = []
    for _, hour_frame in frame.groupby("hour_start_utc"):
        lst_hour = (hour_frame["hour_start_utc"].iloc[0] + timedelta(hours=lst_offset_hours)).hour
        name = f"GLDAHS_{unit_id}_{day:%Y%m%d}_{lst_hour:02d}.csv"
        paths.append(write_atomically(folder / name, "\n".join(dahs_lines(hour_frame, lst_offset_hours)) + "\n"))
    return paths


def write_hour(folder: Path, unit_id: str, hour: datetime, lst_offset_hours: int, seed: int = DEFAULT_SEED) -> Path:
    """The per-hour export of one closed hour (UTC hour start), with the demo's faults, as a live DAHS writes it."""
    frame = cems_hours(unit_id, hour, hour + timedelta(hours=1), demo_faults([hour], lst_offset_hours), seed)
    lst = hour.replace(tzinfo=None) + timedelta(hours=lst_offset_hours)
    name = f"GLDAHS_{unit_id}_{lst:%Y%m%d}_{lst:%H}.csv"
    return write_atomically(folder / name, "\n".join(dahs_lines(frame, lst_offset_hours)) + "\n")


def write_malformed(
    folder: Path, unit_id: str, day: date, lst_offset_hours: int, kind: str, seed: int = DEFAULT_SEED
) -> tuple[Path, int]:
    """A broken export of one day, and the line (1 = header) a parser must name. Kinds: MALFORMED_KINDS."""
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"unknown malformed kind {kind!r}; one of {MALFORMED_KINDS}")
    start, end = lst_day_window(day, lst_offset_hours)
    lines = dahs_lines(cems_hours(unit_id, start, end, None, seed), lst_offset_hours)
    bad_line = 6  # the fifth data row
    row = lines[bad_line - 1].split(",")
    if kind == "bad_header":
        lines[0] = lines[0].replace("CO2_PCT", "CO2_PERCENT")
        bad_line = 1
    elif kind == "column_count":
        lines[bad_line - 1] = ",".join(row[:-1])
    elif kind == "non_numeric":
        row[DAHS_COLUMNS.index("SO2_PPM")] = "n/a"
        lines[bad_line - 1] = ",".join(row)
    elif kind == "duplicate_hour":
        lines[bad_line - 1] = lines[bad_line - 2]
    elif kind == "out_of_order":
        lines[bad_line - 2], lines[bad_line - 1] = lines[bad_line - 1], lines[bad_line - 2]
    elif kind == "unknown_code":
        row[DAHS_COLUMNS.index("CO2_MDC")] = "X"
        lines[bad_line - 1] = ",".join(row)
    path = folder / f"GLDAHS_{unit_id}_{day:%Y%m%d}.csv"
    return write_atomically(path, "\n".join(lines) + "\n"), bad_line
