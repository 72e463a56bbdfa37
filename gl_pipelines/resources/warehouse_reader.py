"""Read-only SQL on the warehouse, for an asset that selects its own window of another asset's table.

The `warehouse` IO manager loads an input for the partitions a partition mapping names. Dagster maps
time partitions only within one time zone, so a report on the plant's clock cannot map onto CEMS
partitions on local standard time; it depends on the CEMS asset without a time mapping and reads
the rows of its own UTC window here, with the IO manager's UTC-correct window clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
from dagster import ConfigurableResource, TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice
from dagster._utils.backoff import backoff
from pydantic import Field

from gl_pipelines.resources.warehouse import TransactionalDuckDbClient


class WarehouseReader(ConfigurableResource):
    """Reads a UTC time window of a warehouse table; never writes."""

    database: str = Field(description="Path of the DuckDB warehouse file (the `warehouse` IO manager's).")
    schema_name: str = Field(default="plant", description="Schema the `warehouse` IO manager writes to.")

    def read_window(
        self, table: str, partition_expr: str, start: datetime, end: datetime, columns: Sequence[str]
    ) -> pd.DataFrame | None:
        """`columns` of the rows with `start <= partition_expr < end`; None when the table does not exist yet."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError(f"read_window({table}): window bounds must be timezone-aware, got {start!r}, {end!r}")
        if not Path(self.database).exists():
            return None
        window = TableSlice(
            table=table,
            schema=self.schema_name,
            columns=list(columns),
            partition_dimensions=[TablePartitionDimension(partition_expr, TimeWindow(start, end))],
        )
        # Same retry as the IO manager: another process may hold the file's write lock for a moment.
        connection = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={"database": self.database, "read_only": True},
            max_retries=10,
        )
        try:
            exists = connection.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [self.schema_name, table],
            ).fetchall()[0][0]
            if not exists:
                return None
            return connection.execute(TransactionalDuckDbClient.get_select_statement(window)).fetchdf()
        finally:
            connection.close()
