"""The warehouse: DuckDB by default, behind Dagster's DB IO manager.

Writing a partition deletes its time window and inserts the new rows. Dagster's stock DuckDB
client runs those as two autocommitted statements, so a failed insert would leave the window
empty; here both run in one transaction, so a re-run replaces a partition or changes nothing.
A bigger store (Postgres, Snowflake, ...) swaps in by giving `warehouse` another Dagster DB IO
manager; assets only return DataFrames and declare `partition_expr`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster._core.storage.db_io_manager import DbIOManager
from dagster._utils.backoff import backoff
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_pandas import DuckDBPandasIOManager


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
    def delete_table_slice(context, table_slice, connection) -> None:
        # The stock client runs the DELETE and swallows "no such table", which would abort our
        # transaction; ask the catalog first instead.
        exists = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()[0]
        if exists:
            connection.execute(_get_cleanup_statement(table_slice))


class WarehouseIOManager(DuckDBPandasIOManager):
    """DuckDB pandas IO manager with atomic partition replacement."""

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
