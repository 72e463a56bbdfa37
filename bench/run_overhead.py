"""Run overhead: what a one-partition run launched through the daemon costs beyond reading its data.

The deployment as the e2e tests run it (tests/e2e/conftest.py): a scratch PostgreSQL database, the demo plant's
OPC UA server (its 6 configured tags), and the code location's gRPC code server, `dagster-daemon` and
`dagster-webserver` as separate processes on a copy of dagster_home/dagster.yaml. Each repetition launches
`scada_hourly_job` for one hour through GraphQL `launchRun` (queued, dequeued by the daemon, launched by the code
server in a fresh run worker) and waits for RUN_SUCCESS in Postgres.

- `run_overhead_seconds` (the figure): launch -> RUN_SUCCESS, minus the step's own extraction time (the
  materialization's `extraction_seconds`); median of the repetitions, each phase from the run's event log.
- Baseline in the same run: the same hour materialized in process in a fresh Python process (imports, then
  `materialize`; no queue, no launcher, no second process), minus its extraction time.
- What a fresh process pays to import: `gl_pipelines.definitions` (the run worker does this), and
  great-expectations alone, which the code imports only inside the check step.

All of it twice, each on its own deployment: `before` (no compiled bytecode, as this shell's
PYTHONDONTWRITEBYTECODE leaves every process compiling dagster, pandas and GX from source; the daemon's default
5 s queue tick) and `now` (bytecode compiled once, as the image's UV_COMPILE_BYTECODE=1 does, here into a
PYTHONPYCACHEPREFIX cache; the deployment dagster.yaml's 1 s queue tick). Each deployment's first run is a
warm-up, not counted.

Run: `python bench/run_overhead.py [--runs 3]` (about 6 minutes). Prints progress lines (`# ...`), then one JSON
object per figure per line, also written to bench/results/run_overhead.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml
from _common import emit

BENCH = "run_overhead"
REPO = Path(__file__).resolve().parents[1]
TARGET_S = 5.0
HOURS = [f"2026-11-02-{hour:02d}:00" for hour in range(10)]
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
# Event types as the event log stores them (Dagster keeps the PIPELINE_* names for run events).
PHASES = (
    "PIPELINE_ENQUEUED",
    "PIPELINE_DEQUEUED",
    "PIPELINE_STARTING",
    "PIPELINE_START",
    "STEP_START",
    "STEP_SUCCESS",
    "PIPELINE_SUCCESS",
)
IN_PROCESS = """
import json, sys, time
began = time.perf_counter()
from dagster import DagsterInstance, materialize
from gl_pipelines.definitions import defs
imported = time.perf_counter()
result = materialize([*defs.assets, *defs.asset_checks], resources=defs.resources, selection=["scada_readings"],
                     partition_key=sys.argv[1], instance=DagsterInstance.ephemeral())
(event,) = result.get_asset_materialization_events()
print(json.dumps({"wall_s": time.perf_counter() - began, "import_s": imported - began, "ok": result.success,
                  "extraction_s": event.materialization.metadata["extraction_seconds"].value}))
"""


def log(message: str) -> None:
    print(f"# {BENCH}: {message}", flush=True)


def fresh_python(code: str, *args: str, env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout) of `code` in a new interpreter, from the checkout."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{code[:60]!r} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - began, done.stdout


def event_times(database: str, run_id: str, pg_connect) -> dict[str, float]:
    """First epoch second of each event type of the run."""
    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(
            "select dagster_event_type, min(extract(epoch from timestamp)) from event_logs"
            " where run_id = %s and dagster_event_type is not null group by dagster_event_type",
            (run_id,),
        )
        return {kind: float(at) for kind, at in cur.fetchall()}


def extraction_seconds(database: str, run_id: str, pg_connect) -> float:
    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(
            "select event from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        (event,) = [json.loads(row[0]) for row in cur.fetchall()]
    entries = event["dagster_event"]["event_specific_data"]["materialization"]["metadata_entries"]
    found = [entry for entry in entries if entry["label"] == "extraction_seconds"]
    if not found:
        raise RuntimeError(f"no extraction_seconds in the materialization of run {run_id}")
    return float(found[0]["entry_data"]["value"])


def launched_run(dev, database: str, hour: str, pg_connect, timeout_s: float = 300) -> dict:
    params = {
        "selector": {"repositoryLocationName": "gl_pipelines", "repositoryName": "__repository__"}
        | {"jobName": "scada_hourly_job"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": hour}]},
    }
    launched_at = time.time()
    launched = dev.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun: {launched}")
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + timeout_s
    while True:
        times = event_times(database, run_id, pg_connect)
        if "PIPELINE_SUCCESS" in times:
            break
        if "PIPELINE_FAILURE" in times or time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} for {hour} did not succeed: {sorted(times)}\n{dev.log_tail()}")
        time.sleep(0.2)
    extraction = extraction_seconds(database, run_id, pg_connect)
    order = [name for name in PHASES if name in times]
    return {
        "hour": hour,
        "run_id": run_id,
        "launch_to_success_s": round(times["PIPELINE_SUCCESS"] - launched_at, 3),
        "extraction_s": extraction,
        "overhead_s": round(times["PIPELINE_SUCCESS"] - launched_at - extraction, 3),
        "phases_s": {f"{a}->{b}": round(times[b] - times[a], 3) for a, b in zip(order, order[1:], strict=False)}
        | {"launch->PIPELINE_ENQUEUED": round(times.get("PIPELINE_ENQUEUED", launched_at) - launched_at, 3)},
    }


VARIANTS = {
    "before": "as measured before: no compiled bytecode (this shell sets PYTHONDONTWRITEBYTECODE, so every process "
    "compiles dagster, pandas and great-expectations from source) and the daemon's default 5 s queue tick",
    "now": "bytecode compiled once and reused, as the image ships it (UV_COMPILE_BYTECODE=1; here a "
    "PYTHONPYCACHEPREFIX cache, leaving the shared venv untouched) and the deployment dagster.yaml's 1 s queue tick",
}


@contextmanager
def variant_environment(name: str, tmp: Path) -> Iterator[str | None]:
    """os.environ for the variant (the deployment fixture passes it to its processes); yields the instance yaml."""
    saved = dict(os.environ)
    deployed = (REPO / "dagster_home" / "dagster.yaml").read_text()
    try:
        if name == "now":
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            yield None
        else:
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            os.environ.pop("PYTHONPYCACHEPREFIX", None)
            settings = yaml.safe_load(deployed)
            settings.pop("run_queue", None)
            yield yaml.safe_dump(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure(name: str, runs: int, e2e) -> dict:
    """Daemon runs, in-process runs and import times of one variant, on its own deployment."""
    pg_database = contextmanager(e2e.pg_database.__wrapped__)
    plant_endpoint = contextmanager(e2e.plant_endpoint.__wrapped__)
    deployment = contextmanager(e2e.deployment.__wrapped__)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"gl-bench-overhead-{name}-")))
        instance_yaml = stack.enter_context(variant_environment(name, tmp))
        endpoint = stack.enter_context(plant_endpoint())
        database = stack.enter_context(pg_database())
        started = time.perf_counter()
        dev = stack.enter_context(
            deployment(tmp, database, endpoint, e2e.cems_folders.__wrapped__(tmp), instance_yaml=instance_yaml)
        )
        log(f"{name}: deployment up in {time.perf_counter() - started:.0f} s at {dev.url}, plant {endpoint}")

        # Not counted: the first run compiles what the run path imports (variant "now") and warms both variants'
        # file and database caches alike.
        warm = launched_run(dev, database, HOURS[0], e2e.pg_connect)
        log(f"{name}: warm-up run {HOURS[0]}: {warm['launch_to_success_s']} s")
        daemon_runs = []
        for hour in HOURS[1 : 1 + runs]:
            daemon_runs.append(launched_run(dev, database, hour, e2e.pg_connect))
            log(f"{name}: daemon run {hour}: {daemon_runs[-1]['launch_to_success_s']} s, {daemon_runs[-1]['phases_s']}")

        env = {**dev.env, "GL_WAREHOUSE": str(tmp / "in_process.duckdb"), "PYTHONPATH": str(REPO)}
        in_process = []
        for hour in HOURS[1 + runs : 1 + 2 * runs]:
            _, out = fresh_python(IN_PROCESS, hour, env=env)
            measured = json.loads(out)
            if not measured["ok"]:
                raise RuntimeError(f"in-process run of {hour} failed")
            in_process.append(measured | {"overhead_s": measured["wall_s"] - measured["extraction_s"]})
            log(f"{name}: in-process run {hour}: {measured['wall_s']:.2f} s (imports {measured['import_s']:.2f} s)")

        imports = [fresh_python("import gl_pipelines.definitions", env=env)[0] for _ in range(runs)]
        interpreter = [fresh_python("pass", env=env)[0] for _ in range(runs)]
        gx = [fresh_python("import great_expectations", env=env)[0] for _ in range(runs)]
        _, modules = fresh_python(
            "import sys, gl_pipelines.definitions; print('great_expectations' in sys.modules)", env=env
        )
    phases = sorted({phase for run in daemon_runs for phase in run["phases_s"]})
    return {
        "overhead": statistics.median(run["overhead_s"] for run in daemon_runs),
        "phases": {
            phase: statistics.median(run["phases_s"].get(phase, 0.0) for run in daemon_runs) for phase in phases
        },
        "daemon_runs": daemon_runs,
        "baseline": statistics.median(run["overhead_s"] for run in in_process),
        "in_process": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in in_process],
        "imports": statistics.median(imports) - statistics.median(interpreter),
        "gx": statistics.median(gx) - statistics.median(interpreter),
        "gx_at_load": modules.strip() == "True",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="counted repetitions of each way (at most 4)")
    args = parser.parse_args()
    runs = min(args.runs, (len(HOURS) - 1) // 2)

    sys.path.insert(0, str(REPO))
    from tests.e2e import conftest as e2e

    load_before = os.getloadavg()[0]
    found = {name: measure(name, runs, e2e) for name in VARIANTS}
    load = [load_before, os.getloadavg()[0]]
    now, before = found["now"], found["before"]
    emit(
        BENCH,
        [
            {
                "figure": "run_overhead_seconds",
                "value": round(now["overhead"], 3),
                "unit": "s",
                "target": f"<= {TARGET_S:g}",
                "before": round(before["overhead"], 3),
                "stat": f"median of {runs} one-partition runs of scada_hourly_job (6 tags, 1 hour) launched with "
                "GraphQL launchRun: launch -> RUN_SUCCESS in Postgres, minus the materialization's extraction_seconds; "
                f"{VARIANTS['now']}; `before`: the same, {VARIANTS['before']}",
                "phases_median_s": {k: round(v, 3) for k, v in now["phases"].items()},
                "phases_median_s_before": {k: round(v, 3) for k, v in before["phases"].items()},
                "runs": now["daemon_runs"],
                "runs_before": before["daemon_runs"],
                "loadavg_1m": load,
            },
            {
                "figure": "run_overhead_vs_before",
                "value": round(now["overhead"] / before["overhead"], 3),
                "unit": "ratio",
                "stat": "run_overhead_seconds now / before, both measured in this run",
                "loadavg_1m": load,
            },
            {
                "figure": "in_process_run_overhead_seconds",
                "value": round(now["baseline"], 3),
                "unit": "s",
                "before": round(before["baseline"], 3),
                "stat": f"baseline: median of {runs} fresh processes importing the definitions and materializing one "
                "hour in process (ephemeral instance), wall minus extraction_seconds",
                "runs": now["in_process"],
                "loadavg_1m": load,
            },
            {
                "figure": "definitions_import_seconds",
                "value": round(now["imports"], 3),
                "unit": "s",
                "before": round(before["imports"], 3),
                "stat": f"median of {runs} fresh interpreters: `import gl_pipelines.definitions` minus `pass`",
                "great_expectations_imported_by_definitions": now["gx_at_load"],
                "loadavg_1m": load,
            },
            {
                "figure": "great_expectations_import_seconds",
                "value": round(now["gx"], 3),
                "unit": "s",
                "before": round(before["gx"], 3),
                "stat": f"median of {runs} fresh interpreters: `import great_expectations` minus `pass`; paid "
                "only by a step that runs the expectations suite, not at definition load",
                "loadavg_1m": load,
            },
        ],
    )


if __name__ == "__main__":
    main()
