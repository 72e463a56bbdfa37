"""Blocking checks on `scada_readings`: a bad hour never reaches the daily summary or a report."""

import pandas as pd
from dagster import AssetCheckResult, AssetChecksDefinition, AssetCheckSeverity, MetadataValue, asset_check

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_hourly_partitions, utc_window
from gl_pipelines.checks.completeness import completeness
from gl_pipelines.checks.expectations import validate_readings
from gl_pipelines.config import CheckThresholds, OpcUaSource

SCADA_BLOCKING_CHECKS = ("scada_readings_expectations", "scada_readings_completeness")


def build_scada_checks(source: OpcUaSource, thresholds: CheckThresholds, timezone: str) -> list[AssetChecksDefinition]:
    tag_ranges = source.tag_ranges()
    tag_names = [tag.name for tag in source.tags]

    @asset_check(
        asset="scada_readings",
        blocking=True,
        partitions_def=site_hourly_partitions(timezone),
        pool=WAREHOUSE_POOL,
        description="great-expectations suite: not null, value within tag range, unique (ts, tag), ts in window.",
    )
    def scada_readings_expectations(context, scada_readings: pd.DataFrame) -> AssetCheckResult:
        start, end = utc_window(context.op_execution_context.partition_time_window)
        validation = validate_readings(scada_readings, tag_ranges, start, end)
        failed = validation.failed()
        return AssetCheckResult(
            passed=validation.success,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(f"{o.expectation}: {o.unexpected_count} unexpected" for o in failed)
            or f"all {len(validation.outcomes)} expectations met on {len(scada_readings)} rows",
            metadata={
                "rows": len(scada_readings),
                "failed_expectations": [o.expectation for o in failed],
                "results": MetadataValue.md(validation.as_markdown()),
            },
        )

    @asset_check(
        asset="scada_readings",
        blocking=True,
        partitions_def=site_hourly_partitions(timezone),
        pool=WAREHOUSE_POOL,
        description="Share of expected samples present and share of good quality above the site's thresholds.",
    )
    def scada_readings_completeness(context, scada_readings: pd.DataFrame) -> AssetCheckResult:
        result = completeness(
            scada_readings,
            tag_names,
            utc_window(context.op_execution_context.partition_time_window),
            source.sample_interval_s,
            thresholds.min_expected_share,
            thresholds.min_good_share,
        )
        return AssetCheckResult(
            passed=result.passed,
            severity=AssetCheckSeverity.ERROR,
            description=result.describe(),
            metadata={
                "expected_share": result.expected_share,
                "good_share": result.good_share,
                "expected_samples": result.expected,
                "present_samples": result.present,
                "worst_tags": result.worst_tags,
            },
        )

    return [scada_readings_expectations, scada_readings_completeness]
