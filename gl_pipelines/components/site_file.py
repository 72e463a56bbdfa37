"""A single-site file (config/*.yaml, $GL_SITE_CONFIG) as definitions: one instance of each kind with the
short names the project started with (`scada_readings`, resource `opcua`, job `scada_hourly_job`).

The demo run and the tests that exercise one source build from such a file. Each section goes through
the same `*_definitions` functions as the defs-folder components, so the two paths cannot drift; the
reports, which read several sources by their short names, are only wired here (see the README's gaps).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster import AssetKey, AssetSelection, Definitions, define_asset_job

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.assets.reports import build_report_assets, site_monthly_partitions
from gl_pipelines.components.cems import cems_definitions
from gl_pipelines.components.modbus import modbus_definitions
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.components.odata import odata_definitions
from gl_pipelines.components.opcua import chunking, opcua_definitions
from gl_pipelines.components.pi import pi_definitions
from gl_pipelines.components.shared import secret_if_set, shared_definitions
from gl_pipelines.config import SiteConfig, load_site_config
from gl_pipelines.resources.erp import erp_from_source
from gl_pipelines.resources.historian import historian_from_source
from gl_pipelines.resources.opcua import OpcUaResource
from gl_pipelines.resources.warehouse_settings import WarehouseSettings
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.health import MonitoredSource, build_source_health_sensor
from gl_pipelines.sensors.schedules import partition_schedule


def build_definitions(site: SiteConfig, warehouse: str | Path | WarehouseSettings) -> Definitions:
    timezone = site.site.timezone
    opcua = site.opcua
    resource = OpcUaResource(
        endpoint=opcua.endpoint,
        source_name=opcua.source_name,
        username=secret_if_set("GL_OPCUA_USERNAME"),
        password=secret_if_set("GL_OPCUA_PASSWORD"),
        **chunking(opcua),
    )
    definitions, monitored_opcua = opcua_definitions(
        opcua, site.checks, timezone, InstanceNames.single("opcua"), resource
    )
    parts, monitored = [definitions], [monitored_opcua]
    if site.modbus:
        definitions, watched = modbus_definitions(site.modbus, timezone, InstanceNames.single("modbus"))
        parts.append(definitions)
        monitored.append(watched)
    if site.cems:
        parts.append(cems_definitions(site.cems))
    if site.historian:
        resource = historian_from_source(
            site.historian,
            password=secret_if_set("GL_HISTORIAN_PASSWORD"),
            token=secret_if_set("GL_HISTORIAN_TOKEN"),
            client_secret=secret_if_set("GL_HISTORIAN_CLIENT_SECRET"),
        )
        definitions, watched = pi_definitions(
            site.historian, site.checks, timezone, InstanceNames.single("historian"), resource
        )
        parts.append(definitions)
        monitored.append(watched)
    if site.erp:
        resource = erp_from_source(
            site.erp,
            timezone,
            client_id=secret_if_set("GL_ERP_CLIENT_ID"),
            client_secret=secret_if_set("GL_ERP_CLIENT_SECRET"),
            username=secret_if_set("GL_ERP_USERNAME"),
            password=secret_if_set("GL_ERP_PASSWORD"),
        )
        definitions = odata_definitions(site.erp, timezone, InstanceNames.single("erp"), resource)
        parts.append(definitions)
        if "fuel_receipts" in site.erp.roles():
            daily_job = next(job for job in definitions.jobs if job.name == "erp_daily_job")
            monitored.append(
                MonitoredSource("erp", AssetKey("erp_fuel_receipts"), daily_job, site_daily_partitions(timezone))
            )
    parts.append(Definitions(sensors=[build_source_health_sensor(monitored)]))
    if site.reporting:
        # Reports last: each is built only when the assets it reads were wired above.
        upstream = [item for part in parts for item in [*(part.assets or []), *(part.asset_checks or [])]]
        reports = build_report_assets(site, upstream)
        jobs, schedules = report_jobs_and_schedules(reports, timezone)
        parts.append(Definitions(assets=reports, jobs=jobs, schedules=schedules))
    return Definitions.merge(shared_definitions(warehouse), *parts)


def report_jobs_and_schedules(reports: list, timezone: str, names: InstanceNames | None = None) -> tuple[list, list]:
    """A daily job for the daily reports (03:00 plant time, after the sources' daily jobs) and a monthly
    one for the monthly reports (06:00 on the 1st), named by the reports instance (`names.job`). A report
    whose inputs are missing or failed a blocking check fails its run, naming the check, and
    run_failure_alert reports it."""
    names = names or InstanceNames.single("reports")
    keys = [key for report in reports for key in report.keys]
    daily = [key for key in keys if key.path[-1] == "plant_energy_balance"]
    monthly = [key for key in keys if key not in daily]
    jobs, schedules = [], []
    if daily:
        job = define_asset_job(
            names.job("reports_daily_job"),
            selection=AssetSelection.assets(*daily),
            tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
            description="The daily reports.",
        )
        jobs.append(job)
        schedules.append(partition_schedule(job, site_daily_partitions(timezone), minute_of_hour=0, hour_of_day=3))
    if monthly:
        job = define_asset_job(
            names.job("reports_monthly_job"),
            selection=AssetSelection.assets(*monthly),
            tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
            description="The monthly reports.",
        )
        jobs.append(job)
        schedules.append(partition_schedule(job, site_monthly_partitions(timezone), minute_of_hour=0, hour_of_day=6))
    return jobs, schedules


def site_from_environment() -> SiteConfig:
    """The site config ($GL_SITE_CONFIG or the demo) with the process environment's overrides."""
    return with_environment(load_site_config(), os.environ)


def with_environment(site: SiteConfig, environ: Mapping[str, str]) -> SiteConfig:
    """`site` with the endpoint overrides found in `environ` (how the demo plant and tests point a site at
    servers on free ports): $GL_OPCUA_ENDPOINT, $GL_MODBUS_HOST / $GL_MODBUS_PORT (every Modbus device),
    $GL_HISTORIAN_URL, $GL_ERP_URL and the $GL_CEMS_* folders and PLC address."""
    endpoint = environ.get("GL_OPCUA_ENDPOINT")
    if endpoint:
        site = site.model_copy(update={"opcua": site.opcua.model_copy(update={"endpoint": endpoint})})
    host, port = environ.get("GL_MODBUS_HOST"), environ.get("GL_MODBUS_PORT")
    if site.modbus and (host or port):
        site = with_modbus_address(site, host, int(port) if port else None)
    if site.cems:
        site = with_cems_environment(site, environ)
    erp_url = environ.get("GL_ERP_URL")
    if site.erp and erp_url:
        site = site.model_copy(update={"erp": site.erp.model_copy(update={"service_url": erp_url})})
    historian_url = environ.get("GL_HISTORIAN_URL")
    if site.historian and historian_url:
        site = site.model_copy(update={"historian": site.historian.model_copy(update={"base_url": historian_url})})
    return site


def with_modbus_address(site: SiteConfig, host: str | None, port: int | None) -> SiteConfig:
    """The site with every Modbus device moved to `host`/`port` (where given)."""
    update = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    devices = [device.model_copy(update=update) for device in site.modbus.devices]
    return site.model_copy(update={"modbus": site.modbus.model_copy(update={"devices": devices})})


def with_cems_environment(site: SiteConfig, environ) -> SiteConfig:
    """$GL_CEMS_DROP_FOLDER, $GL_CEMS_QUARANTINE_FOLDER, $GL_CEMS_ACCEPTED_FOLDER, $GL_CEMS_EPA_FOLDER,
    $GL_CEMS_EPA_DAILY_FOLDER move the CEMS folders; $GL_CEMS_PLC_HOST / $GL_CEMS_PLC_PORT the PLC (the demo
    plant's free port)."""
    folders = {
        field: Path(environ[name])
        for field, name in (
            ("dahs_drop_folder", "GL_CEMS_DROP_FOLDER"),
            ("quarantine_folder", "GL_CEMS_QUARANTINE_FOLDER"),
            ("accepted_folder", "GL_CEMS_ACCEPTED_FOLDER"),
            ("epa_folder", "GL_CEMS_EPA_FOLDER"),
            ("epa_daily_folder", "GL_CEMS_EPA_DAILY_FOLDER"),
        )
        if environ.get(name)
    }
    cems = site.cems.model_copy(update=folders)
    host, port = environ.get("GL_CEMS_PLC_HOST"), environ.get("GL_CEMS_PLC_PORT")
    if cems.plc and (host or port):
        update = {key: value for key, value in (("host", host), ("port", int(port) if port else None)) if value}
        cems = cems.model_copy(update={"plc": cems.plc.model_copy(update=update)})
    return site.model_copy(update={"cems": cems})
