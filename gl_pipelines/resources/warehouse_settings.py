"""Which warehouse a code location writes: the embedded DuckDB file (default) or the shared Iceberg one.

Its own module so that the DuckDB IO manager (warehouse.py), the shared one (iceberg_warehouse.py) and the
reader (warehouse_reader.py) do not import each other through the choice between them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dagster import AssetSpec, Definitions
from pydantic import BaseModel, Field, model_validator

from gl_pipelines.resources.warehouse import WarehouseIOManager, WarehouseStaging
from gl_pipelines.resources.warehouse_reader import WarehouseReader


class WarehouseSettings(BaseModel):
    """Which warehouse the `warehouse` IO manager and the staging and reader resources use.

    `duckdb` (the default) is one file on this machine: zero setup, one writer at a time (the
    `duckdb_warehouse` pool). `iceberg` is shared: an Iceberg catalog in PostgreSQL and Parquet files under
    `data_path`, written by any number of processes and machines at once (resources/iceberg_warehouse.py).
    """

    kind: Literal["duckdb", "iceberg"] = Field(default="duckdb", description="Embedded file or shared warehouse.")
    path: str = Field(description="The DuckDB warehouse file (kind duckdb).")
    catalog_dsn: str | None = Field(
        default=None, description="postgresql:// DSN of the Iceberg catalog (kind iceberg); no password in it."
    )
    data_path: str | None = Field(
        default=None, description="Folder or object-store URI of the Parquet data files (kind iceberg)."
    )
    schema_name: str = Field(default="plant", description="Schema (namespace) the assets' tables go to.")
    snapshot_retention_hours: float = Field(
        default=168.0, ge=0, description="Kind iceberg: history kept for time travel; older snapshots are expired."
    )

    @model_validator(mode="after")
    def _shared_needs_catalog_and_data(self) -> WarehouseSettings:
        if self.kind == "iceberg":
            missing = [name for name in ("catalog_dsn", "data_path") if not getattr(self, name)]
            if missing:
                raise ValueError(f"warehouse kind iceberg: set {' and '.join(missing)}")
            from gl_pipelines.resources.iceberg_warehouse import catalog_url

            catalog_url(self.catalog_dsn)  # refuses a DSN carrying a password
        return self

    @classmethod
    def from_environment(cls, default_path: str | Path, environ: Mapping[str, str] = os.environ) -> WarehouseSettings:
        """$GL_WAREHOUSE_KIND (duckdb | iceberg), $GL_WAREHOUSE (the file), $GL_ICEBERG_CATALOG, $GL_ICEBERG_DATA,
        $GL_ICEBERG_SNAPSHOT_RETENTION_HOURS."""
        return cls(
            kind=environ.get("GL_WAREHOUSE_KIND", "duckdb"),
            path=environ.get("GL_WAREHOUSE", str(default_path)),
            catalog_dsn=environ.get("GL_ICEBERG_CATALOG"),
            data_path=environ.get("GL_ICEBERG_DATA"),
            snapshot_retention_hours=environ.get("GL_ICEBERG_SNAPSHOT_RETENTION_HOURS", 168.0),
        )

    def kinds(self) -> set[str]:
        """The storage kinds the UI shows on every asset the `warehouse` IO manager stores."""
        return {"duckdb"} if self.kind == "duckdb" else {"iceberg", "parquet"}

    def with_storage_kinds(self, definitions: Definitions) -> Definitions:
        """`definitions` with each asset's `duckdb` kind (how the asset modules name the warehouse) replaced by
        the selected warehouse's kinds, so a site on the shared warehouse does not read as DuckDB in the UI."""
        if self.kind == "duckdb":
            return definitions

        def relabel(spec: AssetSpec) -> AssetSpec:
            if "duckdb" not in spec.kinds:
                return spec
            return spec.replace_attributes(kinds=(spec.kinds - {"duckdb"}) | self.kinds())

        return definitions.map_asset_specs(func=relabel)

    def staging_database(self) -> str:
        """Where audits stage rows: the DuckDB warehouse itself, or for the shared warehouse a scratch file
        of this process (staged rows are private to a step; one file per process keeps writers from waiting
        on each other's DuckDB lock). Deleted once nothing is staged in it."""
        if self.kind == "duckdb":
            return self.path
        return str(Path(tempfile.gettempdir()) / f"gl-staging-{os.getpid()}.duckdb")

    def resources(self) -> dict[str, object]:
        """The `warehouse` IO manager and the `warehouse_staging` and `warehouse_reader` resources."""
        staging = WarehouseStaging(database=self.staging_database())
        if self.kind == "duckdb":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            io_manager: object = WarehouseIOManager(database=self.path, schema=self.schema_name)
            reader = WarehouseReader(database=self.path, schema_name=self.schema_name)
        else:
            # Imported only here: deployments on the DuckDB file never pay for loading pyiceberg.
            from gl_pipelines.resources.iceberg_warehouse import SharedWarehouseIOManager

            shared = {"catalog_dsn": self.catalog_dsn, "data_path": self.data_path}
            io_manager = SharedWarehouseIOManager(
                **shared,
                staging_database=staging.database,
                schema_name=self.schema_name,
                snapshot_retention_hours=self.snapshot_retention_hours,
            )
            reader = WarehouseReader(database=self.path, schema_name=self.schema_name, **shared)
        return {"warehouse": io_manager, "warehouse_staging": staging, "warehouse_reader": reader}
