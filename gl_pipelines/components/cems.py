"""CEMS / DAHS (40 CFR Part 75) with its EPA files: `type: gl_pipelines.components.cems.CemsComponent`.

Like every kind, an instance's keys, jobs, sensors, schedule, PLC resource and tables carry
`<site>/<instance>`, so a site can declare one CEMS instance per DAHS (or unit group). Its folders
default to `data/cems/<site>/<instance>/...`: two instances never read, accept or quarantine each other's files.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import yaml
from pydantic import Field, model_validator

from gl_pipelines.assets.cems import build_cems_assets, plc_resource_key
from gl_pipelines.assets.partitions import cems_daily_partitions
from gl_pipelines.checks.cems import build_cems_checks
from gl_pipelines.components.base import InstanceSettings, SourceComponent
from gl_pipelines.components.modbus import address_from_env
from gl_pipelines.components.naming import InstanceNames, cems_names
from gl_pipelines.config import PROJECT_ROOT, CemsSource, ModbusSource, SiteConfigError
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.cems_files import build_cems_file_sensor
from gl_pipelines.sensors.cems_gaps import build_cems_open_gap_sensor
from gl_pipelines.sensors.schedules import partition_schedule

DEFS_FILE = "defs.yaml"
FOLDERS = {"dahs_drop_folder": "dahs_drop", "quarantine_folder": "quarantine", "accepted_folder": "accepted"}
"""The instance's DAHS folders and the name each gets under `data/cems/<site>/<instance>/` by default."""


class CemsInstance(CemsSource, InstanceSettings):
    dahs_drop_folder: Path | None = Field(
        default=None,
        description="Where the DAHS drops its hourly CSV files; default data/cems/<site>/<instance>/dahs_drop.",
    )
    quarantine_folder: Path | None = Field(
        default=None, description="Malformed files go here with their reason; default .../<instance>/quarantine."
    )
    accepted_folder: Path | None = Field(
        default=None, description="Content-addressed copies of accepted files; default .../<instance>/accepted."
    )
    history_start: date | None = Field(
        default=None, description="First LST day of the CEMS partitions; default: the site's history_start."
    )
    endpoint_env: str | None = Field(
        default=None,
        description="Environment variable that, when set at load, holds 'host:port' replacing the address of the "
        "`plc` block (tests, demo).",
    )

    @model_validator(mode="after")
    def _plc_to_move(self) -> CemsInstance:
        if self.endpoint_env and self.plc is None:
            raise ValueError(f"endpoint_env {self.endpoint_env!r} moves the PLC, and there is no plc block")
        return self


class CemsComponent(SourceComponent):
    """DAHS export files through the drop-folder sensor, Part 75 emissions and the EPA history."""

    kind = "cems"
    schema = CemsInstance

    @classmethod
    def load(cls, attributes, context: dg.ComponentLoadContext) -> CemsComponent:
        component = super().load(attributes, context)
        component.refuse_shared_folders(context.defs_module_path)
        address = address_from_env(component.spec.endpoint_env, component.path)
        if address:
            component.spec = component.spec.model_copy(update={"plc": component.spec.plc.model_copy(update=address)})
        return component

    def build(self) -> dg.Definitions:
        return cems_definitions(self.source, self.names)

    def folders(self) -> dict[str, Path]:
        return {field: getattr(self.source, field) for field in FOLDERS}

    def refuse_shared_folders(self, defs_root: Path) -> None:
        """Two instances on one folder would each accept (and quarantine) the other's files: refuse at load,
        naming both files, the field and the folder. Other instances are read as YAML, not loaded, so two
        instances checking each other cannot recurse."""
        mine = {path.resolve(): field for field, path in self.folders().items()}
        for other in sorted(defs_root.glob(f"*/*/{DEFS_FILE}")):
            if other.resolve() == self.path.resolve():
                continue
            for field, folder in _declared_folders(other).items():
                if folder.resolve() in mine:
                    raise SiteConfigError(
                        f"{self.path}: field '{mine[folder.resolve()]}' = {str(folder)!r} is also "
                        f"'{field}' of {other}: each CEMS instance needs its own folders (leave them out for "
                        "the per-instance default)"
                    )

    @property
    def source(self) -> CemsSource:
        """The instance's settings with its defaults filled: its own folders, its site's history start."""
        defaults = default_folders(self.site.name, self.instance)
        update = {field: path for field, path in defaults.items() if getattr(self.spec, field) is None}
        update["history_start"] = self.history_start
        fields = self.spec.model_dump(exclude=set(InstanceSettings.model_fields) - {"history_start"})
        return CemsSource.model_validate({**fields, **update})


def cems_definitions(spec: CemsSource, names: InstanceNames | None = None) -> dg.Definitions:
    """Assets, checks, jobs, schedule, sensors and PLC resource of one CEMS instance (short names without `names`)."""
    names = cems_names(names)
    raw_job = dg.define_asset_job(
        names.job("cems_raw_job"),
        selection=dg.AssetSelection.assets(names.key("cems_hourly_raw")),
        tags=max_runtime(HOURLY_JOB_MAX_RUNTIME_S),
        description="CEMS hourly records from accepted DAHS files, with their blocking checks.",
    )
    daily_job = dg.define_asset_job(
        names.job("cems_daily_job"),
        selection=dg.AssetSelection.assets(names.key("cems_hourly_emissions"), names.key("cems_daily_emissions")),
        tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
        description="Part 75 hourly emissions and the daily report of the LST day just closed.",
    )
    resources = {}
    if spec.plc:
        resources[plc_resource_key(names)] = ModbusResource.from_source(
            ModbusSource(source_name="-".join(("cems-plc", *names.prefix)), devices=[spec.plc])
        )
    return dg.Definitions(
        assets=build_cems_assets(spec, names),
        asset_checks=build_cems_checks(spec, names),
        jobs=[raw_job, daily_job],
        # 01:30 LST: the DAHS exports the day's last hour after it closes; a later file re-runs by hand.
        schedules=[
            partition_schedule(
                daily_job,
                cems_daily_partitions(spec.lst_utc_offset_hours, spec.history_start.isoformat()),
                minute_of_hour=30,
                hour_of_day=1,
            )
        ],
        sensors=[
            build_cems_file_sensor(spec, raw_job.name, names),
            build_cems_open_gap_sensor(spec, daily_job.name, names=names),
        ],
        resources=resources,
    )


def _declared_folders(defs_file: Path) -> dict[str, Path]:
    """The DAHS folders a CEMS instance's defs.yaml declares or defaults to (none for another kind)."""
    text = defs_file.read_text()
    if CemsComponent.__name__ not in text:  # most instances are other kinds: skip parsing them
        return {}
    declaration = yaml.safe_load(text) or {}
    if not str(declaration.get("type", "")).endswith(f".{CemsComponent.__name__}"):
        return {}
    attributes = declaration.get("attributes") or {}
    defaults = default_folders(defs_file.parent.parent.name, defs_file.parent.name)
    # Relative folders are under the project root, as CemsSource resolves them.
    return {
        field: PROJECT_ROOT / attributes[field] if attributes.get(field) else path for field, path in defaults.items()
    }


def default_folders(site: str, instance: str) -> dict[str, Path]:
    """`data/cems/<site>/<instance>/{dahs_drop,quarantine,accepted}` under the project root."""
    base = PROJECT_ROOT / "data" / "cems" / site / instance
    return {field: base / name for field, name in FOLDERS.items()}
