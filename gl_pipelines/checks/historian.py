"""Blocking checks on `historian_recorded`: a bad plant day never reaches a report.

Same contract as SCADA (checks/readings.py): the great-expectations readings suite and completeness.
"""

import pandas as pd
from dagster import AssetChecksDefinition

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.checks.readings import build_readings_checks, readings_check_names
from gl_pipelines.config import CheckThresholds, HistorianSource

EXPECTATIONS, COMPLETENESS = readings_check_names("historian_recorded")
HISTORIAN_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def for_expectations(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings suite's schema carries OPC UA's numeric status_code; PI has flags instead (kept in `status`)."""
    return readings if readings.empty else readings.assign(status_code=0)


def build_historian_checks(
    source: HistorianSource, thresholds: CheckThresholds, timezone: str
) -> list[AssetChecksDefinition]:
    return [
        build_readings_checks(
            "historian_recorded",
            site_daily_partitions(timezone),
            source.tag_ranges(),
            source.sample_interval_s,
            thresholds,
            for_expectations,
        )
    ]
