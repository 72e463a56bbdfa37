"""OData (SAP Gateway) ERP instances: `type: gl_pipelines.components.odata.ODataComponent`.

Any entity set becomes an asset by YAML alone (`entity_sets:`); the fixed roles the reports read
(fuel_receipts, production, materials, plants) stay available for the site file."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, model_validator

from gl_pipelines.assets.erp import build_erp_assets, build_erp_jobs, dated_asset_names
from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.components.base import InstanceSettings, SourceComponent, env_secret, with_health
from gl_pipelines.config import ErpSource
from gl_pipelines.resources.erp import erp_from_source
from gl_pipelines.sensors.erp_changes import build_erp_change_sensor
from gl_pipelines.sensors.health import MonitoredSource


class ODataInstance(ErpSource, InstanceSettings):
    client_id_env: str | None = Field(default=None, description="Variable holding the OAuth2 client id.")
    client_secret_env: str | None = Field(default=None, description="Variable holding the OAuth2 client secret.")
    username_env: str | None = Field(default=None, description="Variable holding the basic-auth user.")
    password_env: str | None = Field(default=None, description="Variable holding the basic-auth password.")

    @model_validator(mode="after")
    def _secrets_named(self) -> ODataInstance:
        needed = {"oauth2": ("client_id_env", "client_secret_env"), "basic": ("username_env", "password_env")}
        missing = [name for name in needed.get(self.auth, ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth {self.auth!r} needs {' and '.join(missing)} (NAMES of environment variables)")
        return self


class ODataComponent(SourceComponent):
    """An OData v2 service: one asset per entity set, dated sets daily on the site's clock, others refreshed whole."""

    kind = "odata"
    schema = ODataInstance
    endpoint_field = "service_url"

    def build(self) -> dg.Definitions:
        resource = erp_from_source(
            self.spec,
            self.timezone,
            client_id=env_secret(self.spec.client_id_env, secret=False),
            client_secret=env_secret(self.spec.client_secret_env),
            username=env_secret(self.spec.username_env, secret=False),
            password=env_secret(self.spec.password_env),
        )
        definitions = odata_definitions(self.spec, self.timezone, self.names, resource)
        dated = dated_asset_names(self.spec)
        if not dated:
            return definitions
        # Health: probe the service; a missed plant day of its first dated set is caught up after an outage.
        job = next(job for job in definitions.jobs if job.name == self.names.job("erp_daily_job"))
        watched = MonitoredSource(
            self.names.resource_key, self.names.key(dated[0]), job, site_daily_partitions(self.timezone)
        )
        return with_health(definitions, watched, self.names)


def odata_definitions(spec: ErpSource, timezone: str, names, resource) -> dg.Definitions:
    """Assets, jobs, schedules and resource of one OData instance, and the change sensor of its dated sets."""
    jobs, schedules = build_erp_jobs(spec, timezone, names)
    daily = [job for job in jobs if job.name == names.job("erp_daily_job")]
    sensors = [build_erp_change_sensor(spec, timezone, daily[0].name, names=names)] if daily else []
    return dg.Definitions(
        assets=build_erp_assets(spec, timezone, names),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={names.resource_key: resource},
    )
