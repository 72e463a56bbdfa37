"""Write-audit-publish: a source asset's blocking checks judge its new rows before they replace the stored ones.

The checks are the asset's own `check_specs` (blocking; Dagster refuses to run the asset without them),
evaluated in the asset's step on the rows it just extracted. `audited` yields the Output with the verdict
in its metadata, then the check results. The warehouse IO manager (resources/warehouse.py) publishes the
rows when every check passed and otherwise keeps the stored partition and quarantines the rows. A failed
blocking check still fails the step (Dagster raises after the results), so downstream steps of the run
are skipped, and `checks.gate` keeps later downstream runs blocked until a passing run publishes.

A step over several partitions (a single-run backfill) gets its results recorded once, without a partition
(Dagster 1.13), while the UI's check statuses and `AutomationCondition`s read one record per partition: the
backfilled hours' checks stayed "planned" and showed as skipped ("0 / 2 Passed") although they passed.
`audited` therefore also records each verdict for every partition the step wrote (`per_partition`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    Output,
    PartitionsDefinition,
)

# Not exported by dagster 1.13; the UI counts a partition's check as current only when its evaluation names the
# partition's latest materialization, as Dagster's own AssetCheckResult does through this record.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from gl_pipelines.checks.gate import latest_materializations
from gl_pipelines.resources.warehouse import WAP_KEY, StagedRows


def blocking_specs(
    asset: str | AssetKey, descriptions: Mapping[str, str], partitions: PartitionsDefinition | None = None
) -> list[AssetCheckSpec]:
    """One blocking check spec per (name, description), for the asset's `check_specs`."""
    return [
        AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=partitions, description=description)
        for name, description in descriptions.items()
    ]


def audited(
    context: AssetExecutionContext,
    value: pd.DataFrame | StagedRows,
    metadata: Mapping[str, object],
    results: Sequence[AssetCheckResult],
    staged_table: str | None = None,
) -> Iterator[Output | AssetCheckResult | AssetCheckEvaluation]:
    """The Output of `value` (the rows, or a reference to their staging table) carrying the audit's verdict (failed
    check names; where the rows are staged), then the results, then (a step over several partitions) each result
    per partition."""
    failed = [result.check_name for result in results if not result.passed]
    verdict = {"failed_checks": failed, "staged_table": staged_table}
    yield Output(value, metadata={**metadata, WAP_KEY: MetadataValue.json(verdict)})
    yield from results
    yield from per_partition(context, results)


def per_partition(
    context: AssetExecutionContext, results: Sequence[AssetCheckResult]
) -> Iterator[AssetCheckEvaluation]:
    """Each partitioned check's verdict once per partition the step wrote, against that partition's new
    materialization (nothing for a one-partition step: Dagster records its partition itself).

    Non-blocking records: the run-wide result is the one Dagster enforces, so a failed check fails the step
    once, not once per hour of a year's backfill; the gate (`checks.gate`) reads either record."""
    if context.has_partition_key or not context.has_partition_key_range:
        return
    written = _materializations(context)
    keys = context.partition_keys
    for result in results:
        spec = context.assets_def.get_spec_for_check_key(AssetCheckKey(context.asset_key, result.check_name))
        if spec.partitions_def is None:
            continue
        for key in keys:
            yield AssetCheckEvaluation(
                asset_key=context.asset_key,
                check_name=result.check_name,
                passed=result.passed,
                metadata={**result.metadata, "evaluated_over": MetadataValue.text(f"{keys[0]} .. {keys[-1]}")},
                target_materialization_data=written.get(key),
                severity=result.severity,
                description=result.description,
                blocking=False,
                partition=key,
            )


def is_partition_copy(evaluation: AssetCheckEvaluation) -> bool:
    """A per-partition copy of a run-wide verdict (above), as opposed to the verdict itself."""
    return "evaluated_over" in evaluation.metadata


def _materializations(context: AssetExecutionContext) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Partition -> this run's materialization of the step's asset (already stored: the Output came first)."""
    latest = latest_materializations(context.instance, context.asset_key, context.partition_keys)
    return {
        key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        for key, record in latest.items()
        if record.run_id == context.run.run_id
    }
