"""The shared warehouse: Apache Iceberg tables, catalog in PostgreSQL, Parquet data files under a data path.

Chosen over DuckLake (which the design named) because DuckLake ships as a DuckDB extension built for one
DuckDB release: the builds on PyPI stop at 1.5.5 and this project runs DuckDB 2.0, which refuses them.
Iceberg is an open table format kept by the Apache project, written and read here by pyiceberg (pure
Python over pyarrow), so a DuckDB upgrade never locks the warehouse; DuckDB stays the engine that runs the
reports' SQL, over the Arrow rows a scan returns.

Several processes or machines write at once: each partition write is one Iceberg commit (delete the window's
files, add the new ones) made by a compare-and-swap on the table's row in the PostgreSQL catalog. A writer
that loses the race commits again on the table's newest state, so each write stays atomic and idempotent and
no pool slot is needed. Files written for a commit that did not land are never referenced: readers only ever
see committed snapshots.

A window is published as a stream: DuckDB hands its rows over in Arrow record batches, they are written as
Parquet data files of `PUBLISH_BATCH_ROWS` rows as they arrive, and one commit deletes the window and adds
every file. Only one file's rows are in memory, whatever the window's size, and the replace stays one commit.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pandas as pd
import pyarrow as pa
from dagster import ConfigurableIOManagerFactory, ConfigurableResource
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, DbTypeHandler, TableSlice
from pydantic import Field
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, ValidationException
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.table.update.snapshot import ExpireSnapshots
from pyiceberg.types import DateType
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.resources.warehouse import (
    ENTRIES,
    ENTRY_SELECT,
    QUARANTINE_SCHEMA,
    InstanceTablesIOManager,
    StagedRows,
    audit_verdict,
    connect_warehouse,
    published,
    quarantine_entry,
    quarantined,
    window,
)

COMMIT_ATTEMPTS = 30
"""Commits retried after a concurrent writer won the race; 30 covers dozens of writers on one table."""
METADATA_VERSIONS_KEPT = 20
"""Table metadata files kept besides the current one; Iceberg deletes older ones at each commit."""
TABLE_PROPERTIES = {
    TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED: "true",
    TableProperties.METADATA_PREVIOUS_VERSIONS_MAX: str(METADATA_VERSIONS_KEPT),
}
"""Every partition replace writes a metadata file: without these a year of hourly partitions leaves 8,760."""
PUBLISH_BATCH_ROWS = 1_000_000
"""Rows per Arrow record batch, and per Parquet data file, when a window is written: the publish holds one batch
in memory, as the extraction holds one chunk (OpcUaResource.chunk_values has the same default)."""


@dataclass(frozen=True)
class SnapshotRetention:
    """How much history a table keeps: every snapshot younger than `hours` (time travel reaches that far back),
    and the current one. Once `expire_every` snapshots have aged out, the commit that notices expires them."""

    hours: float
    expire_every: int = 50


def catalog_url(dsn: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL catalog DSN, refusing one that carries a password.

    The DSN is resource config (shown in the UI, stored with each run): libpq reads the password from
    PGPASSWORD or ~/.pgpass at connect time instead.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgresql+psycopg2", "postgres"):
        raise ValueError(f"iceberg catalog: expected a postgresql:// DSN, got scheme {parts.scheme!r}")
    if parts.password:
        raise ValueError(
            "iceberg catalog: the DSN carries a password; remove it and set PGPASSWORD (or ~/.pgpass) instead"
        )
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; dagster-postgres ships psycopg2.
    return "postgresql+psycopg2://" + dsn.split("://", 1)[1]


def data_location(data_path: str) -> str:
    """A location pyiceberg's FileIO accepts: object-store URIs as given, local folders as absolute file URIs."""
    if "://" in data_path:
        return data_path
    folder = Path(data_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def _racing() -> Retrying:
    """Retries for creating what another process may be creating at the same moment (catalog tables,
    namespaces, tables): the loser's INSERT or CREATE fails on a unique key, and its retry finds the winner's."""
    return Retrying(
        retry=retry_if_exception_type(DBAPIError),
        stop=stop_after_attempt(5),
        wait=wait_exponential_jitter(multiplier=0.1, max=1.0),
        reraise=True,
    )


@functools.cache
def open_catalog(dsn: str, data_path: str) -> Catalog:
    """One catalog (one SQLAlchemy connection pool) per process and warehouse."""
    return _racing()(SqlCatalog, "gl", uri=catalog_url(dsn), warehouse=data_location(data_path))


def commit(
    catalog: Catalog, identifier: str, change: Callable[[Table], None], retention: SnapshotRetention | None = None
) -> None:
    """Apply `change` to the table's newest snapshot, again on a fresh load when another writer committed first
    (the catalog's swap failed) or added rows in the window being replaced (pyiceberg's conflict check).
    With `retention`, then expire the table's old snapshots once enough have aged out."""
    for attempt in _committing():
        with attempt:
            table = catalog.load_table(identifier)
            change(table)
    if retention is not None:
        expire_if_due(catalog, table, retention)


def expire_if_due(catalog: Catalog, table: Table, retention: SnapshotRetention) -> None:
    """Expire once `retention.expire_every` snapshots have aged out: one cleanup per so many commits, not each."""
    if len(aged_snapshots(table, retention.hours)) >= retention.expire_every:
        expire_snapshots(catalog, ".".join(table.name()), retention.hours)


def _committing() -> Retrying:
    """Retried on a fresh load: a lost catalog swap, pyiceberg's conflict check, or a file of the snapshot the
    attempt started from deleted by a concurrent expiry (only with a history shorter than the attempt)."""
    return Retrying(
        retry=retry_if_exception_type((CommitFailedException, ValidationException, FileNotFoundError)),
        stop=stop_after_attempt(COMMIT_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
        reraise=True,
    )


def aged_snapshots(table: Table, hours: float) -> list[int]:
    """Ids of the snapshots that stopped being current more than `hours` ago: time travel to any moment of the
    last `hours` finds the snapshot that was current then, and the snapshot a writer started from a moment ago
    is never among them. Never the current one, nor a branch or tag head."""
    cutoff = (datetime.now(UTC) - timedelta(hours=hours)).timestamp() * 1000
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    log = table.metadata.snapshot_log
    replaced_at = {entry.snapshot_id: later.timestamp_ms for entry, later in zip(log, log[1:], strict=False)}
    return [
        snapshot.snapshot_id
        for snapshot in table.metadata.snapshots
        if snapshot.snapshot_id not in protected
        and replaced_at.get(snapshot.snapshot_id, snapshot.timestamp_ms) < cutoff
    ]


def expire_snapshots(catalog: Catalog, identifier: str, hours: float) -> tuple[int, int]:
    """Expire the table's snapshots aged out of `hours` (pyiceberg's ExpireSnapshots), then delete the files only
    they reached: manifest lists, manifests and data files. Returns (snapshots expired, files deleted).

    Safe beside concurrent writers: the expiry is a catalog swap like any commit (recomputed on a fresh load
    when a writer got in first), the current snapshot is never expired, and a writer's next commit builds on
    the current snapshot, so a deleted file is never referenced again. Only a reader still scanning a snapshot
    replaced more than `hours` ago could miss a file."""
    expired: list[int] = []
    unreferenced: set[str] = set()

    def expire(table: Table) -> None:
        expired[:] = aged_snapshots(table, hours)
        unreferenced.clear()
        if not expired:
            return
        kept = [snapshot for snapshot in table.metadata.snapshots if snapshot.snapshot_id not in expired]
        gone = [snapshot for snapshot in table.metadata.snapshots if snapshot.snapshot_id in expired]
        unreferenced.update(_files(table, gone) - _files(table, kept))
        with table.transaction() as transaction:
            transaction.set_properties(TABLE_PROPERTIES)  # tables created before the properties were set
            ExpireSnapshots(transaction).by_ids(expired).commit()

    for attempt in _committing():
        with attempt:
            expire(catalog.load_table(identifier))
    io = catalog.load_table(identifier).io
    for path in unreferenced:
        with suppress(FileNotFoundError):  # a concurrent expiry of the same snapshots deleted it first
            io.delete(path)
    return len(expired), len(unreferenced)


def expire_all(catalog: Catalog, hours: float) -> dict[str, tuple[int, int]]:
    """`expire_snapshots` on every table of the catalog: (snapshots expired, files deleted) by table."""
    return {
        ".".join(identifier): expire_snapshots(catalog, ".".join(identifier), hours)
        for namespace in catalog.list_namespaces()
        for identifier in catalog.list_tables(namespace)
    }


def _files(table: Table, snapshots) -> set[str]:
    """Every file the snapshots reach; a manifest's deleted entries count too, so nothing in use is deleted."""
    files: set[str] = set()
    manifests: dict[str, object] = {}
    for snapshot in snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            manifests.setdefault(manifest.manifest_path, manifest)
    for path, manifest in manifests.items():
        files.add(path)
        files.update(
            entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        )
    return files


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    _racing()(catalog.create_namespace_if_not_exists, namespace)


def ensure_table(catalog: Catalog, identifier: str, schema: pa.Schema) -> Table:
    ensure_namespace(catalog, identifier.rsplit(".", 1)[0])
    return _racing()(catalog.create_table_if_not_exists, identifier, schema=schema, properties=TABLE_PROPERTIES)


def load_table(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def to_arrow(connection: duckdb.DuckDBPyConnection, query: str, parameters: Sequence = (), **relations) -> pa.Table:
    """`query` over the named frames or Arrow tables, as Arrow through DuckDB: column types are the ones the
    DuckDB warehouse file would get. Zoned timestamps come out in UTC, the only zone Iceberg stores."""
    for name, relation in relations.items():
        connection.register(name, relation)
    try:
        rows = connection.sql(query, params=list(parameters)).to_arrow_table()
    finally:
        for name in relations:
            connection.unregister(name)
    return rows.cast(iceberg_schema(rows.schema))


def typed_for_iceberg(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """`reader`'s batches typed as `to_arrow` types a table, cast one by one as they are read."""
    schema = iceberg_schema(reader.schema)
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in reader))


def iceberg_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([_iceberg_timestamp(field) if pa.types.is_timestamp(field.type) else field for field in schema])


def _iceberg_timestamp(field: pa.Field) -> pa.Field:
    """Zoned timestamps labelled UTC (the same instants), in microseconds: Iceberg v2 stores nothing finer, and
    the cast refuses (rather than truncates) a value that has nanoseconds."""
    unit = "us" if field.type.unit == "ns" else field.type.unit
    return pa.field(field.name, pa.timestamp(unit, "UTC" if field.type.tz else None), field.nullable)


def scratch_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB, on the session time zone a connection to the DuckDB file has, so readers get
    the same pandas types from either warehouse."""
    return duckdb.connect(config={"custom_user_agent": "gl-pipelines"})


def slice_filter(table: Table, table_slice: TableSlice) -> BooleanExpression:
    """The Iceberg row filter of a slice: time windows as absolute instants (plant days for DATE columns),
    static partitions by value."""
    clauses: list[BooleanExpression] = []
    for dimension in table_slice.partition_dimensions or []:
        column = dimension.partition_expr
        try:
            field = table.schema().find_field(column)
        except ValueError as error:
            raise ValueError(
                f"{table_slice.schema}.{table_slice.table}: partition_expr {column!r} must name a column of the "
                "table in the shared warehouse"
            ) from error
        if isinstance(dimension.partitions, TimeWindow):
            start, end = dimension.partitions
            if isinstance(field.field_type, DateType):
                bounds: tuple[str, str] = (start.date().isoformat(), end.date().isoformat())
            else:
                bounds = (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat())
            clauses += [GreaterThanOrEqual(column, bounds[0]), LessThan(column, bounds[1])]
        else:
            keys = list(dimension.partitions)
            clauses.append(EqualTo(column, keys[0]) if len(keys) == 1 else In(column, keys))
    if not clauses:
        return AlwaysTrue()
    return clauses[0] if len(clauses) == 1 else And(*clauses)


def read_slice(catalog: Catalog, table_slice: TableSlice) -> pa.Table | None:
    """The slice's committed rows (its columns only), or None when the table does not exist yet."""
    table = load_table(catalog, f"{table_slice.schema}.{table_slice.table}")
    if table is None:
        return None
    fields = tuple(table_slice.columns) if table_slice.columns else ("*",)
    return table.scan(row_filter=slice_filter(table, table_slice), selected_fields=fields).to_arrow()


def replace_slice(
    catalog: Catalog,
    table_slice: TableSlice,
    rows: pa.Table | pa.RecordBatchReader,
    retention: SnapshotRetention | None = None,
    rows_per_file: int = PUBLISH_BATCH_ROWS,
) -> int:
    """Replace the slice's rows with `rows` in one commit (creating the table on the first write), then expire
    old snapshots by `retention`. `rows` may be a stream: it is written to data files of `rows_per_file` rows
    one at a time, then one commit deletes the window and adds the files, so readers see the old rows or the
    new, never part. Returns the rows written."""
    identifier = f"{table_slice.schema}.{table_slice.table}"
    batches = iter(rows.to_batches() if isinstance(rows, pa.Table) else rows)
    first = next((batch for batch in batches if batch.num_rows), None)
    table = load_table(catalog, identifier)
    if table is None:
        if first is None:
            return 0  # as the DuckDB warehouse: no table until there is a row to type it
        table = ensure_table(catalog, identifier, rows.schema)
    # An empty window deletes only: its typeless frame need not match the table's columns.
    files = (
        [] if first is None else write_data_files(table, rows.schema, itertools.chain([first], batches), rows_per_file)
    )

    def overwrite(table: Table) -> None:
        with table.transaction() as transaction, warnings.catch_warnings():
            # pyiceberg warns when the window had no rows yet, as on every first write of a partition.
            warnings.filterwarnings("ignore", "Delete operation did not match any records", UserWarning)
            transaction.delete(slice_filter(table, table_slice))
            add_data_files(transaction, files)

    commit_files(catalog, identifier, files, overwrite)
    if retention is not None:
        expire_if_due(catalog, catalog.load_table(identifier), retention)
    return sum(file.record_count for file in files)


def write_data_files(
    table: Table, schema: pa.Schema, batches: Iterable[pa.RecordBatch], rows_per_file: int = PUBLISH_BATCH_ROWS
) -> list[DataFile]:
    """Write the batches to Parquet data files of `table`, `rows_per_file` rows each, as they arrive and before
    any commit: nothing references them until a commit adds them. Serial on purpose: pyiceberg's own stream
    write (Transaction.append of a RecordBatchReader) hands every batch to its thread pool at once, so a fast
    reader fills memory. Files already written are deleted when a batch fails, and a schema that does not fit
    the table is refused before any file is written. (The two steps are Transaction.overwrite's own.)"""
    identifier = ".".join(table.name())
    try:
        _check_pyarrow_schema_compatible(
            table.schema(), provided_schema=schema, format_version=table.metadata.format_version
        )
    except ValueError as error:  # a column's type differs from the stored table's
        raise ValueError(f"{identifier}: the new rows do not fit the stored table, nothing written: {error}") from error
    files: list[DataFile] = []
    write_uuid, counter = uuid.uuid4(), itertools.count()
    try:
        for rows in in_files_of(schema, batches, rows_per_file):
            files += _dataframe_to_data_files(table.metadata, rows, table.io, write_uuid, counter)
    except BaseException:
        delete_data_files(table.io, files)
        raise
    return files


def in_files_of(schema: pa.Schema, batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The batches regrouped into tables of `rows` rows (the last one shorter), without copying: DuckDB hands
    over a stream in batches of its own row groups (about 120,000 rows), whatever size is asked."""
    group: list[pa.RecordBatch] = []
    grouped = 0
    for batch in batches:
        while batch.num_rows:
            taken = batch.slice(0, rows - grouped)
            group.append(taken)
            grouped += taken.num_rows
            batch = batch.slice(taken.num_rows)
            if grouped == rows:
                yield pa.Table.from_batches(group, schema)
                group, grouped = [], 0
    if grouped:
        yield pa.Table.from_batches(group, schema)


def add_data_files(transaction: Transaction, files: Sequence[DataFile]) -> None:
    """Add the written files to the transaction as one append snapshot."""
    if not files:
        return
    with transaction.update_snapshot().fast_append() as appended:
        for file in files:
            appended.append_data_file(file)


def delete_data_files(io: FileIO, files: Iterable[DataFile]) -> None:
    for file in files:
        with suppress(FileNotFoundError):
            io.delete(file.file_path)


def commit_files(
    catalog: Catalog,
    identifier: str,
    files: Sequence[DataFile],
    change: Callable[[Table], None],
) -> None:
    """`commit` a change that adds `files`; when it is refused for good (every retry lost the race), the files
    are deleted: the refusal means the commit did not land, so nothing references them."""
    try:
        commit(catalog, identifier, change)
    except (CommitFailedException, ValidationException):
        delete_data_files(catalog.load_table(identifier).io, files)
        raise


def append(catalog: Catalog, identifier: str, rows: pa.Table, retention: SnapshotRetention | None = None) -> None:
    ensure_table(catalog, identifier, rows.schema)
    commit(catalog, identifier, lambda table: table.append(rows), retention)


class IcebergConnection:
    """What the IO manager hands its type handler: the catalog, and a DuckDB for type conversions."""

    def __init__(
        self,
        catalog: Catalog,
        staging_database: str,
        retention: SnapshotRetention,
        batch_rows: int = PUBLISH_BATCH_ROWS,
    ):
        self.catalog = catalog
        self.staging_database = staging_database
        self.retention = retention
        self.batch_rows = batch_rows
        self.duckdb = scratch_duckdb()


class IcebergClient(DbClient):
    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[IcebergConnection]:
        config = context.resource_config
        connection = IcebergConnection(
            open_catalog(config["catalog_dsn"], config["data_path"]),
            config["staging_database"],
            SnapshotRetention(config["snapshot_retention_hours"], config["expire_every"]),
            config["publish_batch_rows"],
        )
        try:
            yield connection
        finally:
            connection.duckdb.close()

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection: IcebergConnection) -> None:
        ensure_namespace(connection.catalog, table_slice.schema)

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection: IcebergConnection) -> None:
        """Nothing here: the type handler deletes the window and adds the rows in one commit."""

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        return f"SELECT {columns} FROM {table_slice.schema}.{table_slice.table} (iceberg scan)"


def remove_if_empty(database: str) -> None:
    """Delete a per-process staging file once nothing is staged in it (see WarehouseSettings.staging_database)."""
    connection = duckdb.connect(database)
    try:
        left = connection.execute("select count(*) from information_schema.tables").fetchall()[0][0]
    finally:
        connection.close()
    if not left:
        for path in (database, f"{database}.wal"):
            if os.path.exists(path):
                os.remove(path)


@dataclass
class NewRows:
    """The rows an output stores, in DuckDB: the audit's staging table, or the asset's frame registered there.
    Read as a stream of record batches, never as one table."""

    connection: duckdb.DuckDBPyConnection | None
    """None when nothing was read at all (a frame without columns, which DuckDB cannot scan)."""
    relation: str
    count: int
    batch_rows: int
    streams: list[pa.RecordBatchReader] = field(default_factory=list)

    def batches(self, extra_columns: str = "", parameters: Sequence = ()) -> pa.RecordBatchReader | None:
        """The rows, with `extra_columns` (SQL select items taking `parameters`) after theirs."""
        if self.connection is None:
            return None
        columns = f"*, {extra_columns}" if extra_columns else "*"
        query = self.connection.sql(f"SELECT {columns} FROM {self.relation}", params=list(parameters))
        self.streams.append(query.to_arrow_reader(self.batch_rows))
        return typed_for_iceberg(self.streams[-1])

    def close(self) -> None:
        """End the streams not read to the end (a write that failed): DuckDB runs nothing else on the connection
        while a result is open."""
        for stream in self.streams:
            stream.close()


@contextmanager
def new_rows(obj: pd.DataFrame | StagedRows, staged: str | None, connection: IcebergConnection) -> Iterator[NewRows]:
    """The output's rows: from the audit's staging file when it staged them (the table is dropped afterwards,
    stored or not: a failed step re-extracts), else the frame."""
    if staged is None:
        if obj.columns.empty:
            yield NewRows(None, "", 0, connection.batch_rows)
            return
        connection.duckdb.register("new_rows", obj)
        rows = NewRows(connection.duckdb, "new_rows", len(obj), connection.batch_rows)
        try:
            yield rows
        finally:
            rows.close()
            connection.duckdb.unregister("new_rows")
        return
    # Capped by $GL_DUCKDB_MEMORY_LIMIT like every warehouse connection: the scan spills rather than grows.
    staging = connect_warehouse(connection.staging_database)
    rows = NewRows(staging, staged, 0, connection.batch_rows)
    try:
        rows.count = staging.execute(f"SELECT count(*) FROM {staged}").fetchall()[0][0]
        yield rows
    finally:
        rows.close()
        staging.execute(f"DROP TABLE IF EXISTS {staged}")
        staging.close()
        remove_if_empty(connection.staging_database)


class IcebergPandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Write-audit-publish on the shared warehouse, as WarehousePandasTypeHandler does on the DuckDB file."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame, StagedRows]  # StagedRows: rows a chunked audit staged (`new_rows` reads them)

    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection: IcebergConnection):
        verdict = audit_verdict(context) or {"failed_checks": [], "staged_table": None}
        with new_rows(obj, verdict["staged_table"], connection) as rows:
            if verdict["failed_checks"]:
                metadata = self._quarantine(context, table_slice, connection, rows, verdict["failed_checks"])
            else:
                batches = rows.batches()
                replace_slice(
                    connection.catalog,
                    table_slice,
                    pa.table({}) if batches is None else batches,  # nothing read: the window is emptied
                    connection.retention,
                    connection.batch_rows,
                )
                superseded = self._supersede(context, table_slice, connection)
                metadata = published(context, table_slice, rows.count, superseded)
        count = {"partition_row_count" if context.has_partition_key else "row_count": rows.count}
        context.add_output_metadata({**count, "storage_kind": "iceberg"})
        return metadata

    def load_input(self, context, table_slice: TableSlice, connection: IcebergConnection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        rows = read_slice(connection.catalog, table_slice)
        if rows is None:
            return pd.DataFrame()  # nothing published yet, as on the DuckDB file
        connection.duckdb.register("rows", rows)
        return connection.duckdb.execute("SELECT * FROM rows").fetchdf()

    @staticmethod
    def _quarantine(context, table_slice: TableSlice, connection: IcebergConnection, rows: NewRows, failed) -> dict:
        """The rows first, then their entry: an entry never points to rows that are not there (see
        settle_quarantine for a crash between the two commits)."""
        entry = quarantine_entry(context, table_slice, rows.count, failed)
        tagged = rows.batches(
            "?::VARCHAR AS _wap_run_id, ?::TIMESTAMPTZ AS _wap_quarantined_at", [context.run_id, entry.quarantined_at]
        )
        settle_quarantine(
            connection.catalog, table_slice, context.run_id, finished_runs(context), tagged, connection.batch_rows
        )
        entry_row = to_arrow(connection.duckdb, ENTRY_SELECT, entry.values())
        append(connection.catalog, ENTRIES, entry_row, connection.retention)
        return quarantined(context, table_slice, entry)

    @staticmethod
    def _supersede(context, table_slice: TableSlice, connection: IcebergConnection) -> int:
        """Mark the window's open quarantine entries superseded by this run, then delete their rows."""
        if load_table(connection.catalog, ENTRIES) is None:
            return 0
        start, end = window(table_slice)
        open_entries = open_entry_filter(table_slice.table)
        if start is not None:
            open_entries = And(
                open_entries,
                GreaterThanOrEqual("window_start", start.isoformat()),
                LessThanOrEqual("window_end", end.isoformat()),
            )
        runs: list[str] = []

        def supersede(table: Table) -> None:
            found = table.scan(row_filter=open_entries).to_arrow()
            runs[:] = found.column("run_id").to_pylist()
            if runs:
                marked = to_arrow(
                    connection.duckdb,
                    "SELECT * REPLACE (?::VARCHAR AS superseded_by_run, now() AS superseded_at) FROM found",
                    [context.run_id],
                    found=found,
                )
                table.overwrite(marked.cast(table.schema().as_arrow()), overwrite_filter=open_entries)

        commit(connection.catalog, ENTRIES, supersede, connection.retention)
        settle_quarantine(connection.catalog, table_slice, context.run_id, finished_runs(context))
        return len(runs)


def open_entry_filter(table_name: str) -> BooleanExpression:
    return And(EqualTo("table_name", table_name), IsNull("superseded_by_run"))


def finished_runs(context) -> Callable[[str], bool]:
    """Whether a run has ended, by the Dagster instance (a run it does not know counts as ended)."""
    instance = context.step_context.instance

    def finished(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is None or run.is_finished

    return finished


def settle_quarantine(
    catalog: Catalog,
    table_slice: TableSlice,
    run_id: str,
    finished: Callable[[str], bool],
    add: pa.Table | pa.RecordBatchReader | None = None,
    rows_per_file: int = PUBLISH_BATCH_ROWS,
) -> None:
    """In one commit on `quarantine.<table>`: delete the window's rows that no open entry points to, and add
    `add` (this run's rows). A quarantine is two commits, rows then entry, because Iceberg commits one table
    at a time; a crash between them leaves rows without an entry. Such rows are deleted by the next run of
    the window, which also deletes the rows of superseded entries. Rows of a run still going are kept (its
    entry may be on its way), except this run's own from an earlier attempt."""
    identifier = f"{QUARANTINE_SCHEMA}.{table_slice.table}"
    files: list[DataFile] = []
    if add is not None:
        table = ensure_table(catalog, identifier, add.schema)
        batches = add.to_batches() if isinstance(add, pa.Table) else add
        files = write_data_files(table, add.schema, batches, rows_per_file)
    elif load_table(catalog, identifier) is None:
        return
    quarantine = TableSlice(table_slice.table, QUARANTINE_SCHEMA, partition_dimensions=table_slice.partition_dimensions)

    def settle(table: Table) -> None:
        in_window = slice_filter(table, quarantine)
        runs = set(table.scan(row_filter=in_window, selected_fields=("_wap_run_id",)).to_arrow()[0].to_pylist())
        # Ended before the entries are read, so an ended run's entry, if it wrote one, is in what is read.
        ended = {run for run in runs if run == run_id or finished(run)}
        stale = ended - open_runs(catalog, table_slice.table) | ({run_id} & runs)
        if not stale and not files:
            return
        with table.transaction() as transaction, warnings.catch_warnings():
            # pyiceberg warns when a delete matches nothing, as when a concurrent run settled these rows first.
            warnings.filterwarnings("ignore", "Delete operation did not match any records", UserWarning)
            if stale:
                transaction.delete(And(in_window, In("_wap_run_id", sorted(stale))))
            add_data_files(transaction, files)

    commit_files(catalog, identifier, files, settle)


def open_runs(catalog: Catalog, table_name: str) -> set[str]:
    """The runs with an open quarantine entry for the table."""
    entries = load_table(catalog, ENTRIES)
    if entries is None:
        return set()
    found = entries.scan(row_filter=open_entry_filter(table_name), selected_fields=("run_id",)).to_arrow()
    return set(found[0].to_pylist())


class SharedWarehouseMaintenance(ConfigurableResource):
    """Expires the history of every table in the shared warehouse, also of tables no writer touches any more."""

    catalog_dsn: str = Field(description="postgresql:// DSN of the Iceberg catalog database, without a password.")
    data_path: str = Field(description="Folder or object-store URI of the tables' Parquet files.")
    snapshot_retention_hours: float = Field(
        default=168.0, ge=0, description="History kept for time travel, as the `warehouse` IO manager keeps it."
    )

    def expire(self) -> dict[str, tuple[int, int]]:
        return expire_all(open_catalog(self.catalog_dsn, self.data_path), self.snapshot_retention_hours)


class SharedWarehouseIOManager(ConfigurableIOManagerFactory):
    """The `warehouse` IO manager on Iceberg: same tables, windows and write-audit-publish as the DuckDB file."""

    catalog_dsn: str = Field(
        description="postgresql:// DSN of the Iceberg catalog database, without a password (set PGPASSWORD)."
    )
    data_path: str = Field(description="Folder or object-store URI (s3://...) for the tables' Parquet files.")
    staging_database: str = Field(description="DuckDB file this process stages audited rows in (WarehouseStaging).")
    schema_name: str = Field(default="plant", description="Namespace the assets' tables are written to.")
    snapshot_retention_hours: float = Field(
        default=168.0,
        ge=0,
        description="History kept for time travel: snapshots younger than this survive expiry (the current always).",
    )
    expire_every: int = Field(
        default=50, ge=1, description="Expire a table's old snapshots once this many have aged out of the history."
    )
    publish_batch_rows: int = Field(
        default=PUBLISH_BATCH_ROWS,
        ge=1,
        description="Rows per Arrow record batch (and Parquet data file) when a window is written: the publish "
        "holds one batch in memory, and still replaces the window in one commit.",
    )

    def create_io_manager(self, context) -> DbIOManager:
        return InstanceTablesIOManager(
            db_client=IcebergClient(),
            database=urlsplit(self.catalog_dsn).hostname or "catalog",
            schema=self.schema_name,
            type_handlers=[IcebergPandasTypeHandler()],
            default_load_type=pd.DataFrame,
            io_manager_name="SharedWarehouseIOManager",
        )
