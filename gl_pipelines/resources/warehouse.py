"""The warehouse: DuckDB by default, behind Dagster's DB IO manager.

Writing a partition deletes its time window and inserts the new rows. Two fixes over Dagster's
stock DuckDB client: the delete and insert run in one transaction (the stock client autocommits
each, so a failed insert would leave the window empty), and window bounds are absolute UTC
instants (the stock client drops the zone offset, shifting plant-day partitions).
A bigger store (Postgres, Snowflake, ...) swaps in by giving `warehouse` another Dagster DB IO
manager; assets only return DataFrames and declare `partition_expr`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC

import duckdb
import pandas as pd
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice, static_where_clause
from dagster._utils.backoff import backoff
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


class TransactionalDuckDbClient(DuckDbClient):
    """DuckDbClient whose every connection is one transaction: commit on success, roll back on error."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        # Opened here rather than through the stock client, which skips close() when the body
        # raises and so leaves the file open in this process after a failed write.
        connection = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={
                "database": context.resource_config["database"],
                "read_only": False,
                "config": {"custom_user_agent": "gl-pipelines", **context.resource_config["connection_config"]},
            },
            max_retries=10,
        )
        try:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        # The stock client runs the DELETE and swallows "no such table", which would abort our
        # transaction; ask the catalog first instead.
        exists = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()[0]
        if exists:
            connection.execute(f"DELETE FROM {table_slice.schema}.{table_slice.table}{_where(table_slice)}")

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        return f"SELECT {columns} FROM {table_slice.schema}.{table_slice.table}{_where(table_slice)}"


def _where(table_slice: TableSlice) -> str:
    """WHERE clause for a slice, with time windows as absolute UTC instants.

    The stock client formats window bounds without their UTC offset, which shifts every
    partition of a non-UTC partitions definition (plant days) by the zone's offset.
    """
    clauses = []
    for dimension in table_slice.partition_dimensions or []:
        if isinstance(dimension.partitions, TimeWindow):
            start, end = (moment.astimezone(UTC).isoformat() for moment in dimension.partitions)
            clauses.append(f"{dimension.partition_expr} >= '{start}' AND {dimension.partition_expr} < '{end}'")
        else:
            clauses.append(static_where_clause(dimension))
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


class WarehousePandasTypeHandler(DuckDBPandasTypeHandler):
    """The stock pandas handler, reading through our client's UTC-correct SELECT."""

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        return connection.execute(TransactionalDuckDbClient.get_select_statement(table_slice)).fetchdf()


class WarehouseIOManager(DuckDBPandasIOManager):
    """DuckDB pandas IO manager with atomic partition replacement and UTC-correct windows."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [WarehousePandasTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="WarehouseIOManager",
        )


def warehouse_io_manager(database: str) -> WarehouseIOManager:
    return WarehouseIOManager(database=database, schema="plant")
