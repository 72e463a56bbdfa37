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
from dagster import RetryRequested
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice, static_where_clause
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

LOCK_WAIT_S = 600.0
LOCK_STEP_RETRIES = 2
LOCK_STEP_RETRY_WAIT_S = 300.0


def _is_lock_conflict(error: BaseException) -> bool:
    """DuckDB's "Could not set lock on file ...: Conflicting lock is held in <program> (PID n)"."""
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def open_warehouse(config) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file for writing, waiting up to `lock_wait_s` while another process holds it.

    Still locked after that: the step is retried (`lock_step_retries` times, `lock_step_retry_wait_s`
    apart) and re-extracts its window, so nothing read from the source is lost; the last failure names
    the file and the process holding it.
    """
    retrying = Retrying(
        retry=retry_if_exception(_is_lock_conflict),
        stop=stop_after_delay(config.get("lock_wait_s", LOCK_WAIT_S)),
        wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
        reraise=True,
    )
    try:
        return retrying(
            duckdb.connect,
            database=config["database"],
            read_only=False,
            config={"custom_user_agent": "gl-pipelines", **config["connection_config"]},
        )
    except duckdb.IOException as error:
        if not _is_lock_conflict(error):
            raise
        raise RetryRequested(
            max_retries=config.get("lock_step_retries", LOCK_STEP_RETRIES),
            seconds_to_wait=config.get("lock_step_retry_wait_s", LOCK_STEP_RETRY_WAIT_S),
        ) from error


class TransactionalDuckDbClient(DuckDbClient):
    """DuckDbClient whose every connection is one transaction: commit on success, roll back on error."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        # Opened here rather than through the stock client, which skips close() when the body
        # raises and so leaves the file open in this process after a failed write.
        connection = open_warehouse(context.resource_config)
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

    lock_wait_s: float = Field(
        default=LOCK_WAIT_S, gt=0, description="How long a write waits for another process's lock on the file."
    )
    lock_step_retries: int = Field(
        default=LOCK_STEP_RETRIES, ge=0, description="Step retries (re-extracting) when the lock wait runs out."
    )
    lock_step_retry_wait_s: float = Field(default=LOCK_STEP_RETRY_WAIT_S, ge=0, description="Wait before each.")

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
