"""GE Proficy Historian instances: `type: gl_pipelines.components.proficy.ProficyComponent`."""

from __future__ import annotations

from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field, model_validator

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.assets.proficy import NAME, build_proficy_assets
from gl_pipelines.components.base import InstanceSettings, SourceComponent, env_secret, with_health
from gl_pipelines.resources.proficy import ProficySource, proficy_from_source
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource
from gl_pipelines.sensors.schedules import partition_schedule


class ProficyInstance(ProficySource, InstanceSettings):
    client_secret_env: str | None = Field(default=None, description="Variable holding the UAA client secret.")
    password_env: str | None = Field(default=None, description="Variable holding the basic-auth password.")

    @model_validator(mode="after")
    def _secrets_named(self) -> ProficyInstance:
        needed = {"basic": "password_env", "oauth2": "client_secret_env"}.get(self.auth_mode)
        if needed and not getattr(self, needed):
            raise ValueError(f"auth_mode {self.auth_mode!r} needs {needed} (the NAME of the environment variable)")
        return self


class ProficyComponent(SourceComponent):
    """A Proficy Historian: raw samples of its tags per plant day, with the historian's readings checks."""

    kind = "proficy"
    schema = ProficyInstance
    endpoint_field = "base_url"

    def build(self) -> dg.Definitions:
        names, daily = self.names, site_daily_partitions(self.timezone)
        resource = proficy_from_source(
            self.spec,
            client_secret=env_secret(self.spec.client_secret_env),
            password=env_secret(self.spec.password_env),
        )
        job = dg.define_asset_job(
            names.job("proficy_daily_job"),
            selection=dg.AssetSelection.assets(names.key(NAME)),
            tags={"gl/proficy-server": urlsplit(self.spec.base_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)},
            description="Daily Proficy Historian extraction of raw samples with its blocking checks.",
        )
        definitions = dg.Definitions(
            assets=build_proficy_assets(self.spec, self.site.spec.checks, self.timezone, names),
            jobs=[job],
            # 01:30 plant time, as PI: late values buffered by collectors have arrived for the closed day.
            schedules=[
                partition_schedule(job, daily, minute_of_hour=30, hour_of_day=1, source_resource_key=names.resource_key)
            ],
            resources={names.resource_key: resource},
        )
        return with_health(definitions, MonitoredSource(names.resource_key, names.key(NAME), job, daily), names)
