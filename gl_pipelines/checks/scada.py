"""Blocking checks on `scada_readings`: a bad hour never reaches the daily summary or a report."""

from dagster import AssetChecksDefinition

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.checks.readings import build_readings_checks, readings_check_names
from gl_pipelines.config import CheckThresholds, OpcUaSource

EXPECTATIONS, COMPLETENESS = readings_check_names("scada_readings")
SCADA_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def build_scada_checks(source: OpcUaSource, thresholds: CheckThresholds, timezone: str) -> list[AssetChecksDefinition]:
    return [
        build_readings_checks(
            "scada_readings",
            site_hourly_partitions(timezone),
            source.tag_ranges(),
            source.sample_interval_s,
            thresholds,
        )
    ]
