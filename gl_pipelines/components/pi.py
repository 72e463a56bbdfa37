"""PI Web API historian instances: `type: gl_pipelines.components.pi.PiComponent`."""

from __future__ import annotations

from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field, model_validator

from gl_pipelines.assets.historian import build_historian_assets
from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.components.base import InstanceSettings, SourceComponent, env_secret, with_health
from gl_pipelines.config import HistorianSource
from gl_pipelines.resources.historian import historian_from_source
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource
from gl_pipelines.sensors.schedules import partition_schedule


class PiInstance(HistorianSource, InstanceSettings):
    password_env: str | None = Field(default=None, description="Variable holding the basic-auth password.")
    token_env: str | None = Field(default=None, description="Variable holding the bearer token.")
    client_secret_env: str | None = Field(default=None, description="Variable holding the OAuth2 client secret.")

    @model_validator(mode="after")
    def _secrets_named(self) -> PiInstance:
        needed = {"basic": "password_env", "bearer": "token_env", "oauth2": "client_secret_env"}.get(self.auth_mode)
        if needed and not getattr(self, needed):
            raise ValueError(f"auth_mode {self.auth_mode!r} needs {needed} (the NAME of the environment variable)")
        return self


class PiComponent(SourceComponent):
    """A PI Web API: recorded values of its points per plant day, checked and scheduled on their own."""

    kind = "pi"
    schema = PiInstance
    endpoint_field = "base_url"

    def build(self) -> dg.Definitions:
        resource = historian_from_source(
            self.spec,
            password=env_secret(self.spec.password_env),
            token=env_secret(self.spec.token_env),
            client_secret=env_secret(self.spec.client_secret_env),
        )
        return with_health(
            *pi_definitions(self.spec, self.site.spec.checks, self.timezone, self.names, resource), self.names
        )


def pi_definitions(
    spec: HistorianSource, thresholds, timezone: str, names, resource
) -> tuple[dg.Definitions, MonitoredSource]:
    daily = site_daily_partitions(timezone)
    job = dg.define_asset_job(
        names.job("historian_daily_job"),
        selection=dg.AssetSelection.assets(names.key("historian_recorded")),
        tags={"gl/pi-server": urlsplit(spec.base_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)},
        description="Daily PI Web API extraction of recorded values with its blocking checks.",
    )
    monitored = MonitoredSource(names.resource_key, names.key("historian_recorded"), job, daily)
    definitions = dg.Definitions(
        assets=build_historian_assets(spec, thresholds, timezone, names),
        jobs=[job],
        # 01:30 plant time: late values buffered by PI interfaces have arrived for the closed day.
        schedules=[
            partition_schedule(job, daily, minute_of_hour=30, hour_of_day=1, source_resource_key=names.resource_key)
        ],
        resources={names.resource_key: resource},
    )
    return definitions, monitored
