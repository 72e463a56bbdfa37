"""The cross-run gate on instance records, at the scale of a year-long single-run backfill."""

import dagster as dg

from gl_pipelines.checks.gate import blocking_problems

hours = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00", timezone="America/Chicago")
BAD: set[str] = set()


@dg.asset(partitions_def=hours, backfill_policy=dg.BackfillPolicy.single_run())
def probe(context) -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset_check(asset=probe, blocking=True, partitions_def=hours)
def probe_ok(context) -> dg.AssetCheckResult:
    keys = context.op_execution_context.partition_keys
    return dg.AssetCheckResult(passed=not (BAD & set(keys)))


def materialize(instance, **kwargs):
    return dg.materialize([probe, probe_ok], instance=instance, raise_on_error=False, **kwargs)


def test_a_1200_hour_single_run_backfill_passes_the_gate_and_a_bad_rerun_blocks_its_hour():
    keys = hours.get_partition_keys()[:1200]  # two gate pages (1,000 each), the second partial
    with dg.instance_for_test() as instance:
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        assert materialize(instance, tags=tags).success
        assert blocking_problems(instance, dg.AssetKey("probe"), ["probe_ok"], keys) == []

        BAD.add(keys[1111])
        try:
            assert not materialize(instance, partition_key=keys[1111]).success
        finally:
            BAD.clear()
        problems = blocking_problems(instance, dg.AssetKey("probe"), ["probe_ok"], keys + ["2025-06-01-00:00"])
        assert problems[0].startswith(f"probe_ok[{keys[1111]}]: failed (run ")
        assert problems[1:] == ["2025-06-01-00:00: not materialized"]
