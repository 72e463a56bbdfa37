"""Workday instances: `type: gl_pipelines.components.workday.WorkdayComponent`.

`reports:` (RaaS, typed from the report's `?xsd`) and `collections:` (REST, types declared) are entity-set-like:
name, fields, key, optional date column, required columns, `filter` (extra prompts or query parameters), each
an asset with the OData entity sets' blocking checks (assets/workday.py)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, model_validator

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.assets.workday import DAILY_JOB, build_workday_assets, build_workday_jobs
from gl_pipelines.components.base import InstanceSettings, SourceComponent, env_secret, with_health
from gl_pipelines.resources.workday import WorkdayReport, WorkdayResource, WorkdaySource, workday_from_source
from gl_pipelines.sensors.health import MonitoredSource


class WorkdayInstance(WorkdaySource, InstanceSettings):
    username_env: str | None = Field(default=None, description="Variable holding the integration system user.")
    password_env: str | None = Field(default=None, description="Variable holding the ISU password.")
    client_id_env: str | None = Field(default=None, description="Variable holding the OAuth2 client id.")
    client_secret_env: str | None = Field(default=None, description="Variable holding the OAuth2 client secret.")
    token_env: str | None = Field(default=None, description="Variable holding a bearer token (auth bearer).")

    @model_validator(mode="after")
    def _secrets_named(self) -> WorkdayInstance:
        needed = {
            "basic": ("username_env", "password_env"),
            "oauth2": ("client_id_env", "client_secret_env"),
            "bearer": ("token_env",),
        }
        missing = [name for name in needed[self.auth] if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth {self.auth!r} needs {' and '.join(missing)} (NAMES of environment variables)")
        return self


class WorkdayComponent(SourceComponent):
    """A Workday tenant: one asset per report and collection, dated ones daily on the site's clock."""

    kind = "workday"
    schema = WorkdayInstance
    endpoint_field = "base_url"

    def resource(self) -> WorkdayResource:
        spec = self.spec
        # Errors and the `source` column name the instance unless the YAML names the source itself.
        if "source_name" not in spec.model_fields_set:
            spec = spec.model_copy(update={"source_name": "/".join(self.names.prefix)})
        first = spec.sets()[0]
        # The health probe is the cheapest authenticated read there is: a report's schema, or one worker.
        if isinstance(first, WorkdayReport):
            probe = f"service/customreport2/{spec.tenant}/{first.owner}/{first.report}?xsd"
        else:
            probe = f"api/{first.service}/{spec.tenant}/{first.resource}?limit=1"
        return workday_from_source(spec, self.timezone, health_path=probe, **self.credentials())

    def credentials(self) -> dict[str, dg.EnvVar | None]:
        return {
            "username": env_secret(self.spec.username_env, secret=False),
            "password": env_secret(self.spec.password_env),
            "client_id": env_secret(self.spec.client_id_env, secret=False),
            "client_secret": env_secret(self.spec.client_secret_env),
            "token": env_secret(self.spec.token_env),
        }

    def build(self) -> dg.Definitions:
        names = self.names
        jobs, schedules = build_workday_jobs(self.spec, self.timezone, names)
        definitions = dg.Definitions(
            assets=build_workday_assets(self.spec, self.timezone, names),
            jobs=jobs,
            schedules=schedules,
            resources={names.resource_key: self.resource()},
        )
        dated = [item.name for item in self.spec.sets() if item.date_column]
        if not dated:
            return definitions
        # Health: probe the tenant; a missed plant day of its first dated set is caught up after an outage.
        job = next(job for job in jobs if job.name == names.job(DAILY_JOB))
        watched = MonitoredSource(names.resource_key, names.key(dated[0]), job, site_daily_partitions(self.timezone))
        return with_health(definitions, watched, names)
