"""Blocking checks on `scada_readings`: a bad hour never reaches the daily summary or a report.

Both checks run in one step so the partition is loaded from the warehouse once.
"""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    MetadataValue,
    multi_asset_check,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_hourly_partitions, utc_window
from gl_pipelines.checks.completeness import completeness
from gl_pipelines.checks.expectations import validate_readings
from gl_pipelines.config import CheckThresholds, OpcUaSource

EXPECTATIONS, COMPLETENESS = "scada_readings_expectations", "scada_readings_completeness"
SCADA_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def build_scada_checks(source: OpcUaSource, thresholds: CheckThresholds, timezone: str) -> list[AssetChecksDefinition]:
    tag_ranges = source.tag_ranges()
    tag_names = [tag.name for tag in source.tags]
    partitions = site_hourly_partitions(timezone)

    @multi_asset_check(
        name="scada_readings_checks",
        specs=[
            AssetCheckSpec(
                EXPECTATIONS,
                asset="scada_readings",
                blocking=True,
                partitions_def=partitions,
                description="great-expectations suite: not null, value within tag range, unique (ts, tag), "
                "ts in window.",
            ),
            AssetCheckSpec(
                COMPLETENESS,
                asset="scada_readings",
                blocking=True,
                partitions_def=partitions,
                description="Share of expected samples present and share of good quality above the site's thresholds.",
            ),
        ],
        ins={"scada_readings": AssetIn("scada_readings")},
        pool=WAREHOUSE_POOL,
    )
    def scada_readings_checks(context, scada_readings: pd.DataFrame) -> Iterator[AssetCheckResult]:
        start, end = utc_window(context.op_execution_context.partition_time_window)

        validation = validate_readings(scada_readings, tag_ranges, start, end)
        failed = validation.failed()
        yield AssetCheckResult(
            check_name=EXPECTATIONS,
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

        result = completeness(
            scada_readings,
            tag_names,
            (start, end),
            source.sample_interval_s,
            thresholds.min_expected_share,
            thresholds.min_good_share,
        )
        yield AssetCheckResult(
            check_name=COMPLETENESS,
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

    return [scada_readings_checks]
