"""Test helpers for the shared (Iceberg) warehouse: a scratch catalog database, and SQL over its tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg2
import pyarrow as pa
from dagster import DailyPartitionsDefinition, TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice

from gl_pipelines.resources.iceberg_warehouse import SnapshotRetention, open_catalog, replace_slice, scratch_duckdb
from gl_pipelines.resources.warehouse_settings import WarehouseSettings

PG = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def scratch_catalog(data: Path) -> Iterator[WarehouseSettings]:
    """Settings for a shared warehouse in a new PostgreSQL database (dropped after) and `data`."""
    name = f"gl_wh_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{PG}/postgres")
    admin.autocommit = True
    try:
        admin.cursor().execute(f"CREATE DATABASE {name}")
        settings = WarehouseSettings(
            kind="iceberg", path=str(data / "unused.duckdb"), catalog_dsn=f"{PG}/{name}", data_path=str(data)
        )
        try:
            yield settings
        finally:
            open_catalog(settings.catalog_dsn, settings.data_path).engine.dispose()
            open_catalog.cache_clear()
            admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        admin.close()


def read_shared(settings: WarehouseSettings, sql: str) -> pd.DataFrame:
    """`sql` run by DuckDB over every committed table of the shared warehouse, named `schema.table`."""
    catalog = open_catalog(settings.catalog_dsn, settings.data_path)
    connection = scratch_duckdb()
    try:
        for (namespace,) in catalog.list_namespaces():
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
            for identifier in catalog.list_tables(namespace):
                connection.register("rows", catalog.load_table(identifier).scan().to_arrow())
                connection.execute(f"CREATE TABLE {'.'.join(identifier)} AS SELECT * FROM rows")
                connection.unregister("rows")
        return connection.execute(sql).fetchdf()
    finally:
        connection.close()


days = DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")


def write_days(settings: WarehouseSettings, keys: list[str], retention: SnapshotRetention | None = None) -> int:
    """One writer: replace the days `keys` of `plant.metered`, one commit each, with 24 hourly rows whose
    value is the day of the month (a lost or doubled write shows). Returns the number written."""
    catalog = open_catalog(settings.catalog_dsn, settings.data_path)
    for key in keys:
        window = days.time_window_for_partition_key(key)
        hours = [window.start + timedelta(hours=hour) for hour in range(24)]
        rows = pa.table({"ts": pa.array(hours, pa.timestamp("us", tz="UTC")), "value": [float(window.start.day)] * 24})
        dimension = TablePartitionDimension("ts", TimeWindow(window.start, window.end))
        replace_slice(catalog, TableSlice("metered", "plant", partition_dimensions=[dimension]), rows, retention)
    return len(keys)
