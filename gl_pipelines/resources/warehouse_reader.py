"""Read-only SQL on the warehouse, for an asset that selects its own window of another asset's table.

The `warehouse` IO manager loads an input for the partitions a partition mapping names. Dagster maps
time partitions only within one time zone, so a report on the plant's clock cannot map onto CEMS
partitions on local standard time; it depends on the CEMS asset without a time mapping and reads
the rows of its own UTC window here, with the IO manager's UTC-correct window clause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
from dagster import ConfigurableResource, TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice
from dagster._utils.backoff import backoff
from pydantic import Field

from gl_pipelines.resources.warehouse import TransactionalDuckDbClient

WINDOW_ROWS = "window_rows"
"""The name a `WindowRead.query` gives the window's rows."""


@dataclass(frozen=True)
class WindowRead:
    """What to read from one table for a window: `query` over its rows `start <= partition_expr < end`
    (e.g. a GROUP BY, so that only the sums leave the warehouse)."""

    table: str
    partition_expr: str
    columns: Sequence[str]
    query: str = f"SELECT * FROM {WINDOW_ROWS}"


class WarehouseReader(ConfigurableResource):
    """Reads a UTC time window of warehouse tables, from the DuckDB file or the shared warehouse; never writes."""

    database: str = Field(description="Path of the DuckDB warehouse file (the `warehouse` IO manager's).")
    schema_name: str = Field(default="plant", description="Schema the `warehouse` IO manager writes to.")
    catalog_dsn: str | None = Field(
        default=None, description="The shared warehouse's catalog DSN: read Iceberg tables instead of the file."
    )
    data_path: str | None = Field(default=None, description="The shared warehouse's data path.")

    def read_window(
        self, table: str, partition_expr: str, start: datetime, end: datetime, columns: Sequence[str]
    ) -> pd.DataFrame | None:
        """`columns` of the rows with `start <= partition_expr < end`; None when the table does not exist yet."""
        return self.read_windows({table: WindowRead(table, partition_expr, columns)}, start, end)[table]

    def query_window(
        self, table: str, partition_expr: str, start: datetime, end: datetime, columns: Sequence[str], query: str
    ) -> pd.DataFrame | None:
        """The result of `query` over the window's rows (named `window_rows` in it); None without the table."""
        return self.read_windows({table: WindowRead(table, partition_expr, columns, query)}, start, end)[table]

    def read_windows(
        self, reads: Mapping[str, WindowRead], start: datetime, end: datetime
    ) -> dict[str, pd.DataFrame | None]:
        """Each read's result by name, through one connection (opening the file costs ~12 ms); None for a
        table that does not exist yet."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError(
                f"read_windows({', '.join(reads)}): window bounds must be timezone-aware, got {start!r}, {end!r}"
            )
        if self.catalog_dsn:
            return self._read_shared(reads, start, end)
        if not Path(self.database).exists():
            return dict.fromkeys(reads)
        # Same retry as the IO manager: another process may hold the file's write lock for a moment.
        connection = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={"database": self.database, "read_only": True},
            max_retries=10,
        )
        try:
            tables = {
                name
                for (name,) in connection.execute(
                    "select table_name from information_schema.tables where table_schema = ?", [self.schema_name]
                ).fetchall()
            }
            return {
                name: _query(connection, read, _duckdb_select(self._slice(read, start, end)))
                if read.table in tables
                else None
                for name, read in reads.items()
            }
        finally:
            connection.close()

    def _read_shared(self, reads: Mapping[str, WindowRead], start: datetime, end: datetime) -> dict:
        """The same queries, by DuckDB over the rows an Iceberg scan of each window returns."""
        from gl_pipelines.resources.iceberg_warehouse import open_catalog, read_slice, scratch_duckdb

        catalog = open_catalog(self.catalog_dsn, self.data_path)
        connection = scratch_duckdb()
        try:
            results: dict[str, pd.DataFrame | None] = {}
            for name, read in reads.items():
                rows = read_slice(catalog, self._slice(read, start, end))
                if rows is None:
                    results[name] = None
                    continue
                connection.register("rows", rows)
                results[name] = _query(connection, read, "SELECT * FROM rows")
                connection.unregister("rows")
            return results
        finally:
            connection.close()

    def _slice(self, read: WindowRead, start: datetime, end: datetime) -> TableSlice:
        return TableSlice(
            table=read.table,
            schema=self.schema_name,
            columns=list(read.columns),
            partition_dimensions=[TablePartitionDimension(read.partition_expr, TimeWindow(start, end))],
        )


def _duckdb_select(table_slice: TableSlice) -> str:
    """The IO manager's SELECT, with the column names quoted: a declared column may be an SQL keyword
    (`order` of a work-order entity set), which Dagster's statement leaves bare."""
    columns = ['"' + column.replace('"', '""') + '"' for column in table_slice.columns]
    return TransactionalDuckDbClient.get_select_statement(table_slice._replace(columns=columns))


def _query(connection: duckdb.DuckDBPyConnection, read: WindowRead, select: str) -> pd.DataFrame:
    return connection.execute(f"WITH {WINDOW_ROWS} AS ({select}) {read.query}").fetchdf()
