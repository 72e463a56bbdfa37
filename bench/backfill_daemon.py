"""A year of `scada_daily_summary` backfilled through the real daemon: one run (single-run policy) vs one per day.

Everything runs as real processes: the demo plant (on free ports, Modbus included; see orchestration.py), and,
with the e2e harness's own fixtures (tests/e2e/conftest.py), a fresh PostgreSQL database and the deployment
(code server, daemon, webserver) on a copy of dagster_home/dagster.yaml. The site config is the demo site's
SCADA source cut to a few tags (a temporary YAML file, $GL_SITE_CONFIG), so preparing the upstream stays
affordable. Every run worker imports the
code location afresh, and this benchmark lasts many minutes in a shared checkout, so all these processes run on
a snapshot of the code taken (and import-checked) at the start.

1. Preparation (not part of the figure): in the first deployment (single-run policy, as deployed), one
   backfill of `scada_readings` over every hourly partition of the chosen plant days (America/Chicago, so
   the DST days have 23 and 25 hours; keys come from the partitions definitions). The daily summary refuses
   to run unless every hour was materialized with its blocking checks passed, in the same instance.
2. Single run: in the same deployment, a backfill of `scada_daily_summary` over the plant days.
3. Per partition: the deployment restarted on the same database and warehouse with
   $GL_BACKFILL_PARTITIONS_PER_RUN=1, the same backfill again: one run per day.

Each backfill is launched with GraphQL `launchPartitionBackfill`; its wall clock runs from the launch to the
backfill reporting a final status. Runs are counted in Postgres (runs tagged with the backfill id) and each
run's phases are read from its event log, to show where a per-partition run spends its time.

Run: `python bench/backfill_daemon.py [--days N]` (default: all 365 plant days of 2025, about 40 minutes).
Prints progress lines
(`# ...`), then one JSON object per figure per line, also written to bench/results/backfill_daemon.jsonl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import demo_plant, emit

BENCH = "backfill_daemon"
REPO = Path(__file__).resolve().parents[1]
YEAR = ("2025-01-01", "2025-12-31")
N_TAGS = 1
PER_RUN_ENV = "GL_BACKFILL_PARTITIONS_PER_RUN"
PROGRESS_EVERY_S = 30.0
DEFAULT_DAYS = 365
"""A year. Per-partition runs go one at a time (the `duckdb_warehouse` pool has limit 1), ~5 s each here, so
the whole script takes about 40 minutes; `--days N` measures the first N plant days instead."""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } }
    ... on PythonError { message }
  }
}
"""
# Per run of a backfill: status, and the first time each lifecycle event was written.
RUN_PHASES_SQL = """
select r.run_id, r.status, e.dagster_event_type, min(extract(epoch from e.timestamp))
from runs r
join run_tags t on t.run_id = r.run_id and t.key = 'dagster/backfill' and t.value = %s
left join event_logs e on e.run_id = r.run_id and e.dagster_event_type = any(%s)
group by r.run_id, r.status, e.dagster_event_type
"""
PHASE_EVENTS = [
    "PIPELINE_ENQUEUED",
    "PIPELINE_STARTING",
    "PIPELINE_START",
    "STEP_START",
    "STEP_SUCCESS",
    "STEP_FAILURE",
    "PIPELINE_SUCCESS",
    "PIPELINE_FAILURE",
]
RUN_COUNTS_SQL = """
select r.status, count(*) from runs r
join run_tags t on t.run_id = r.run_id and t.key = 'dagster/backfill' and t.value = %s
group by r.status
"""
FIRST_FAILURE_SQL = """
select e.event from event_logs e
join run_tags t on t.run_id = e.run_id and t.key = 'dagster/backfill' and t.value = %s
where e.dagster_event_type = 'STEP_FAILURE' order by e.id limit 1
"""
MATERIALIZED_SQL = """
select count(distinct e.partition) from event_logs e
join run_tags t on t.run_id = e.run_id and t.key = 'dagster/backfill' and t.value = %s
where e.dagster_event_type = 'ASSET_MATERIALIZATION'
"""


def log(message: str) -> None:
    print(f"# {BENCH}: {message}", flush=True)


@contextmanager
def environment(**values: str | None):
    """Set (or, with None, unset) environment variables for what starts inside the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def write_site_config(path: Path, n_tags: int) -> None:
    """The demo site's SCADA source with only its first `n_tags` tags (endpoint from $GL_OPCUA_ENDPOINT)."""
    import yaml

    site = yaml.safe_load((REPO / "config" / "demo_site.yaml").read_text())
    site["opcua"]["tags"] = site["opcua"]["tags"][:n_tags]
    site.pop("modbus", None)
    path.write_text(yaml.safe_dump(site, sort_keys=False))


def snapshot_code(dest: Path, site_path: Path, attempts: int = 6) -> None:
    """Copy what the deployment loads into `dest`; retry while the copy does not import (a file mid-edit)."""
    for attempt in range(1, attempts + 1):
        shutil.rmtree(dest, ignore_errors=True)
        for name in ("gl_pipelines", "config", "dagster_home", "deploy"):
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "workspace.yaml", dest)
        loaded = subprocess.run(
            [sys.executable, "-c", "import gl_pipelines.definitions"],
            cwd=dest,
            env={**os.environ, "GL_SITE_CONFIG": str(site_path)},
            capture_output=True,
            text=True,
        )
        if loaded.returncode == 0:
            return
        log(f"code snapshot {attempt} does not load, retrying: {loaded.stderr.strip().splitlines()[-1:]}")
        time.sleep(15)
    raise RuntimeError(f"no loadable snapshot of the code after {attempts} attempts")


def plant_days(timezone: str, n_days: int) -> tuple[list[str], list[str]]:
    """The first `n_days` daily keys of 2025 and every hourly key inside them, from the partitions definitions."""
    from dagster import PartitionKeyRange, TimeWindow

    from gl_pipelines.assets.partitions import site_daily_partitions, site_hourly_partitions

    daily = site_daily_partitions(timezone)
    days = daily.get_partition_keys_in_range(PartitionKeyRange(*YEAR))[:n_days]
    window = TimeWindow(
        daily.time_window_for_partition_key(days[0]).start, daily.time_window_for_partition_key(days[-1]).end
    )
    return days, site_hourly_partitions(timezone).get_partition_keys_in_time_window(window)


def run_counts(database: str, backfill_id: str) -> Counter:
    from tests.e2e.conftest import pg_connect

    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(RUN_COUNTS_SQL, (backfill_id,))
        return Counter(dict(cur.fetchall()))


def run_backfill(dev, database: str, asset: str, partitions: list[str], label: str, timeout_s: float) -> dict:
    """Launch a backfill of `asset` over `partitions`, wait for its final status, describe its runs."""
    from tests.e2e.test_ui_postgres import BACKFILL_DONE, LAUNCH_BACKFILL

    params = {"assetSelection": [{"path": [asset]}], "partitionNames": partitions, "title": f"bench {label}"}
    launched_at = time.time()
    began = time.perf_counter()
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"{label}: launch failed: {launched}")
    backfill_id = launched["backfillId"]
    log(f"{label}: backfill {backfill_id} of {asset} over {len(partitions)} partitions launched")
    next_progress = began + PROGRESS_EVERY_S
    while True:
        backfill = dev.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["__typename"] != "PartitionBackfill":
            raise RuntimeError(f"{label}: {backfill}")
        if backfill["status"] in BACKFILL_DONE:
            wall = time.perf_counter() - began
            break
        now = time.perf_counter()
        if now - began > timeout_s:
            raise RuntimeError(f"{label}: not done after {timeout_s:.0f} s: {backfill}\n{dev.log_tail()}")
        if now >= next_progress:
            counts = run_counts(database, backfill_id)
            log(f"{label}: {now - began:.0f} s, backfill {backfill['status']}, runs {dict(sorted(counts.items()))}")
            next_progress = now + PROGRESS_EVERY_S
        time.sleep(0.5)
    result = {"backfill_id": backfill_id, "status": backfill["status"], "wall_s": round(wall, 2)}
    result.update(describe_runs(database, backfill_id, launched_at, launched_at + wall))
    if backfill["error"]:
        result["error"] = backfill["error"]["message"][:300]
    log(f"{label}: {result['status']} in {wall:.1f} s, {result['runs']} run(s) {result['run_status']}")
    return result


def describe_runs(database: str, backfill_id: str, launched_at: float, done_at: float) -> dict:
    """Run count and status, partitions materialized, and per run the median time spent in each phase."""
    from dagster import deserialize_value

    from tests.e2e.conftest import pg_connect

    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(RUN_PHASES_SQL, (backfill_id, PHASE_EVENTS))
        rows = cur.fetchall()
        cur.execute(MATERIALIZED_SQL, (backfill_id,))
        (materialized,) = cur.fetchone()
        cur.execute(FIRST_FAILURE_SQL, (backfill_id,))
        failure = cur.fetchone()
    runs: dict[str, dict[str, float]] = {}
    status: dict[str, str] = {}
    for run_id, run_status, event, at in rows:
        status[run_id] = run_status
        if event:
            runs.setdefault(run_id, {})[event] = float(at)

    def phase(start: str, ends: tuple[str, ...]) -> float | None:
        spans = []
        for events in runs.values():
            end = next((events[e] for e in ends if e in events), None)
            if start in events and end is not None:
                spans.append(end - events[start])
        return round(statistics.median(spans), 3) if spans else None

    described = {
        "runs": len(status),
        "run_status": dict(Counter(status.values())),
        "partitions_materialized": materialized,
        # Medians over the backfill's runs, in seconds.
        "run_phases_median_s": {
            "queued": phase("PIPELINE_ENQUEUED", ("PIPELINE_STARTING",)),
            "worker_start": phase("PIPELINE_STARTING", ("PIPELINE_START",)),
            "before_step": phase("PIPELINE_START", ("STEP_START",)),
            "step": phase("STEP_START", ("STEP_SUCCESS", "STEP_FAILURE")),
            "after_step": phase("STEP_SUCCESS", ("PIPELINE_SUCCESS", "PIPELINE_FAILURE")),
            "dequeued_to_end": phase("PIPELINE_STARTING", ("PIPELINE_SUCCESS", "PIPELINE_FAILURE")),
        },
    }
    # Runs that went one after another: how long the next one took to leave the queue once one had ended.
    timeline = sorted(
        (events["PIPELINE_STARTING"], events.get("PIPELINE_SUCCESS", events.get("PIPELINE_FAILURE")))
        for events in runs.values()
        if "PIPELINE_STARTING" in events
    )
    gaps = [nxt[0] - cur[1] for cur, nxt in zip(timeline, timeline[1:], strict=False) if cur[1] and nxt[0] >= cur[1]]
    if gaps:
        described["run_phases_median_s"]["end_to_next_dequeued"] = round(statistics.median(gaps), 3)
    described["max_runs_in_progress"] = max_overlap(timeline)
    enqueued = [events["PIPELINE_ENQUEUED"] for events in runs.values() if "PIPELINE_ENQUEUED" in events]
    ended = [
        events.get("PIPELINE_SUCCESS", events.get("PIPELINE_FAILURE"))
        for events in runs.values()
        if "PIPELINE_SUCCESS" in events or "PIPELINE_FAILURE" in events
    ]
    if enqueued and ended:
        described["launch_to_first_run_s"] = round(min(enqueued) - launched_at, 2)
        described["launch_to_last_enqueued_s"] = round(max(enqueued) - launched_at, 2)
        described["last_run_end_to_done_s"] = round(done_at - max(ended), 2)
    if failure:
        error = deserialize_value(failure[0]).dagster_event.step_failure_data.error
        described["first_step_failure"] = " ".join(error.message.split())[:400]
    return described


def max_overlap(timeline: list[tuple[float, float | None]]) -> int:
    """The most runs between dequeued and ended at any one moment."""
    edges = sorted([(start, 1) for start, _ in timeline] + [(end, -1) for _, end in timeline if end])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def estimate_365(way: dict, days: int) -> float | None:
    """A backfill's wall clock extrapolated to 365 days: the fixed daemon latencies plus runs at the same pace."""
    if days >= 365 or "launch_to_first_run_s" not in way:
        return None
    fixed = way["launch_to_first_run_s"] + way["last_run_end_to_done_s"]
    return round(fixed + (way["wall_s"] - fixed) / days * 365, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="first N plant days of 2025 (both variants)")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.e2e import conftest as e2e

    # The e2e fixtures as plain context managers (pytest keeps the decorated function in __wrapped__).
    pg_database = contextmanager(e2e.pg_database.__wrapped__)
    deployment = contextmanager(e2e.deployment.__wrapped__)

    from gl_pipelines.config import load_site_config

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gl-bench-backfill-")))
        site_path = tmp / "site.yaml"
        write_site_config(site_path, N_TAGS)
        timezone = load_site_config(site_path).site.timezone
        days, hours = plant_days(timezone, args.days)
        log(f"{len(days)} plant days {days[0]}..{days[-1]} ({timezone}) = {len(hours)} hourly partitions")
        # The fixtures run their processes in e2e.REPO (`cwd`, and where dagster.yaml is copied from).
        e2e.REPO = tmp / "code"
        snapshot_code(e2e.REPO, site_path)
        stack.enter_context(environment(GL_SITE_CONFIG=str(site_path), GL_OPCUA_ENDPOINT=None))
        endpoint, _ = stack.enter_context(demo_plant(cwd=e2e.REPO))
        database = stack.enter_context(pg_database())
        log(f"demo plant at {endpoint}, database {database}")

        single_dir, split_dir = tmp / "single_run", tmp / "per_partition"
        single_dir.mkdir()
        split_dir.mkdir()
        with environment(**{PER_RUN_ENV: None}):
            started = time.perf_counter()
            with deployment(single_dir, database, endpoint, e2e.cems_folders.__wrapped__(single_dir)) as dev:
                log(f"deployment (single-run policy) up in {time.perf_counter() - started:.0f} s at {dev.url}")
                prep = run_backfill(dev, database, "scada_readings", hours, "preparation", timeout_s=1800)
                if prep["status"] != "COMPLETED_SUCCESS" or prep["partitions_materialized"] != len(hours):
                    raise RuntimeError(f"preparation failed: {prep}\n{dev.log_tail()}")
                single = run_backfill(dev, database, "scada_daily_summary", days, "single_run", timeout_s=900)
        # The second instance reads the same upstream rows: same database, a copy of the same warehouse.
        for path in single_dir.glob("w.duckdb*"):
            shutil.copy(path, split_dir / path.name)
        with environment(**{PER_RUN_ENV: "1"}):
            started = time.perf_counter()
            with deployment(split_dir, database, endpoint, e2e.cems_folders.__wrapped__(split_dir)) as dev:
                log(f"deployment ({PER_RUN_ENV}=1) up in {time.perf_counter() - started:.0f} s at {dev.url}")
                split = run_backfill(dev, database, "scada_daily_summary", days, "per_partition", timeout_s=2700)

    ok = all(
        way["status"] == "COMPLETED_SUCCESS" and way["partitions_materialized"] == len(days) for way in (single, split)
    )
    if not ok:
        log("a backfill did not complete successfully: the ratio is not a valid figure")
    emit(
        BENCH,
        [
            {
                "figure": "backfill_365_single_vs_per_partition",
                "value": round(single["wall_s"] / split["wall_s"], 4) if ok else None,
                "unit": "ratio",
                "target": "<= 0.1",
                "partitions": len(days),
                "days": f"{days[0]}..{days[-1]}",
                "hourly_upstream_partitions": len(hours),
                "tags": N_TAGS,
                "single_run": single,
                "per_partition": split,
                "preparation": prep,
                "per_partition_365_estimate_s": estimate_365(split, len(days)),
                "why_not_365": None if len(days) >= 365 else f"--days {len(days)} was asked",
                "stat": "one backfill each; wall clock from launchPartitionBackfill to the backfill's final status",
                "total_s": round(time.perf_counter() - began, 1),
                "loadavg_1m": [load_before, os.getloadavg()[0]],
            }
        ],
    )


if __name__ == "__main__":
    main()
