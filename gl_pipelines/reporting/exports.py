"""Report exports: Parquet always, CSV on request, one file per report partition.

Files are written to a temporary name and renamed into place, so a reader never sees half a
file and a re-run replaces the partition's file. DuckDB writes both formats (no pyarrow needed).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import duckdb
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def reports_root(configured: str) -> Path:
    """The configured reports folder; a relative path is taken from the project root."""
    path = Path(configured)
    return path if path.is_absolute() else PROJECT_ROOT / path


def export_paths(root: Path, report: str, partition: str) -> dict[str, Path]:
    folder = root / report
    return {fmt: folder / f"{report}_{partition}.{fmt}" for fmt in ("parquet", "csv")}


def write_exports(
    frame: pd.DataFrame,
    root: Path,
    report: str,
    partition: str,
    csv: bool,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, Path]:
    """Write `frame` as Parquet (and CSV when `csv`); return the paths written. Pass a `connection`
    to reuse one when writing many reports (opening DuckDB costs more than a small COPY)."""
    paths = export_paths(root, report, partition)
    paths["parquet"].parent.mkdir(parents=True, exist_ok=True)
    wanted = {"parquet": "(FORMAT parquet)", **({"csv": "(FORMAT csv, HEADER true)"} if csv else {})}
    written = {}
    with contextlib.nullcontext(connection) if connection is not None else duckdb.connect() as con:
        con.register("report_frame", frame)
        try:
            for fmt, options in wanted.items():
                final = paths[fmt]
                partial = final.with_name(final.name + ".partial")
                con.execute(f"COPY report_frame TO '{_sql_path(partial)}' {options}")
                os.replace(partial, final)
                written[fmt] = final
        finally:
            con.unregister("report_frame")
    return written


def read_parquet(path: Path) -> pd.DataFrame:
    with duckdb.connect() as connection:
        return connection.execute(f"SELECT * FROM read_parquet('{_sql_path(path)}')").fetchdf()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
