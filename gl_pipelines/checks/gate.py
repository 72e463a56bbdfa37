"""Refuse to build on upstream partitions whose blocking checks did not pass.

Dagster's `blocking=True` stops downstream steps inside the same run. Hourly readings and
their daily summary live in different runs (different partitions definitions), so the
downstream asset asks the instance, for every upstream partition: which run wrote the data
now stored, and did each blocking check pass in that run? A check evaluated by a single-run
backfill covers the whole range; Dagster 1.13 records that result without a partition and
leaves the per-partition records "planned", so a run-wide result counts for every partition
that run wrote.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, Failure, MetadataValue
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

_HISTORY_LIMIT = 2000


def blocking_problems(instance, upstream: AssetKey, check_names: Sequence[str], partition_keys: Sequence[str]):
    """One line per (check, partition) that has not passed on the data currently stored."""
    materializations = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=upstream, asset_partitions=list(partition_keys)),
        limit=_HISTORY_LIMIT,
    ).records
    writer_run: dict[str, str] = {}
    for record in materializations:  # newest first
        writer_run.setdefault(record.partition_key, record.run_id)
    status: dict[tuple[str, str, str | None], AssetCheckExecutionRecordStatus] = {}
    for name in check_names:
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(upstream, name), limit=_HISTORY_LIMIT
        )
        for record in history:  # newest first
            status.setdefault((name, record.run_id, record.partition), record.status)
    problems = []
    for partition in partition_keys:
        run_id = writer_run.get(partition)
        if run_id is None:
            problems.append(f"{partition}: not materialized")
            continue
        for name in check_names:
            result = status.get((name, run_id, partition))
            if result in (None, AssetCheckExecutionRecordStatus.PLANNED):
                result = status.get((name, run_id, None), result)
            if result != AssetCheckExecutionRecordStatus.SUCCEEDED:
                state = result.value.lower() if result else "not evaluated"
                problems.append(f"{name}[{partition}]: {state} (run {run_id[:8]})")
    return problems


def require_checks_passed(context, upstream: AssetKey, check_names: Sequence[str], partition_keys: Sequence[str]):
    """Raise `Failure` naming each (check, partition) that has not passed on the latest data."""
    problems = blocking_problems(context.instance, upstream, check_names, partition_keys)
    if problems:
        raise Failure(
            description=(
                f"blocked: {len(problems)} blocking check result(s) on {upstream.to_user_string()} did not pass: "
                + "; ".join(problems[:10])
            ),
            metadata={"blocking_problems": MetadataValue.json(problems)},
        )
