"""Blocking checks on `scada_readings`, run as its audit: a bad hour is never published nor reaches a report."""

from dagster import AssetKey

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.checks.readings import ReadingsAudit, readings_check_names
from gl_pipelines.config import CheckThresholds, OpcUaSource

EXPECTATIONS, COMPLETENESS = readings_check_names("scada_readings")
SCADA_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def scada_audit(
    source: OpcUaSource, thresholds: CheckThresholds, timezone: str, key: AssetKey | None = None
) -> ReadingsAudit:
    return ReadingsAudit(
        "scada_readings",
        site_hourly_partitions(timezone),
        source.tag_ranges(),
        source.sample_interval_s,
        thresholds,
        key,
    )
