"""Modbus TCP instances (a gateway or a set of meters): `type: gl_pipelines.components.modbus.ModbusComponent`."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, model_validator

from gl_pipelines.assets.meters import build_meter_assets
from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.checks.meters import build_meter_checks
from gl_pipelines.components.base import InstanceSettings, SourceComponent, with_health
from gl_pipelines.config import ModbusSource, SiteConfigError
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.run_launcher import HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource
from gl_pipelines.sensors.schedules import partition_schedule


class ModbusInstance(ModbusSource, InstanceSettings):
    endpoint_env: str | None = Field(
        default=None,
        description="Environment variable that, when set at load, holds 'host:port' replacing the address of "
        "every device (tests, demo). The instance is then one gateway: its devices must share one address.",
    )

    @model_validator(mode="after")
    def _one_address_to_move(self) -> ModbusInstance:
        addresses = sorted({f"{device.host}:{device.port}" for device in self.devices})
        if self.endpoint_env and len(addresses) > 1:
            raise ValueError(
                f"endpoint_env {self.endpoint_env!r} would move devices at {', '.join(addresses)} to one address: "
                "declare one instance per gateway"
            )
        return self


class ModbusComponent(SourceComponent):
    """Modbus meters: a snapshot of every point as each hour closes, and the hourly consumption."""

    kind = "modbus"
    schema = ModbusInstance

    @classmethod
    def load(cls, attributes, context: dg.ComponentLoadContext) -> ModbusComponent:
        component = super().load(attributes, context)
        address = address_from_env(component.spec.endpoint_env, component.path)
        if address:
            devices = [device.model_copy(update=address) for device in component.spec.devices]
            component.spec = component.spec.model_copy(update={"devices": devices})
        return component

    def build(self) -> dg.Definitions:
        return with_health(*modbus_definitions(self.spec, self.timezone, self.names), self.names)


def address_from_env(name: str | None, where: Path) -> dict | None:
    """`{"host", "port"}` of a Modbus device from variable `name` ("host:port"), read at load like the other kinds'
    endpoint_env; None when the variable is not set."""
    value = os.environ.get(name) if name else None
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SiteConfigError(f"{where}: field 'endpoint_env': ${name} = {value!r} is not 'host:port' (port 1-65535)")
    return {"host": host.strip("[]"), "port": int(port)}


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
