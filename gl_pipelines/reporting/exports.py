"""Report exports: Parquet always, CSV on request, one file per report and plant month.

A daily report's month is one file too (`plant_months`): a year is 12 files a format, not 365 small
ones, and a re-run of a day rewrites its month's file from the warehouse. Files are written to a
temporary name and renamed into place, so a reader never sees half a file and a re-run replaces the
month's file. DuckDB writes both formats (no pyarrow needed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from gl_pipelines.config import PROJECT_ROOT
from gl_pipelines.reporting.scratch import scratch_connection

_PARTITION = "__gl_export_partition"


def reports_root(configured: str) -> Path:
    """The configured reports folder; a relative path is taken from the project root."""
    path = Path(configured)
    return path if path.is_absolute() else PROJECT_ROOT / path


def plant_months(start: datetime, end: datetime, timezone: str) -> dict[str, tuple[datetime, datetime]]:
    """The plant months overlapping [start, end), by 'YYYY-MM': local midnight on the 1st to the next 1st,
    as UTC instants (the export files' partitions, whether the report is daily or monthly)."""
    first = pd.Timestamp(start).tz_convert(timezone).tz_localize(None).to_period("M")
    last = (pd.Timestamp(end) - pd.Timedelta(1, "ns")).tz_convert(timezone).tz_localize(None).to_period("M")
    bounds = pd.period_range(first, last + 1, freq="M").start_time
    utc = bounds.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    return {
        f"{month:%Y-%m}": (low.to_pydatetime(), high.to_pydatetime())
        for month, low, high in zip(bounds[:-1], utc[:-1], utc[1:], strict=True)
    }


def export_paths(root: Path, report: str, partition: str) -> dict[str, Path]:
    folder = root / report
    return {fmt: folder / f"{report}_{partition}.{fmt}" for fmt in ("parquet", "csv")}


def write_exports(frame: pd.DataFrame, root: Path, report: str, partition: str, csv: bool) -> dict[str, Path]:
    """Write `frame` as one partition's Parquet (and CSV when `csv`); return the paths written."""
    paths = export_paths(root, report, partition)
    paths["parquet"].parent.mkdir(parents=True, exist_ok=True)
    wanted = {"parquet": "(FORMAT parquet)", **({"csv": "(FORMAT csv, HEADER true)"} if csv else {})}
    written = {}
    with scratch_connection() as con:
        con.register("report_frame", frame)
        for fmt, options in wanted.items():
            final = paths[fmt]
            partial = final.with_name(final.name + ".partial")
            con.execute(f"COPY report_frame TO '{_sql_path(partial)}' {options}")
            os.replace(partial, final)
            written[fmt] = final
    return written


def write_partition_exports(
    frame: pd.DataFrame,
    root: Path,
    report: str,
    windows: Mapping[str, tuple[datetime, datetime]],
    time_column: str,
    csv: bool,
) -> dict[str, dict[str, Path]]:
    """One export per window (the report assets pass `plant_months`): the rows of `frame` whose
    `time_column` is in the window's [start, end), as `write_exports` would write each slice.

    All windows are one partitioned COPY per format into a scratch folder, then a rename of each file
    into place (365 separate COPY statements took 1.1 ms a file against 0.4 ms). A window without
    rows still gets its (empty) file, so a re-run never leaves an old one."""
    keys = list(windows)
    if not keys:
        return {}
    starts = utc_nanoseconds([windows[key][0] for key in keys])
    ends = utc_nanoseconds([windows[key][1] for key in keys])
    order = np.argsort(starts, kind="stable")
    instants = utc_nanoseconds(frame[time_column]) if len(frame) else np.array([], "int64")
    slot = np.clip(np.searchsorted(starts[order], instants, side="right") - 1, -1, None)
    inside = (slot >= 0) & (instants < ends[order][np.clip(slot, 0, None)])
    partition = np.where(inside, order[np.clip(slot, 0, None)], -1)
    folder = root / report
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"parquet": "FORMAT parquet", **({"csv": "FORMAT csv, HEADER true"} if csv else {})}
    written: dict[str, dict[str, Path]] = {key: {} for key in keys}
    with scratch_connection() as con, tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as scratch:
        con.register("report_frame", frame.assign(**{_PARTITION: partition}))
        for fmt, options in wanted.items():
            target = Path(scratch) / fmt
            con.execute(
                f"COPY (SELECT * FROM report_frame WHERE {_PARTITION} >= 0) TO '{_sql_path(target)}' "
                f"({options}, PARTITION_BY ({_PARTITION}), WRITE_PARTITION_COLUMNS false)"
            )
            for index, key in enumerate(keys):
                final = export_paths(root, report, key)[fmt]
                files = list((target / f"{_PARTITION}={index}").glob(f"*.{fmt}"))
                if len(files) == 1:
                    os.replace(files[0], final)
                else:  # no rows in this partition (or, never seen, a split file): one COPY of the slice
                    partial = final.with_name(final.name + ".partial")
                    con.execute(
                        f"COPY (SELECT * EXCLUDE ({_PARTITION}) FROM report_frame WHERE {_PARTITION} = {index}) "
                        f"TO '{_sql_path(partial)}' ({options})"
                    )
                    os.replace(partial, final)
                written[key][fmt] = final
    return written


def utc_nanoseconds(instants) -> np.ndarray:
    """Tz-aware instants as int64 UTC nanoseconds (whatever the stored resolution)."""
    return pd.DatetimeIndex(instants).tz_convert("UTC").as_unit("ns").asi8


def read_parquet(path: Path) -> pd.DataFrame:
    with scratch_connection() as connection:
        return connection.execute(f"SELECT * FROM read_parquet('{_sql_path(path)}')").fetchdf()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
