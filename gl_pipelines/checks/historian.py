"""Blocking checks on `historian_recorded`, run as its audit: a bad plant day is never published nor reaches a report.

Same contract as SCADA (checks/readings.py): the great-expectations readings suite and completeness.
"""

from dagster import AssetKey

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.checks.readings import ReadingsAudit, readings_check_names
from gl_pipelines.config import CheckThresholds, HistorianSource

EXPECTATIONS, COMPLETENESS = readings_check_names("historian_recorded")
HISTORIAN_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def historian_audit(
    source: HistorianSource, thresholds: CheckThresholds, timezone: str, key: AssetKey | None = None
) -> ReadingsAudit:
    return ReadingsAudit(
        "historian_recorded",
        site_daily_partitions(timezone),
        source.tag_ranges(),
        source.sample_interval_s,
        thresholds,
        key,
    )
