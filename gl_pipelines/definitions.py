"""The code location: one Definitions object wiring assets, checks and resources for the site.

Loading this module reads the site's YAML file and nothing else: no network, no credentials.
Endpoints and the warehouse path can be overridden from the environment for the demo and tests.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    BetaWarning,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    PreviewWarning,
    define_asset_job,
    in_process_executor,
)

from gl_pipelines.assets.cems import PLC_RESOURCE_KEY, build_cems_assets, cems_daily_partitions
from gl_pipelines.assets.erp import build_erp_assets, build_erp_jobs
from gl_pipelines.assets.historian import build_historian_assets
from gl_pipelines.assets.meters import build_meter_assets
from gl_pipelines.assets.partitions import site_daily_partitions, site_hourly_partitions
from gl_pipelines.assets.reports import build_report_assets, site_monthly_partitions
from gl_pipelines.assets.scada import build_scada_assets
from gl_pipelines.checks.cems import build_cems_checks
from gl_pipelines.checks.meters import build_meter_checks
from gl_pipelines.config import PROJECT_ROOT, ModbusSource, SiteConfig, load_site_config
from gl_pipelines.resources.alerting import AlertWebhookResource
from gl_pipelines.resources.erp import erp_from_source
from gl_pipelines.resources.historian import historian_from_source
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.resources.opcua import OpcUaResource, redact_url
from gl_pipelines.resources.warehouse import WarehouseStaging, warehouse_io_manager
from gl_pipelines.resources.warehouse_reader import WarehouseReader
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.alerts import alert_redelivery, run_failure_alert
from gl_pipelines.sensors.cems_files import build_cems_file_sensor
from gl_pipelines.sensors.cems_gaps import build_cems_open_gap_sensor
from gl_pipelines.sensors.erp_changes import build_erp_change_sensor
from gl_pipelines.sensors.health import MonitoredSource, build_source_health_sensor
from gl_pipelines.sensors.schedules import partition_schedule

# Used on purpose and pinned to dagster 1.13: single-run backfill policies (beta) and partitioned
# asset checks (preview). The README lists them; the warnings would otherwise flood every run log.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse.duckdb"


def build_definitions(site: SiteConfig, warehouse_path: str | Path) -> Definitions:
    opcua = site.opcua
    timezone = site.site.timezone
    hourly = site_hourly_partitions(timezone)
    scada_hourly_job = define_asset_job(
        "scada_hourly_job",
        selection="scada_readings",
        # The instance's run queue allows one run at a time per value of this tag.
        tags={"gl/opcua-server": urlsplit(redact_url(opcua.endpoint)).netloc, **max_runtime(HOURLY_JOB_MAX_RUNTIME_S)},
        description="Hourly OPC UA extraction with its blocking checks.",
    )
    assets = build_scada_assets(opcua, site.checks, timezone)
    checks = []  # the sources' blocking checks are their assets' own check_specs (write-audit-publish)
    jobs = [scada_hourly_job]
    schedules = [partition_schedule(scada_hourly_job, hourly, minute_of_hour=5, source_resource_key="opcua")]
    monitored = [MonitoredSource("opcua", AssetKey("scada_readings"), scada_hourly_job, hourly)]
    resources = {
        "opcua": OpcUaResource(
            endpoint=opcua.endpoint,
            source_name=opcua.source_name,
            username=_secret("GL_OPCUA_USERNAME"),
            password=_secret("GL_OPCUA_PASSWORD"),
        ),
        "warehouse": warehouse_io_manager(str(warehouse_path)),
        # Where source assets stage new rows for their blocking checks before publishing (checks/wap.py).
        "warehouse_staging": WarehouseStaging(database=str(warehouse_path)),
        # Reports that select their own window of another clock's table read it here (assets/reports.py).
        "warehouse_reader": WarehouseReader(database=str(warehouse_path)),
        "alert_webhook": AlertWebhookResource(
            url=_secret("GL_ALERT_WEBHOOK_URL"), bearer_token=_secret("GL_ALERT_WEBHOOK_TOKEN")
        ),
    }
    if site.modbus:
        meter_hourly_job = define_asset_job(
            "meter_hourly_job",
            selection="meter_readings",
            tags={"gl/modbus-device": site.modbus.source_name, **max_runtime(HOURLY_JOB_MAX_RUNTIME_S)},
            description="The snapshot of every Modbus point as the hour closes, with its blocking checks.",
        )
        assets += build_meter_assets(site.modbus, timezone)
        checks += build_meter_checks(site.modbus, timezone)
        jobs.append(meter_hourly_job)
        # Minute 0: a meter snapshot should be as close to the hour boundary as the daemon allows.
        schedules.append(partition_schedule(meter_hourly_job, hourly, minute_of_hour=0, source_resource_key="modbus"))
        monitored.append(
            MonitoredSource("modbus", AssetKey("meter_readings"), meter_hourly_job, hourly, catch_up=False)
        )
        resources["modbus"] = ModbusResource.from_source(site.modbus)
    extra_sensors = []
    if site.cems:
        cems_raw_job = define_asset_job(
            "cems_raw_job",
            selection="cems_hourly_raw",
            tags=max_runtime(HOURLY_JOB_MAX_RUNTIME_S),
            description="CEMS hourly records from accepted DAHS files, with their blocking checks.",
        )
        assets += build_cems_assets(site.cems)
        checks += build_cems_checks(site.cems)
        cems_daily_job = define_asset_job(
            "cems_daily_job",
            selection=["cems_hourly_emissions", "cems_daily_emissions"],
            tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
            description="Part 75 hourly emissions and the daily report of the LST day just closed.",
        )
        jobs += [cems_raw_job, cems_daily_job]
        # 01:30 LST: the DAHS exports the day's last hour after it closes; a later file re-runs by hand.
        schedules.append(
            partition_schedule(
                cems_daily_job,
                cems_daily_partitions(site.cems.lst_utc_offset_hours, site.cems.history_start.isoformat()),
                minute_of_hour=30,
                hour_of_day=1,
            )
        )
        extra_sensors.append(build_cems_file_sensor(site.cems, cems_raw_job.name))
        extra_sensors.append(build_cems_open_gap_sensor(site.cems, cems_daily_job.name))
        if site.cems.plc:
            resources[PLC_RESOURCE_KEY] = ModbusResource.from_source(
                ModbusSource(source_name="cems-plc", devices=[site.cems.plc])
            )
    if site.historian:
        historian_daily_job = define_asset_job(
            "historian_daily_job",
            selection="historian_recorded",
            tags={"gl/pi-server": urlsplit(site.historian.base_url).netloc, **max_runtime(DAILY_JOB_MAX_RUNTIME_S)},
            description="Daily PI Web API extraction of recorded values with its blocking checks.",
        )
        daily = site_daily_partitions(timezone)
        assets += build_historian_assets(site.historian, site.checks, timezone)
        jobs.append(historian_daily_job)
        # 01:30 plant time: late values buffered by PI interfaces have arrived for the closed day.
        schedules.append(
            partition_schedule(
                historian_daily_job, daily, minute_of_hour=30, hour_of_day=1, source_resource_key="historian"
            )
        )
        monitored.append(MonitoredSource("historian", AssetKey("historian_recorded"), historian_daily_job, daily))
        resources["historian"] = historian_from_source(
            site.historian,
            password=_secret("GL_HISTORIAN_PASSWORD"),
            token=_secret("GL_HISTORIAN_TOKEN"),
            client_secret=_secret("GL_HISTORIAN_CLIENT_SECRET"),
        )
    if site.erp:
        erp_jobs, erp_schedules = build_erp_jobs(site.erp, timezone)
        assets += build_erp_assets(site.erp, timezone)
        jobs += erp_jobs
        schedules += erp_schedules
        extra_sensors.append(build_erp_change_sensor(site.erp, timezone, erp_jobs[0].name))
        monitored.append(
            MonitoredSource("erp", AssetKey("erp_fuel_receipts"), erp_jobs[0], site_daily_partitions(timezone))
        )
        resources["erp"] = erp_from_source(
            site.erp,
            timezone,
            client_id=_secret("GL_ERP_CLIENT_ID"),
            client_secret=_secret("GL_ERP_CLIENT_SECRET"),
            username=_secret("GL_ERP_USERNAME"),
            password=_secret("GL_ERP_PASSWORD"),
        )
    if site.reporting:
        # Reports last: each is built only when the assets it reads were wired above.
        reports = build_report_assets(site, [*assets, *checks])
        assets += reports
        jobs_, schedules_ = report_jobs_and_schedules(reports, timezone)
        jobs += jobs_
        schedules += schedules_
    return Definitions(
        # Steps of one run wait for the single DuckDB pool slot anyway; running them in the run's own
        # process saves a ~4 s process start per step (measured in bench/backfill_daemon.py).
        executor=in_process_executor,
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=[
            build_source_health_sensor(monitored),
            run_failure_alert,
            alert_redelivery,
            # Evaluates the assets' AutomationConditions (daily summary, hourly consumption).
            AutomationConditionSensorDefinition(
                "plant_automation", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING
            ),
            *extra_sensors,
        ],
        resources=resources,
    )


def report_jobs_and_schedules(reports: list, timezone: str) -> tuple[list, list]:
    """A daily job for the daily reports (03:00 plant time, after the sources' daily jobs) and a monthly
    one for the monthly reports (06:00 on the 1st). A report whose inputs are missing or failed a
    blocking check fails its run, naming the check, and run_failure_alert reports it."""
    names = [key.to_user_string() for report in reports for key in report.keys]
    daily = [name for name in names if name == "plant_energy_balance"]
    monthly = [name for name in names if name not in daily]
    jobs, schedules = [], []
    if daily:
        job = define_asset_job(
            "reports_daily_job",
            selection=daily,
            tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
            description="The daily reports.",
        )
        jobs.append(job)
        schedules.append(partition_schedule(job, site_daily_partitions(timezone), minute_of_hour=0, hour_of_day=3))
    if monthly:
        job = define_asset_job(
            "reports_monthly_job",
            selection=monthly,
            tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
            description="The monthly reports.",
        )
        jobs.append(job)
        schedules.append(partition_schedule(job, site_monthly_partitions(timezone), minute_of_hour=0, hour_of_day=6))
    return jobs, schedules


def _secret(name: str) -> EnvVar | None:
    """An EnvVar (read at launch, hidden in the UI) when the deployment sets it, else nothing."""
    return EnvVar(name) if os.environ.get(name) else None


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


def _warehouse_path() -> Path:
    path = Path(os.environ.get("GL_WAREHOUSE", DEFAULT_WAREHOUSE))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


defs = build_definitions(site_from_environment(), _warehouse_path())
