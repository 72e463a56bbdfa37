"""CEMS / DAHS (40 CFR Part 75) with its EPA files: `type: gl_pipelines.components.cems.CemsComponent`.

The CEMS assets keep their short keys (`cems_hourly_raw`, ...): one CEMS instance per code location
(see the README's known gaps)."""

from __future__ import annotations

import dagster as dg

from gl_pipelines.assets.cems import PLC_RESOURCE_KEY, build_cems_assets, cems_daily_partitions
from gl_pipelines.checks.cems import build_cems_checks
from gl_pipelines.components.base import InstanceSettings, SourceComponent
from gl_pipelines.config import CemsSource, ModbusSource
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.run_launcher import DAILY_JOB_MAX_RUNTIME_S, HOURLY_JOB_MAX_RUNTIME_S, max_runtime
from gl_pipelines.sensors.cems_files import build_cems_file_sensor
from gl_pipelines.sensors.cems_gaps import build_cems_open_gap_sensor
from gl_pipelines.sensors.schedules import partition_schedule


class CemsInstance(CemsSource, InstanceSettings):
    pass


class CemsComponent(SourceComponent):
    """DAHS export files through the drop-folder sensor, Part 75 emissions and the EPA history."""

    kind = "cems"
    schema = CemsInstance

    def build(self) -> dg.Definitions:
        return cems_definitions(self.spec)


def cems_definitions(spec: CemsSource) -> dg.Definitions:
    raw_job = dg.define_asset_job(
        "cems_raw_job",
        selection="cems_hourly_raw",
        tags=max_runtime(HOURLY_JOB_MAX_RUNTIME_S),
        description="CEMS hourly records from accepted DAHS files, with their blocking checks.",
    )
    daily_job = dg.define_asset_job(
        "cems_daily_job",
        selection=["cems_hourly_emissions", "cems_daily_emissions"],
        tags=max_runtime(DAILY_JOB_MAX_RUNTIME_S),
        description="Part 75 hourly emissions and the daily report of the LST day just closed.",
    )
    resources = {}
    if spec.plc:
        resources[PLC_RESOURCE_KEY] = ModbusResource.from_source(
            ModbusSource(source_name="cems-plc", devices=[spec.plc])
        )
    return dg.Definitions(
        assets=build_cems_assets(spec),
        asset_checks=build_cems_checks(spec),
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
        sensors=[build_cems_file_sensor(spec, raw_job.name), build_cems_open_gap_sensor(spec, daily_job.name)],
        resources=resources,
    )
