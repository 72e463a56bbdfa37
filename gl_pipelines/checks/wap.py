"""Write-audit-publish: a source asset's blocking checks judge its new rows before they replace the stored ones.

The checks are the asset's own `check_specs` (blocking; Dagster refuses to run the asset without them),
evaluated in the asset's step on the rows it just extracted. `audited` yields the Output with the verdict
in its metadata, then the check results. The warehouse IO manager (resources/warehouse.py) publishes the
rows when every check passed and otherwise keeps the stored partition and quarantines the rows. A failed
blocking check still fails the step (Dagster raises after the results), so downstream steps of the run
are skipped, and `checks.gate` keeps later downstream runs blocked until a passing run publishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSpec, AssetKey, MetadataValue, Output, PartitionsDefinition

from gl_pipelines.resources.warehouse import WAP_KEY


def blocking_specs(
    asset: str | AssetKey, descriptions: Mapping[str, str], partitions: PartitionsDefinition | None = None
) -> list[AssetCheckSpec]:
    """One blocking check spec per (name, description), for the asset's `check_specs`."""
    return [
        AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=partitions, description=description)
        for name, description in descriptions.items()
    ]


def audited(
    frame: pd.DataFrame,
    metadata: Mapping[str, object],
    results: Sequence[AssetCheckResult],
    staged_table: str | None = None,
) -> Iterator[Output | AssetCheckResult]:
    """The Output carrying the audit's verdict (failed check names; where the rows are staged), then the results."""
    failed = [result.check_name for result in results if not result.passed]
    verdict = {"failed_checks": failed, "staged_table": staged_table}
    yield Output(frame, metadata={**metadata, WAP_KEY: MetadataValue.json(verdict)})
    yield from results
