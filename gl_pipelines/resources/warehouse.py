"""The warehouse: DuckDB by default, behind Dagster's DB IO manager.

Writing a partition deletes its time window and inserts the new rows. Two fixes over Dagster's
stock DuckDB client: the delete and insert run in one transaction (the stock client autocommits
each, so a failed insert would leave the window empty), and window bounds are absolute UTC
instants (the stock client drops the zone offset, shifting plant-day partitions).
A bigger store (Postgres, Snowflake, ...) swaps in by giving `warehouse` another Dagster DB IO
manager; assets only return DataFrames and declare `partition_expr`.

Write-audit-publish: a source asset audits its rows with its blocking checks before the write and
puts the verdict in its Output metadata (`checks.wap`). Passed: the partition is replaced as above.
Failed: the stored partition is left as it is and the rows go to `quarantine.<table>` with the run id,
plus one line in `quarantine.entries` (window, partitions, failed checks, row count, time). A later
publish of the same window marks those entries superseded and deletes their rows (the entry stays as
history). Rows the audit staged in the warehouse (`staging.*`, see `stage_rows`) are published or
quarantined from there, so a large partition is converted from pandas once. An asset that staged its rows
chunk by chunk (`stage_chunks`) outputs only `StagedRows`, a reference to the staged table: its window's
rows are never one pandas frame, and publishing is one INSERT ... SELECT inside the write transaction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import duckdb
import pandas as pd
from dagster import AssetKey, ConfigurableResource, RetryRequested
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


MEMORY_LIMIT_ENV = "GL_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "512MB"
"""DuckDB's own memory in a step (staging, the checks' aggregations, the publish): beyond it DuckDB spills to a
temporary folder beside the file instead of growing with the window (its default is 80 % of the machine's RAM)."""


def limit_memory(connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply $GL_DUCKDB_MEMORY_LIMIT (default DEFAULT_MEMORY_LIMIT) to the connection's database: a SET, not a
    connect option, so connections opened with other options in this process do not conflict."""
    limit = os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
    try:
        connection.execute("SET memory_limit = ?", [limit])
    except duckdb.Error as error:
        connection.close()
        raise ValueError(f"${MEMORY_LIMIT_ENV} = {limit!r} is not a DuckDB memory size (e.g. 512MB, 2GB)") from error
    return connection


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
        connection = retrying(
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
    if "memory_limit" in config["connection_config"]:
        return connection
    return limit_memory(connection)


WAP_KEY = "wap"
"""Output metadata the audit sets: {"failed_checks": [...], "staged_table": "staging.x" or null}."""
STAGING_SCHEMA = "staging"
QUARANTINE_SCHEMA = "quarantine"
ENTRIES = f"{QUARANTINE_SCHEMA}.entries"
_ENTRIES_DDL = f"""CREATE TABLE IF NOT EXISTS {ENTRIES} (
    run_id VARCHAR, table_name VARCHAR, partitions VARCHAR, window_start TIMESTAMPTZ, window_end TIMESTAMPTZ,
    failed_checks VARCHAR[], row_count BIGINT, quarantined_at TIMESTAMPTZ,
    superseded_by_run VARCHAR, superseded_at TIMESTAMPTZ)"""


def audit_verdict(context) -> dict | None:
    """The audit's verdict on this output, or None for an asset that is not audited before its write."""
    value = context.output_metadata.get(WAP_KEY) if context.output_metadata else None
    return None if value is None else value.value


def connect_warehouse(database: str) -> duckdb.DuckDBPyConnection:
    """A connection configured like the IO manager's (DuckDB refuses two configurations of one file in a
    process), retried while another process holds the file's lock."""
    retrying = Retrying(
        retry=retry_if_exception(_is_lock_conflict),
        stop=stop_after_delay(LOCK_WAIT_S),
        wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
        reraise=True,
    )
    return limit_memory(
        retrying(duckdb.connect, database=database, read_only=False, config={"custom_user_agent": "gl-pipelines"})
    )


def stage_rows(database: str, table: str, frame: pd.DataFrame) -> str:
    """Write `frame` to a new table in the warehouse's staging schema, outside every published table, and
    return its name; the IO manager publishes or quarantines it and drops it."""
    name = f"{STAGING_SCHEMA}.{table}__{uuid.uuid4().hex[:12]}"
    connection = connect_warehouse(database)
    try:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {STAGING_SCHEMA}")
        connection.register("_staged_frame", frame)
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM _staged_frame")
        connection.unregister("_staged_frame")
    finally:
        connection.close()
    return name


@dataclass(frozen=True)
class StagedRows:
    """An audited output whose rows are already staged in the warehouse: the IO manager publishes or quarantines
    them from `table` (and drops it), without a DataFrame."""

    table: str
    rows: int


def stage_chunks(database: str, table: str, frames: Iterable[pd.DataFrame]) -> StagedRows:
    """Append each frame of `frames` to one new staging table as it arrives, so only one chunk is ever in
    memory; the first frame with rows sets the columns (an empty frame's object columns carry no type).
    Anything failing part-way (the source, a frame) drops the table: nothing half-staged outlives the step."""
    name = f"{STAGING_SCHEMA}.{table}__{uuid.uuid4().hex[:12]}"
    rows, created, last = 0, False, None
    try:
        for frame in frames:
            last = frame
            if frame.empty:
                continue
            _append(database, name, frame, create=not created)
            created, rows = True, rows + len(frame)
        if not created:
            if last is None:
                raise ValueError(f"stage_chunks({table!r}): no frame at all, not even an empty one")
            _append(database, name, last, create=True)
    except BaseException:
        drop_staged(database, name)
        raise
    return StagedRows(name, rows)


def _append(database: str, name: str, frame: pd.DataFrame, *, create: bool) -> None:
    connection = connect_warehouse(database)
    try:
        connection.register("_staged_frame", frame)
        if create:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {STAGING_SCHEMA}")
            connection.execute(f"CREATE TABLE {name} AS SELECT * FROM _staged_frame")
        else:
            connection.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _staged_frame")
        connection.unregister("_staged_frame")
    finally:
        connection.close()


def drop_staged(database: str, name: str) -> None:
    """Drop a staged table the IO manager will not see (the step failed between stage and Output)."""
    connection = connect_warehouse(database)
    try:
        connection.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        connection.close()


class WarehouseStaging(ConfigurableResource):
    """Stages a source asset's new rows in the warehouse so its audit can check them there (`checks.wap`)."""

    database: str = Field(
        description="DuckDB file to stage in: the warehouse file itself, or with the shared warehouse a file of "
        "this process (see WarehouseSettings.staging_database)."
    )

    def stage(self, table: str, frame: pd.DataFrame) -> str:
        return stage_rows(self.database, table, frame)

    def stage_chunks(self, table: str, frames: Iterable[pd.DataFrame]) -> StagedRows:
        return stage_chunks(self.database, table, frames)

    def drop(self, name: str) -> None:
        drop_staged(self.database, name)


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
        verdict = audit_verdict(context)
        if verdict and verdict["failed_checks"]:
            return  # quarantined: the stored partition stays as it is
        exists = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchall()[0][0]
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


def _table_exists(connection, schema: str, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def window(table_slice: TableSlice) -> tuple[datetime | None, datetime | None]:
    for dimension in table_slice.partition_dimensions or []:
        if isinstance(dimension.partitions, TimeWindow):
            return tuple(moment.astimezone(UTC) for moment in dimension.partitions)
    return None, None


class WarehousePandasTypeHandler(DuckDBPandasTypeHandler):
    """The stock pandas handler, reading through our client's UTC-correct SELECT; audited outputs are
    published or quarantined by their verdict."""

    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        verdict = audit_verdict(context)
        if verdict is None:
            return super().handle_output(context, table_slice, obj, connection)
        source = verdict.get("staged_table")
        if source is not None:
            return _publish_staged(context, table_slice, connection, source, verdict["failed_checks"])
        connection.register("_wap_rows", obj)
        rows = connection.execute("SELECT count(*) FROM _wap_rows").fetchall()[0][0]
        if verdict["failed_checks"]:
            metadata = _quarantine(context, table_slice, connection, "_wap_rows", rows, verdict["failed_checks"])
        else:
            metadata = _publish(context, table_slice, connection, "_wap_rows", rows)
        connection.unregister("_wap_rows")
        return metadata

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        if not _table_exists(connection, table_slice.schema, table_slice.table):
            return pd.DataFrame()  # nothing published yet (e.g. the first run was quarantined): the gate says why
        return connection.execute(TransactionalDuckDbClient.get_select_statement(table_slice)).fetchdf()


class WarehouseStagedRowsTypeHandler(DbTypeHandler[StagedRows]):
    """Publishes or quarantines `StagedRows` inside the write transaction, all in DuckDB."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [StagedRows]

    def handle_output(self, context, table_slice: TableSlice, obj: StagedRows, connection):
        failed = (audit_verdict(context) or {}).get("failed_checks", [])
        return _publish_staged(context, table_slice, connection, obj.table, failed)

    def load_input(self, context, table_slice: TableSlice, connection) -> StagedRows:
        raise TypeError(
            f"{table_slice.schema}.{table_slice.table}: staged rows exist only inside their own step; "
            "load the input as a pandas DataFrame or query it through warehouse_reader"
        )


def _publish_staged(context, table_slice: TableSlice, connection, source: str, failed: list[str]) -> dict:
    rows = connection.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    if failed:
        metadata = _quarantine(context, table_slice, connection, source, rows, failed)
    else:
        metadata = _publish(context, table_slice, connection, source, rows)
    connection.execute(f"DROP TABLE {source}")
    return metadata


def _publish(context, table_slice: TableSlice, connection, source: str, rows: int) -> dict:
    """Insert the audited rows (the window was deleted by the client) and supersede the window's quarantine."""
    target = f"{table_slice.schema}.{table_slice.table}"
    if _table_exists(connection, table_slice.schema, table_slice.table):
        _add_new_columns(connection, table_slice, source)
        connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}")
    elif rows:
        connection.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}")
    superseded = 0
    if _table_exists(connection, QUARANTINE_SCHEMA, "entries"):
        start, end = window(table_slice)
        within = "" if start is None else " AND window_start >= ? AND window_end <= ?"
        bounds = [] if start is None else [start, end]
        runs = [
            run_id
            for (run_id,) in connection.execute(
                f"UPDATE {ENTRIES} SET superseded_by_run = ?, superseded_at = now() "
                f"WHERE table_name = ? AND superseded_by_run IS NULL{within} RETURNING run_id",
                [context.run_id, table_slice.table, *bounds],
            ).fetchall()
        ]
        superseded = len(runs)
        if runs and _table_exists(connection, QUARANTINE_SCHEMA, table_slice.table):
            quarantined = TableSlice(
                table=table_slice.table,
                schema=QUARANTINE_SCHEMA,
                partition_dimensions=table_slice.partition_dimensions,
            )
            clause = _where(quarantined)
            connection.execute(
                f"DELETE FROM {QUARANTINE_SCHEMA}.{table_slice.table}"
                f"{clause + ' AND' if clause else ' WHERE'} list_contains(?, _wap_run_id)",
                [runs],
            )
    return published(context, table_slice, rows, superseded)


def _add_new_columns(connection, table_slice: TableSlice, source: str) -> None:
    """A column the asset gained since the table was created (e.g. `fuel_flow` of cems_hourly_raw) is added to
    the stored table, NULL in its older rows, inside the publish transaction: a warehouse written by an older
    release keeps its rows and needs no migration by hand."""
    stored = {
        name
        for (name,) in connection.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchall()
    }
    for name, column_type, *_ in connection.execute(f"DESCRIBE {source}").fetchall():
        if name not in stored:
            connection.execute(
                f'ALTER TABLE {table_slice.schema}.{table_slice.table} ADD COLUMN "{name}" {column_type}'
            )


def published(context, table_slice: TableSlice, rows: int, superseded: int) -> dict:
    context.log.info(
        f"{table_slice.schema}.{table_slice.table}: published {rows} audited rows; "
        f"{superseded} quarantine entries superseded"
    )
    return {"wap_status": "published", "wap_superseded_quarantine_entries": superseded}


@dataclass(frozen=True)
class QuarantineEntry:
    """One line of `quarantine.entries`: which run's rows for which window failed which checks."""

    run_id: str
    table_name: str
    partitions: str | None
    window_start: datetime | None
    window_end: datetime | None
    failed_checks: list[str]
    row_count: int
    quarantined_at: datetime

    def values(self) -> list:
        return [getattr(self, field.name) for field in fields(self)]


ENTRY_SELECT = (
    "SELECT ?::VARCHAR AS run_id, ?::VARCHAR AS table_name, ?::VARCHAR AS partitions, "
    "?::TIMESTAMPTZ AS window_start, ?::TIMESTAMPTZ AS window_end, ?::VARCHAR[] AS failed_checks, "
    "?::BIGINT AS row_count, ?::TIMESTAMPTZ AS quarantined_at, "
    "NULL::VARCHAR AS superseded_by_run, NULL::TIMESTAMPTZ AS superseded_at"
)
"""The entry's row, typed as `_ENTRIES_DDL`, for either warehouse."""


def quarantine_entry(context, table_slice: TableSlice, rows: int, failed: list[str]) -> QuarantineEntry:
    start, end = window(table_slice)
    partitions = None
    if context.has_asset_partitions:
        key_range = context.asset_partition_key_range
        partitions = key_range.start if key_range.start == key_range.end else f"{key_range.start}...{key_range.end}"
    return QuarantineEntry(
        context.run_id, table_slice.table, partitions, start, end, list(failed), rows, datetime.now(UTC)
    )


def quarantined(context, table_slice: TableSlice, entry: QuarantineEntry) -> dict:
    quarantine = f"{QUARANTINE_SCHEMA}.{table_slice.table}"
    context.log.warning(
        f"{table_slice.schema}.{table_slice.table}[{entry.partitions or 'all'}]: blocking checks failed "
        f"({', '.join(entry.failed_checks)}); stored rows kept, {entry.row_count} new rows quarantined in {quarantine}"
    )
    return {"wap_status": "quarantined", "wap_quarantine_table": quarantine, "wap_quarantined_rows": entry.row_count}


def _quarantine(context, table_slice: TableSlice, connection, source: str, rows: int, failed: list[str]) -> dict:
    """Keep the rows apart with the run id and failed checks; the stored partition is untouched."""
    quarantine = f"{QUARANTINE_SCHEMA}.{table_slice.table}"
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {QUARANTINE_SCHEMA}")
    connection.execute(_ENTRIES_DDL)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {quarantine} AS SELECT *, ''::VARCHAR AS _wap_run_id, "
        f"now() AS _wap_quarantined_at FROM {source} LIMIT 0"
    )
    entry = quarantine_entry(context, table_slice, rows, failed)
    connection.execute(
        f"INSERT INTO {quarantine} BY NAME SELECT *, ? AS _wap_run_id, ? AS _wap_quarantined_at FROM {source}",
        [context.run_id, entry.quarantined_at],
    )
    connection.execute(f"INSERT INTO {ENTRIES} {ENTRY_SELECT}", entry.values())
    return quarantined(context, table_slice, entry)


def table_name(key: AssetKey) -> str:
    """The warehouse table of an asset: its key's parts joined by `__`, so `<site>/<instance>/readings`
    of two sites or instances land in two tables (`demo_plant__boiler1_opcua__readings`)."""
    return "__".join(key.path)


class InstanceTablesIOManager(DbIOManager):
    """Dagster's DB IO manager, with the table named after the whole asset key, not its last part."""

    def _get_table_slice(self, context, output_context) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        if context.has_asset_key and len(context.asset_key.path) > 1:
            table_slice = table_slice._replace(table=table_name(context.asset_key))
        return table_slice


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
        return [WarehousePandasTypeHandler(), WarehouseStagedRowsTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return InstanceTablesIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="WarehouseIOManager",
        )


def warehouse_io_manager(database: str) -> WarehouseIOManager:
    return WarehouseIOManager(database=database, schema="plant")
