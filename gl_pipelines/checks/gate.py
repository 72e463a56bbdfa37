"""Refuse to build on upstream partitions whose blocking checks did not pass.

Dagster's `blocking=True` stops downstream steps inside the same run. Hourly readings and
their daily summary live in different runs (different partitions definitions), so the
downstream asset asks the instance, for every upstream partition: which run wrote the data
now stored, and did each blocking check pass in that run? A check evaluated by a single-run
backfill covers the whole range; Dagster 1.13 records that result without a partition, so a
run-wide result counts for every partition that run wrote. A source run whose checks failed records a
materialization marked `wap_status = quarantined` and leaves the stored rows as they were (`checks.wap`);
as the latest materialization it keeps downstream blocked until a passing run publishes.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AutomationCondition,
    DagsterEventType,
    EventLogRecord,
    Failure,
    MetadataValue,
)

_PAGE = 1000


def every_upstream_partition_checked() -> AutomationCondition:
    """True for a partition when none of the upstream partitions it reads has a blocking check that has not
    passed: the gate below, as an AutomationCondition. Dagster's `all_deps_blocking_checks_passed()` maps an
    upstream subset with "any": a plant day with 23 passing hours and one failed hour counted as passed."""
    not_passed = AutomationCondition.any_checks_match(~AutomationCondition.check_passed(), blocking_only=True)
    return (~AutomationCondition.any_deps_match(not_passed)).with_label("every_upstream_partition_checks_passed")


def latest_materializations(instance, upstream: AssetKey, partition_keys: Sequence[str]) -> dict[str, EventLogRecord]:
    """Partition -> its latest materialization record (paged: a year is 8,760 hours)."""
    wanted, latest = set(partition_keys), {}
    for start in range(0, len(partition_keys), _PAGE):
        chunk = list(partition_keys[start : start + _PAGE])
        cursor = None
        while True:
            page = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=upstream, asset_partitions=chunk), limit=_PAGE, cursor=cursor
            )
            for record in page.records:  # newest first
                if record.partition_key in wanted:
                    latest.setdefault(record.partition_key, record)
            if not page.has_more or all(key in latest for key in chunk):
                break
            cursor = page.cursor
    return latest


def writer_runs(instance, upstream: AssetKey, partition_keys: Sequence[str]) -> dict[str, str]:
    """Partition -> the run that wrote its latest materialization."""
    return {key: record.run_id for key, record in latest_materializations(instance, upstream, partition_keys).items()}


def check_results(instance, run_id: str, upstream: AssetKey) -> dict[tuple[str, str | None], bool]:
    """(check name, partition or None for run-wide) -> passed, for the checks evaluated in one run."""
    results: dict[tuple[str, str | None], bool] = {}
    cursor = None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=_PAGE
        )
        for record in page.records:  # oldest first: a later evaluation (a retry) wins
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            if evaluation.asset_key == upstream:
                results[(evaluation.check_name, evaluation.partition)] = evaluation.passed
        if not page.has_more:
            return results
        cursor = page.cursor


def problems_by_partition(
    instance, upstream: AssetKey, check_names: Sequence[str], partition_keys: Sequence[str]
) -> dict[str, list[str]]:
    """Partition -> one line per blocking check that has not passed on the data stored for it (empty: all passed)."""
    writers = writer_runs(instance, upstream, partition_keys)
    by_run = {run_id: check_results(instance, run_id, upstream) for run_id in set(writers.values())}
    problems: dict[str, list[str]] = {}
    for partition in partition_keys:
        run_id = writers.get(partition)
        if run_id is None:
            problems[partition] = [f"{partition}: not materialized"]
            continue
        results = by_run[run_id]
        problems[partition] = []
        for name in check_names:
            passed = results.get((name, partition), results.get((name, None)))
            if passed is not True:
                state = "not evaluated" if passed is None else "failed"
                problems[partition].append(f"{name}[{partition}]: {state} (run {run_id[:8]})")
    return problems


def blocking_problems(instance, upstream: AssetKey, check_names: Sequence[str], partition_keys: Sequence[str]):
    """One line per (check, partition) that has not passed on the data currently stored."""
    by_partition = problems_by_partition(instance, upstream, check_names, partition_keys)
    return [line for partition in partition_keys for line in by_partition[partition]]


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
