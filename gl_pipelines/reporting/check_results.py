"""The data-quality check results behind the data currently stored, read from the Dagster instance.

For each partition, the run that wrote its latest materialization, and every check evaluated in
that run: the same rule `checks.gate` applies before a report is built, here kept with each
check's description for the month's validation page.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from dagster import AssetKey, DagsterEventType

from gl_pipelines.checks.gate import writer_runs

COLUMNS = ["asset", "check", "partition", "run_id", "passed", "description"]
_PAGE = 1000


def _evaluations(instance, run_id: str, asset_key: AssetKey) -> dict[tuple[str, str | None], tuple[bool, str]]:
    found: dict[tuple[str, str | None], tuple[bool, str]] = {}
    cursor = None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=_PAGE
        )
        for record in page.records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            if evaluation.asset_key == asset_key:
                found[(evaluation.check_name, evaluation.partition)] = (evaluation.passed, evaluation.description or "")
        if not page.has_more:
            return found
        cursor = page.cursor


def stored_check_results(instance, asset: AssetKey | str, partition_keys: Sequence[str]) -> pd.DataFrame:
    """One row per check evaluation that judged the stored partitions of `asset` (a run-wide evaluation
    appears once, with partition None). A string is a user string: `site/instance/name` is that prefixed key."""
    key = AssetKey.from_user_string(asset) if isinstance(asset, str) else asset
    asset_name = key.to_user_string()
    writers = writer_runs(instance, key, list(partition_keys))
    rows = []
    for run_id in sorted(set(writers.values())):
        wrote = {p for p, r in writers.items() if r == run_id}
        for (check, partition), (passed, description) in _evaluations(instance, run_id, key).items():
            if partition is None or partition in wrote:
                rows.append((asset_name, check, partition, run_id, bool(passed), description))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"passed": bool})
