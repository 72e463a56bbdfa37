"""What every source component shares: its schema is our pydantic model, its site is its folder.

An instance is `defs/<site>/<instance>/defs.yaml`; the site's settings (time zone, check thresholds)
are the `defs/<site>/site/defs.yaml` next to it. Dagster validates the attributes against the
component's model before `load`, so an unknown field or a bad value fails `dg check defs` and the
code-location load naming the file, line and field. Secrets are named, never written: a field
ending in `_env` holds the NAME of the environment variable, read at launch as an `EnvVar`.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gl_pipelines.assets.partitions import HISTORY_START, history_starting
from gl_pipelines.components.naming import NAME, InstanceNames
from gl_pipelines.config import CheckThresholds, SiteConfigError, SiteInfo
from gl_pipelines.scrub import declare_secret_env
from gl_pipelines.sensors.health import MonitoredSource, build_source_health_sensor

SITE_FOLDER = "site"
"""The folder of a site's own defs.yaml; no instance may take this name."""


class InstanceSettings(BaseModel):
    """Fields every instance has besides its source settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    owners: list[str] = Field(default=[], description="Dagster owners of the instance's assets (emails or team:x).")
    endpoint_env: str | None = Field(
        default=None, description="Environment variable that, when set at load, replaces the endpoint (tests, demo)."
    )
    history_start: date | None = Field(
        default=None,
        description="First plant day (site clock) of the instance's partitions, schedules and backfills; "
        "default: the site's history_start.",
    )


class SiteSpec(BaseModel):
    """`defs/<site>/site/defs.yaml`: what every instance of the site shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    timezone: str = Field(description="IANA zone of the plant: partitions, schedules and reports follow it.")
    checks: CheckThresholds = Field(default=CheckThresholds(), description="Completeness thresholds of the checks.")
    owners: list[str] = Field(default=[], description="Default owners of the site's assets.")
    history_start: date = Field(
        default=date.fromisoformat(HISTORY_START),
        description="First plant day of the site's reports and of every instance that does not set its own.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return SiteInfo._known_zone(value)


def env_secret(name: str | None, secret: bool = True) -> dg.EnvVar | None:
    """The EnvVar of a declared variable name (read at launch, hidden in the UI). A secret's value is also
    masked by the scrubber in every message we emit; a user name or client id (`secret=False`) is not."""
    if name and secret:
        declare_secret_env(name)
    return dg.EnvVar(name) if name else None


class SiteComponent(dg.Component):
    """A plant site: its time zone and check thresholds, shared by the instances in its folder."""

    def __init__(self, name: str, spec: SiteSpec):
        self.name, self.spec = name, spec

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return SiteSpec

    @classmethod
    def load(cls, attributes: SiteSpec | None, context: dg.ComponentLoadContext) -> SiteComponent:
        site_dir = context.path.parent
        name = _checked_name(site_dir.name, site_dir, "site")
        if attributes is None:
            raise SiteConfigError(f"{context.path / 'defs.yaml'}: field 'attributes' is missing (timezone)")
        return cls(name, attributes)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions()


def _checked_name(name: str, path: Path, what: str) -> str:
    if not NAME.match(name):
        raise SiteConfigError(
            f"{path}: the {what} folder name {name!r} must be lower case letters, digits and _ "
            "(it becomes asset keys and table names)"
        )
    return name


class SourceComponent(dg.Component):
    """One source instance; subclasses give `kind`, `schema` and `build`."""

    kind: ClassVar[str]
    schema: ClassVar[type[BaseModel]]
    endpoint_field: ClassVar[str | None] = None

    def __init__(self, spec: Any, site: SiteComponent, instance: str, path: Path):
        self.spec, self.site, self.instance, self.path = spec, site, instance, path

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return cls.schema

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> SourceComponent:
        path = context.path
        where = path / "defs.yaml"
        if attributes is None:
            raise SiteConfigError(f"{where}: field 'attributes' is missing")
        instance = _checked_name(path.name, path, "instance")
        if instance == SITE_FOLDER:
            raise SiteConfigError(f"{where}: '{SITE_FOLDER}' is the site's own folder; name the instance otherwise")
        site_path = path.parent / SITE_FOLDER
        if not (site_path / "defs.yaml").is_file():
            raise SiteConfigError(f"{where}: no {site_path / 'defs.yaml'} declares this instance's site (timezone)")
        site = context.load_component(site_path, SiteComponent)
        override = attributes.endpoint_env and os.environ.get(attributes.endpoint_env)
        if override and cls.endpoint_field:
            attributes = attributes.model_copy(update={cls.endpoint_field: override})
        return cls(attributes, site, instance, where)

    @property
    def timezone(self) -> str:
        return self.site.spec.timezone

    @property
    def history_start(self) -> date:
        """The instance's first plant day: its own, else its site's."""
        return self.spec.history_start or self.site.spec.history_start

    @property
    def names(self) -> InstanceNames:
        return InstanceNames(
            self.kind,
            site=self.site.name,
            instance=self.instance,
            group=self.site.name,
            owners=tuple(self.spec.owners or self.site.spec.owners),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        with history_starting(self.history_start):
            return self.build()

    @abstractmethod
    def build(self) -> dg.Definitions:
        """The instance's assets, checks, jobs, schedules, sensors and resource."""


def with_health(definitions: dg.Definitions, monitored: MonitoredSource, names: InstanceNames) -> dg.Definitions:
    """The instance's definitions plus its own health sensor (an outage of one server skips only its ticks)."""
    sensor = build_source_health_sensor([monitored], name=names.job("source_health"))
    return dg.Definitions.merge(definitions, dg.Definitions(sensors=[sensor]))
