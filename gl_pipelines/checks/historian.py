"""Blocking checks on `historian_recorded`: a bad plant day never reaches a report.

Same contract as SCADA: the great-expectations readings suite (ranges, uniqueness, window) and
completeness (expected samples present, share good). Both run in one step, one warehouse load.
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

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_daily_partitions, utc_window
from gl_pipelines.checks.completeness import completeness
from gl_pipelines.checks.expectations import validate_readings
from gl_pipelines.config import CheckThresholds, HistorianSource

EXPECTATIONS, COMPLETENESS = "historian_recorded_expectations", "historian_recorded_completeness"
HISTORIAN_BLOCKING_CHECKS = (EXPECTATIONS, COMPLETENESS)


def for_expectations(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings suite's schema carries OPC UA's numeric status_code; PI has flags instead (kept in `status`)."""
    return readings if readings.empty else readings.assign(status_code=0)


def build_historian_checks(
    source: HistorianSource, thresholds: CheckThresholds, timezone: str
) -> list[AssetChecksDefinition]:
    tag_ranges = source.tag_ranges()
    tag_names = [tag.name for tag in source.tags]
    partitions = site_daily_partitions(timezone)

    @multi_asset_check(
        name="historian_recorded_checks",
        specs=[
            AssetCheckSpec(
                EXPECTATIONS,
                asset="historian_recorded",
                blocking=True,
                partitions_def=partitions,
                description="great-expectations suite: not null, value within tag range, unique (ts, tag), "
                "ts in window.",
            ),
            AssetCheckSpec(
                COMPLETENESS,
                asset="historian_recorded",
                blocking=True,
                partitions_def=partitions,
                description="Share of expected samples present and share of good quality above the site's thresholds.",
            ),
        ],
        ins={"historian_recorded": AssetIn("historian_recorded")},
        pool=WAREHOUSE_POOL,
    )
    def historian_recorded_checks(context, historian_recorded: pd.DataFrame) -> Iterator[AssetCheckResult]:
        start, end = utc_window(context.op_execution_context.partition_time_window)

        validation = validate_readings(for_expectations(historian_recorded), tag_ranges, start, end)
        failed = validation.failed()
        yield AssetCheckResult(
            check_name=EXPECTATIONS,
            passed=validation.success,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(f"{o.expectation}: {o.unexpected_count} unexpected" for o in failed)
            or f"all {len(validation.outcomes)} expectations met on {len(historian_recorded)} rows",
            metadata={
                "rows": len(historian_recorded),
                "failed_expectations": [o.expectation for o in failed],
                "results": MetadataValue.md(validation.as_markdown()),
            },
        )

        result = completeness(
            historian_recorded,
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

    return [historian_recorded_checks]
