"""How one source instance names what it builds, so two instances of a kind never collide.

An instance declared in the defs folder (`defs/<site>/<instance>/defs.yaml`) prefixes its asset keys
with `<site>/<instance>`, names its resource `<kind>__<site>__<instance>` and its jobs
`<site>__<instance>__<job>`, and groups its assets by site. A single-site file (config/*.yaml, read
by `components.site_file`) keeps the short names (`scada_readings`, resource `opcua`) the project
started with: `InstanceNames.single(kind)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagster import AssetKey

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""Site and instance names: they become asset key parts, table names and resource keys."""


@dataclass(frozen=True)
class InstanceNames:
    kind: str
    """Source kind, the resource key's first part (opcua, modbus, pi, odata; a single-site file's short keys
    are the kind alone: opcua, modbus, historian, erp)."""
    site: str | None = None
    instance: str | None = None
    group: str | None = None
    """Dagster group of every asset of the instance; None: the builder's own group (single-site)."""
    owners: tuple[str, ...] = ()

    @classmethod
    def single(cls, kind: str) -> InstanceNames:
        return cls(kind)

    @property
    def prefix(self) -> tuple[str, ...]:
        return (self.site, self.instance) if self.site and self.instance else ()

    def key(self, name: str) -> AssetKey:
        return AssetKey([*self.prefix, name])

    @property
    def resource_key(self) -> str:
        return "__".join((self.kind, *self.prefix))

    def job(self, name: str) -> str:
        return "__".join((*self.prefix, name))

    def group_or(self, default: str) -> str:
        return self.group or default

    def asset_args(self, default_group: str) -> dict:
        """The @asset arguments every asset of the instance shares: key prefix, group, owners."""
        args: dict = {"key_prefix": list(self.prefix) or None, "group_name": self.group_or(default_group)}
        if self.owners:
            args["owners"] = list(self.owners)
        return args


def cems_names(names: InstanceNames | None) -> InstanceNames:
    """The instance's names; without one, the single-site file's short names."""
    return names or InstanceNames.single("cems")
