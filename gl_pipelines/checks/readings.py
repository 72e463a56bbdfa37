"""The two blocking checks every long-schema readings asset gets (SCADA, historian), run as its audit.

The great-expectations readings suite (not null, value within tag range, unique (ts, tag), ts in
window) and completeness (share of expected samples present, share good). The asset stages its new
rows in the warehouse and both checks run there in SQL before anything is published (`checks.wap`):
from one frame (`run`), or from rows it staged chunk by chunk (`run_staged`), which no step then holds whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)

from gl_pipelines.assets.partitions import utc_window
from gl_pipelines.checks.completeness import completeness_of_counts
from gl_pipelines.checks.expectations import validate_staged
from gl_pipelines.checks.wap import audited, blocking_specs
from gl_pipelines.config import CheckThresholds
from gl_pipelines.resources.warehouse import StagedRows, WarehouseStaging, connect_warehouse


def readings_check_names(asset: str) -> tuple[str, str]:
    """(expectations, completeness) check names of `asset`."""
    return f"{asset}_expectations", f"{asset}_completeness"


@dataclass(frozen=True)
class ReadingsAudit:
    """The blocking checks of one readings asset, and how its step runs them on the rows it extracted."""

    asset: str
    partitions: TimeWindowPartitionsDefinition
    tag_ranges: dict[str, tuple[float, float]]
    sample_interval_s: float
    thresholds: CheckThresholds
    key: AssetKey | None = None
    """The asset's key when an instance prefixes it (checks keep the short `asset` in their names)."""

    @property
    def check_names(self) -> tuple[str, str]:
        return readings_check_names(self.asset)

    def specs(self) -> list[AssetCheckSpec]:
        expectations, complete = self.check_names
        return blocking_specs(
            self.key or self.asset,
            {
                expectations: "great-expectations suite: not null, value within tag range, unique (ts, tag), "
                "ts in window.",
                complete: "Share of expected samples present and share of good quality above the site's thresholds.",
            },
            self.partitions,
        )

    def run(self, context, frame: pd.DataFrame, metadata: Mapping[str, object], staging: WarehouseStaging) -> Iterator:
        """Stage `frame`, check it in the warehouse, and yield the Output with the verdict and the results."""
        staged = StagedRows(staging.stage(self.asset, frame), len(frame))
        yield from self._audit(context, frame, staged, metadata, staging)

    def run_staged(
        self, context, staged: StagedRows, metadata: Mapping[str, object], staging: WarehouseStaging
    ) -> Iterator:
        """Check rows already staged (`WarehouseStaging.stage_chunks`) and yield `staged` itself as the Output,
        which the IO manager publishes or quarantines inside DuckDB."""
        yield from self._audit(context, staged, staged, metadata, staging)

    def _audit(
        self,
        context,
        value: pd.DataFrame | StagedRows,
        staged: StagedRows,
        metadata: Mapping[str, object],
        staging: WarehouseStaging,
    ) -> Iterator:
        start, end = utc_window(context.partition_time_window)
        try:
            validation = validate_staged(staging.database, staged.table, self.tag_ranges, start, end)
            per_tag, good = _counts(staging.database, staged.table)
        except BaseException:
            staging.drop(staged.table)
            raise
        expectations, complete = self.check_names
        failed = validation.failed()
        results = [
            AssetCheckResult(
                check_name=expectations,
                passed=validation.success,
                severity=AssetCheckSeverity.ERROR,
                description="; ".join(f"{o.expectation}: {o.unexpected_count} unexpected" for o in failed)
                or f"all {len(validation.outcomes)} expectations met on {staged.rows} rows",
                metadata={
                    "rows": staged.rows,
                    "failed_expectations": [o.expectation for o in failed],
                    "results": MetadataValue.md(validation.as_markdown()),
                },
            )
        ]
        result = completeness_of_counts(
            per_tag,
            good,
            list(self.tag_ranges),
            (start, end),
            self.sample_interval_s,
            self.thresholds.min_expected_share,
            self.thresholds.min_good_share,
        )
        results.append(
            AssetCheckResult(
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
        )
        yield from audited(context, value, metadata, results, staged_table=staged.table)


def staged_profile(database: str, table: str, preview_rows: int = 10) -> tuple[dict[str, int], pd.DataFrame]:
    """(rows per quality, the first `preview_rows` rows) of staged rows, for provenance metadata without a frame."""
    connection = connect_warehouse(database)
    try:
        qualities = dict(connection.execute(f"SELECT quality, count(*) FROM {table} GROUP BY quality").fetchall())
        preview = connection.execute(f"SELECT * FROM {table} LIMIT {int(preview_rows)}").fetchdf()
    finally:
        connection.close()
    return {str(quality): int(count) for quality, count in qualities.items()}, preview


def _counts(database: str, table: str) -> tuple[pd.Series, int]:
    """(rows per tag, good rows) of the staged rows, counted in DuckDB."""
    connection = connect_warehouse(database)
    try:
        per_tag = connection.execute(f"SELECT tag, count(*) AS n FROM {table} GROUP BY tag").fetchdf()
        ((good,),) = connection.execute(f"SELECT count(*) FROM {table} WHERE quality = 'good'").fetchall()
    finally:
        connection.close()
    return per_tag.set_index("tag")["n"], int(good)
