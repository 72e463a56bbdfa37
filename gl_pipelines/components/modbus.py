"""Modbus TCP instances (a gateway or a set of meters): `type: gl_pipelines.components.modbus.ModbusComponent`."""

from __future__ import annotations

import dagster as dg

from gl_pipelines.assets.meters import build_meter_assets
from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.checks.meters import build_meter_checks
from gl_pipelines.components.base import InstanceSettings, SourceComponent, with_health
from gl_pipelines.config import ModbusSource
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.run_launcher import HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource
from gl_pipelines.sensors.schedules import partition_schedule


class ModbusInstance(ModbusSource, InstanceSettings):
    pass


class ModbusComponent(SourceComponent):
    """Modbus meters: a snapshot of every point as each hour closes, and the hourly consumption."""

    kind = "modbus"
    schema = ModbusInstance

    def build(self) -> dg.Definitions:
        return with_health(*modbus_definitions(self.spec, self.timezone, self.names), self.names)


def modbus_definitions(spec: ModbusSource, timezone: str, names) -> tuple[dg.Definitions, MonitoredSource]:
    hourly = site_hourly_partitions(timezone)
    job = dg.define_asset_job(
        names.job("meter_hourly_job"),
        selection=dg.AssetSelection.assets(names.key("meter_readings")),
        tags={"gl/modbus-device": spec.source_name, **max_runtime(HOURLY_JOB_MAX_RUNTIME_S)},
        description="The snapshot of every Modbus point as the hour closes, with its blocking checks.",
    )
    monitored = MonitoredSource(names.resource_key, names.key("meter_readings"), job, hourly, catch_up=False)
    definitions = dg.Definitions(
        assets=build_meter_assets(spec, timezone, names),
        asset_checks=build_meter_checks(spec, timezone, names),
        jobs=[job],
        # Minute 0: a meter snapshot should be as close to the hour boundary as the daemon allows.
        schedules=[partition_schedule(job, hourly, minute_of_hour=0, source_resource_key=names.resource_key)],
        resources={names.resource_key: ModbusResource.from_source(spec)},
    )
    return definitions, monitored
