"""A daily job that expires old snapshots in the shared warehouse.

Writers already expire a table's history after the commit that finds enough of it aged out
(resources/iceberg_warehouse.py); this job reaches the tables nobody writes any more (a retired source, a
quarantine table) so their snapshots and files do not stay forever. Only defined when the shared warehouse is
selected: the DuckDB file keeps no history.
"""

from __future__ import annotations

from dagster import Definitions, ScheduleDefinition, job, op

from gl_pipelines.resources.warehouse_settings import WarehouseSettings

MAINTENANCE_RESOURCE_KEY = "warehouse_maintenance"


@op(required_resource_keys={MAINTENANCE_RESOURCE_KEY})
def expire_warehouse_snapshots(context) -> dict[str, list[int]]:
    """Expire every table's snapshots aged out of the configured history; log what each lost."""
    expired = getattr(context.resources, MAINTENANCE_RESOURCE_KEY).expire()
    for table, (snapshots, files) in sorted(expired.items()):
        if snapshots:
            context.log.info(f"{table}: {snapshots} snapshots expired, {files} files deleted")
    return {table: list(counts) for table, counts in expired.items()}


@job(description="Expires old snapshots and their files in every table of the shared warehouse.")
def warehouse_maintenance_job():
    expire_warehouse_snapshots()


def warehouse_maintenance_definitions(warehouse: WarehouseSettings) -> Definitions:
    """The job, its daily schedule (04:00 UTC) and its resource, for the shared warehouse; nothing otherwise."""
    if warehouse.kind != "iceberg":
        return Definitions()
    from gl_pipelines.resources.iceberg_warehouse import SharedWarehouseMaintenance

    maintenance = SharedWarehouseMaintenance(
        catalog_dsn=warehouse.catalog_dsn,
        data_path=warehouse.data_path,
        snapshot_retention_hours=warehouse.snapshot_retention_hours,
    )
    return Definitions(
        jobs=[warehouse_maintenance_job],
        schedules=[
            ScheduleDefinition(
                name="warehouse_maintenance_schedule",
                job=warehouse_maintenance_job,
                cron_schedule="0 4 * * *",
                execution_timezone="UTC",
            )
        ],
        resources={MAINTENANCE_RESOURCE_KEY: maintenance},
    )
