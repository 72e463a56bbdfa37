"""A site's reports, with their inputs named: `defs/<site>/reports/defs.yaml`,
`type: gl_pipelines.components.reports.ReportsComponent`.

`inputs` says which instance (and entity set) plays each role: the energy balance's tag summaries
(an OPC UA or PI instance), the fuel receipts and production (entity sets of an OData instance) and
the CEMS. An input naming an instance, entity set or tag that does not exist fails the load naming
the file, line and field. The reports are named like every instance (`<site>/<instance>/plant_energy_balance`,
tables `<site>__<instance>__<report>`, jobs `<site>__<instance>__reports_daily_job`, files under
`<reports_dir>/<site>/<instance>/`), so each site of a code location has its own, on its own clock."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
from dagster import AssetKey
from pydantic import BaseModel, ConfigDict, Field

from gl_pipelines.assets.partitions import history_starting
from gl_pipelines.assets.reports import build_report_assets

# Modules, not classes: dg lists every Component class a components module holds as one of its own.
from gl_pipelines.components import base, cems, odata, opcua, pi
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.components.site_file import report_jobs_and_schedules
from gl_pipelines.config import SiteConfigError, SiteInfo
from gl_pipelines.reporting.settings import ReportingConfig


class ReportInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    readings: str | None = Field(
        default=None, description="OPC UA or PI instance whose tags feed the energy balance (units' *_tag)."
    )
    fuel_receipts: str | None = Field(default=None, description="'<odata instance>/<entity set>' of fuel receipts.")
    production: str | None = Field(default=None, description="'<odata instance>/<entity set>' of production.")
    cems: str | None = Field(default=None, description="The CEMS instance (reconciliation).")


class ReportsSpec(ReportingConfig):
    inputs: ReportInputs = Field(description="Which instance plays each input role of the reports.")


class ReportsComponent(dg.Component):
    """Energy balance, GHG inventory, CEMS reconciliation, intensity and the monthly HTML of one site."""

    def __init__(
        self,
        spec: ReportsSpec,
        site: base.SiteComponent,
        instance: str,
        sources: dict[str, tuple[base.SourceComponent, Path]],
    ):
        self.spec, self.site, self.instance, self.sources = spec, site, instance, sources

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return ReportsSpec

    @classmethod
    def load(cls, attributes: ReportsSpec | None, context: dg.ComponentLoadContext) -> ReportsComponent:
        where = context.path / "defs.yaml"
        if attributes is None:
            raise SiteConfigError(f"{where}: field 'attributes' is missing")
        name = base._checked_name(context.path.name, context.path, "instance")
        site = context.load_component(context.path.parent / base.SITE_FOLDER, base.SiteComponent)
        inputs = attributes.inputs
        expected = {"readings": (opcua.OpcUaComponent, pi.PiComponent), "fuel_receipts": (odata.ODataComponent,)}
        expected |= {"production": (odata.ODataComponent,), "cems": (cems.CemsComponent,)}
        sources = {}
        for role, kinds in expected.items():
            value = getattr(inputs, role)
            if value is None:
                continue
            instance, _, entity = value.partition("/")
            path = context.path.parent / instance
            if not (path / "defs.yaml").is_file():
                raise _input_error(where, f"inputs.{role}", value, f"no instance {instance!r} in {context.path.parent}")
            component = context.load_component(path)
            if not isinstance(component, kinds):
                names = " or ".join(kind.__name__ for kind in kinds)
                raise _input_error(
                    where, f"inputs.{role}", value, f"{instance!r} is a {type(component).__name__}, not {names}"
                )
            if isinstance(component, odata.ODataComponent):
                sets = {entity_set.name: entity_set for entity_set in component.spec.entity_sets}
                if entity not in sets or not sets[entity].date_column:
                    raise _input_error(
                        where, f"inputs.{role}", value, f"{instance!r} has no dated entity set {entity!r}"
                    )
            sources[role] = (component, path)
        readings = sources.get("readings")
        if readings:
            tags = {tag.name for tag in readings[0].spec.tags}
            for index, unit in enumerate(attributes.units):
                for field in ("fuel_flow_tag", "steam_flow_tag"):
                    tag = getattr(unit, field)
                    if tag and tag not in tags:
                        raise _input_error(where, f"units[{index}].{field}", tag, f"not a tag of {inputs.readings!r}")
        return cls(attributes, site, name, sources)

    @property
    def names(self) -> InstanceNames:
        """Keys, jobs and export folder under `<site>/<instance>`, grouped with the site's sources."""
        return InstanceNames(
            "reports",
            site=self.site.name,
            instance=self.instance,
            group=self.site.name,
            owners=tuple(self.site.spec.owners),
        )

    @property
    def history_start(self) -> date:
        """The site's history start, or the latest of its inputs' when later."""
        return max(self.history_starts().values())

    def history_starts(self) -> dict[str, date]:
        """The site's and each input instance's first day, by name."""
        starts = {f"site {self.site.name}": self.site.spec.history_start}
        return starts | {component.instance: component.history_start for component, _ in self.sources.values()}

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        keys: dict[str, AssetKey] = {}
        upstream = []
        erp = None
        for role, (component, path) in self.sources.items():
            built = context.build_defs(path)
            upstream += [*(built.assets or []), *(built.asset_checks or [])]
            names = component.names
            if role == "readings" and isinstance(component, opcua.OpcUaComponent):
                keys["scada_daily_summary"] = names.key("scada_daily_summary")
                keys["scada_readings"] = names.key("scada_readings")
            elif role == "readings":
                keys["historian_recorded"] = names.key("historian_recorded")
            elif role == "cems":
                keys["cems_hourly_emissions"] = names.key("cems_hourly_emissions")
            elif role in ("fuel_receipts", "production"):
                keys[f"erp_{role}"] = names.key(getattr(self.spec.inputs, role).partition("/")[2])
                erp = component.spec
        reporting = ReportingConfig.model_validate(self.spec.model_dump(exclude={"inputs"}))
        timezone = self.site.spec.timezone
        site = SimpleNamespace(site=SiteInfo(name=self.site.name, timezone=timezone), reporting=reporting, erp=erp)
        # A report period exists only where every input has history: a day before the latest start is no partition.
        with history_starting(self.history_start):
            reports = build_report_assets(site, upstream, keys, self.names)
            jobs, schedules = report_jobs_and_schedules(reports, timezone, self.names)
        # Shown with each report: why its first period is what it is.
        starts = {name: day.isoformat() for name, day in self.history_starts().items()}
        reports = [
            report.map_asset_specs(
                lambda spec: spec.merge_attributes(metadata={"history_start": dg.MetadataValue.json(starts)})
            )
            for report in reports
        ]
        return dg.Definitions(assets=reports, jobs=jobs, schedules=schedules)


def _input_error(where: Path, name: str, value: str, why: str) -> SiteConfigError:
    return SiteConfigError(f"{where}{_line_of(where, value)}: field '{name}' = {value!r}: {why}")


def _line_of(path: Path, value: str) -> str:
    """', line N' of the first line of `path` that holds `value` (the input the message is about)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if value in line:
            return f", line {number}"
    return ""
