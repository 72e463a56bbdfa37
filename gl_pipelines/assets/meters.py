"""Modbus meters: a snapshot of every point as each hour closes, and hourly consumption.

Meters keep no history, only the present value and a totalizer. Partition H of `meter_readings`
is the snapshot taken as hour H closes (at or just after H + 1 h, with the actual read time);
`meter_hourly_consumption` for H is the totalizer difference between the snapshots closing H - 1
and H. A snapshot can only be taken live: a past hour is refused, never faked from the present.
"""

from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from gl_pipelines.assets.meter_consumption import Totalizer, hourly_consumption
from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_hourly_partitions, utc_window
from gl_pipelines.assets.provenance import preview_markdown, provenance_metadata
from gl_pipelines.checks.gate import every_upstream_partition_checked, require_checks_passed
from gl_pipelines.checks.meters import METER_READINGS_CHECKS
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import ModbusSource
from gl_pipelines.resources.modbus import RESOURCE_VERSION, ModbusResource
from gl_pipelines.resources.modbus_plan import AddressRange

REFUSED_KEY = "modbus_refused_addresses"
"""Metadata entry: per device, the address ranges it answered "illegal data address" for."""


def snapshot_refusal(partition: str, boundary: datetime, now: datetime, max_delay_s: float) -> str | None:
    """Why a snapshot closing at `boundary` cannot be taken `now`, or None when it can."""
    if now < boundary:
        return f"meter_readings[{partition}]: the hour closes at {boundary.isoformat()}; it is {now.isoformat()}"
    late = (now - boundary).total_seconds()
    if late > max_delay_s:
        return (
            f"meter_readings[{partition}]: the snapshot closing this hour had to be read by "
            f"{(boundary + timedelta(seconds=max_delay_s)).isoformat()}; it is {now.isoformat()}. Modbus meters "
            "keep no history, so a past hour cannot be read and is not faked from the present value"
        )
    return None


def refused_before(context: AssetExecutionContext) -> dict[str, list[AddressRange]]:
    """The addresses the last snapshot found refused (its metadata), so that this run, a new process,
    plans around them from its first request instead of finding them again."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    entry = event.asset_materialization.metadata.get(REFUSED_KEY) if event and event.asset_materialization else None
    if entry is None:
        return {}
    return {device: [AddressRange.parse(text) for text in ranges] for device, ranges in entry.value.items()}


def build_meter_assets(
    source: ModbusSource, timezone: str, names: InstanceNames | None = None
) -> list[AssetsDefinition]:
    names = names or InstanceNames.single("modbus")
    hourly = site_hourly_partitions(timezone)
    readings_key = names.key("meter_readings")
    totalizers = [
        Totalizer(point.name, point.unit, point.rollover * point.scale if point.rollover else None)
        for device in source.devices
        for point in device.points
        if point.totalizer
    ]

    @asset(
        partitions_def=hourly,
        backfill_policy=BackfillPolicy.multi_run(1),
        io_manager_key="warehouse",
        kinds={"modbus", "duckdb"},
        required_resource_keys={names.resource_key},
        **names.asset_args("meters"),
        metadata={"partition_expr": "hour_start"},
        pool=WAREHOUSE_POOL,
        description="Every configured Modbus point, read once as the hour closes (actual read time in `ts`).",
    )
    def meter_readings(context: AssetExecutionContext) -> Output[pd.DataFrame]:
        modbus: ModbusResource = getattr(context.resources, names.resource_key)
        start, end = utc_window(context.partition_time_window)
        if end - start > timedelta(hours=1, minutes=1):
            raise Failure(description="meter_readings: a snapshot is one live read per hour; backfills are refused")
        refusal = snapshot_refusal(context.partition_key, end, datetime.now(UTC), source.max_read_delay_s)
        if refusal:
            raise Failure(description=refusal)
        modbus.remember_refused(refused_before(context))
        snapshot = modbus.read_points()
        frame = snapshot.frame.assign(hour_start=start)
        metadata = provenance_metadata(
            endpoint=", ".join(snapshot.endpoints),
            window=(start, end),
            query=f"{len(frame)} points, {snapshot.requests} Modbus requests",
            payload_sha256=snapshot.payload_sha256,
            resource_version=RESOURCE_VERSION,
            duration_s=snapshot.duration_s,
            frame=frame,
        )
        metadata["read_delay_s"] = round((frame["ts"].min() - end).total_seconds(), 3)
        metadata[REFUSED_KEY] = MetadataValue.json(
            {device: [str(refused) for refused in ranges] for device, ranges in snapshot.refused.items()}
        )
        return Output(frame, metadata=metadata)

    @asset(
        partitions_def=hourly,
        ins={
            "meter_readings": AssetIn(key=readings_key, partition_mapping=TimeWindowPartitionMapping(start_offset=-1))
        },
        io_manager_key="warehouse",
        **names.asset_args("meters"),
        kinds={"pandas", "duckdb"},
        metadata={"partition_expr": "hour_start"},
        pool=WAREHOUSE_POOL,
        automation_condition=AutomationCondition.eager() & every_upstream_partition_checked(),
        description="Per totalizer and hour: consumption pro-rated to the hour; rollover corrected, reset flagged.",
    )
    def meter_hourly_consumption(context: AssetExecutionContext, meter_readings: pd.DataFrame) -> Output[pd.DataFrame]:
        hours = context.asset_partition_keys_for_input("meter_readings")
        require_checks_passed(context, readings_key, METER_READINGS_CHECKS, hours)
        start, end = utc_window(context.partition_time_window)
        starts = pd.to_datetime(meter_readings["hour_start"], utc=True)
        consumption = hourly_consumption(
            meter_readings[starts < start], meter_readings[starts == start], totalizers, (start, end)
        )
        return Output(
            consumption,
            metadata={
                "dagster/row_count": len(consumption),
                "flags": consumption["flag"].value_counts().to_dict(),
                "preview": MetadataValue.md(preview_markdown(consumption)),
            },
        )

    return [meter_readings, meter_hourly_consumption]
