"""The two blocking checks every long-schema readings asset gets (SCADA, historian).

The great-expectations readings suite (not null, value within tag range, unique (ts, tag), ts in
window) and completeness (share of expected samples present, share good). Both run in one step, so
the partition is loaded from the warehouse once.
"""

from collections.abc import Callable, Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    multi_asset_check,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, utc_window
from gl_pipelines.checks.completeness import completeness
from gl_pipelines.checks.expectations import validate_readings
from gl_pipelines.config import CheckThresholds


def readings_check_names(asset: str) -> tuple[str, str]:
    """(expectations, completeness) check names of `asset`."""
    return f"{asset}_expectations", f"{asset}_completeness"


def build_readings_checks(
    asset: str,
    partitions: TimeWindowPartitionsDefinition,
    tag_ranges: dict[str, tuple[float, float]],
    sample_interval_s: float,
    thresholds: CheckThresholds,
    for_expectations: Callable[[pd.DataFrame], pd.DataFrame] = lambda readings: readings,
) -> AssetChecksDefinition:
    """`for_expectations` adapts a source's frame to the suite's schema (e.g. a column it lacks)."""
    expectations, complete = readings_check_names(asset)
    tag_names = list(tag_ranges)

    @multi_asset_check(
        name=f"{asset}_checks",
        specs=[
            AssetCheckSpec(
                expectations,
                asset=asset,
                blocking=True,
                partitions_def=partitions,
                description="great-expectations suite: not null, value within tag range, unique (ts, tag), "
                "ts in window.",
            ),
            AssetCheckSpec(
                complete,
                asset=asset,
                blocking=True,
                partitions_def=partitions,
                description="Share of expected samples present and share of good quality above the site's thresholds.",
            ),
        ],
        ins={"readings": AssetIn(asset)},
        pool=WAREHOUSE_POOL,
    )
    def readings_checks(context, readings: pd.DataFrame) -> Iterator[AssetCheckResult]:
        start, end = utc_window(context.op_execution_context.partition_time_window)

        validation = validate_readings(for_expectations(readings), tag_ranges, start, end)
        failed = validation.failed()
        yield AssetCheckResult(
            check_name=expectations,
            passed=validation.success,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(f"{o.expectation}: {o.unexpected_count} unexpected" for o in failed)
            or f"all {len(validation.outcomes)} expectations met on {len(readings)} rows",
            metadata={
                "rows": len(readings),
                "failed_expectations": [o.expectation for o in failed],
                "results": MetadataValue.md(validation.as_markdown()),
            },
        )

        result = completeness(
            readings,
            tag_names,
            (start, end),
            sample_interval_s,
            thresholds.min_expected_share,
            thresholds.min_good_share,
        )
        yield AssetCheckResult(
            check_name=complete,
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

    return readings_checks
