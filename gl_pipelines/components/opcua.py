"""OPC UA servers: `defs/<site>/<instance>/defs.yaml` with `type: gl_pipelines.components.opcua.OpcUaComponent`."""

from __future__ import annotations

from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.assets.scada import build_scada_assets
from gl_pipelines.components.base import InstanceSettings, SourceComponent, env_secret, with_health
from gl_pipelines.config import OpcUaSource
from gl_pipelines.resources.opcua import OpcUaResource, redact_url
from gl_pipelines.run_launcher import HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource
from gl_pipelines.sensors.schedules import partition_schedule


class OpcUaInstance(OpcUaSource, InstanceSettings):
    username_env: str | None = Field(default=None, description="Environment variable holding the user name.")
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")


class OpcUaComponent(SourceComponent):
    """One OPC UA server: hourly raw history of its tags, checked, scheduled and health-probed on its own."""

    kind = "opcua"
    schema = OpcUaInstance
    endpoint_field = "endpoint"

    def build(self) -> dg.Definitions:
        return with_health(*opcua_definitions(self.spec, self.site.spec.checks, self.timezone, self.names), self.names)


def chunking(spec: OpcUaSource) -> dict:
    """The resource's chunk size when the instance sets one (else the resource's default)."""
    return {"chunk_values": spec.chunk_values} if spec.chunk_values else {}


def opcua_definitions(spec, thresholds, timezone: str, names, resource=None) -> dg.Definitions:
    """Assets, job, schedule and resource of one OPC UA instance, and what its health sensor watches."""
    hourly = site_hourly_partitions(timezone)
    job = dg.define_asset_job(
        names.job("scada_hourly_job"),
        selection=dg.AssetSelection.assets(names.key("scada_readings")),
        # The instance's run queue allows one run at a time per value of this tag.
        tags={"gl/opcua-server": urlsplit(redact_url(spec.endpoint)).netloc, **max_runtime(HOURLY_JOB_MAX_RUNTIME_S)},
        description="Hourly OPC UA extraction with its blocking checks.",
    )
    monitored = MonitoredSource(names.resource_key, names.key("scada_readings"), job, hourly)
    definitions = dg.Definitions(
        assets=build_scada_assets(spec, thresholds, timezone, names),
        jobs=[job],
        schedules=[partition_schedule(job, hourly, minute_of_hour=5, source_resource_key=names.resource_key)],
        resources={
            names.resource_key: resource
            or OpcUaResource(
                endpoint=spec.endpoint,
                source_name=spec.source_name,
                username=env_secret(spec.username_env, secret=False),
                password=env_secret(spec.password_env),
                **chunking(spec),
            )
        },
    )
    return definitions, monitored
