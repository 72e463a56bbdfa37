"""Dead run recovery: from SIGKILL of the run worker holding the `duckdb_warehouse` slot to the next run's step
starting, through the real daemon on PostgreSQL.

The harness is the e2e test's (tests/e2e/dead_runs.py): a code server and `dagster-daemon run` on a copy of an
instance config, a scratch database, two runs of one job whose step joins the warehouse pool (one holds the
slot, one waits). Scenarios:

- `worker_and_code_server`: the worker and its code server are SIGKILLed (the code server restarted at once);
  stock Dagster has nothing left that notices the dead worker. This is the figure.
- `worker_only`: only the worker; the code server notices and fails the run, the slot still has to be freed.

Each on the deployment's dagster_home/dagster.yaml and, as the baseline in the same run, on that file without
the checking run launcher and with the earlier run_monitoring settings (poll 120 s default, slots freed 60 s after
the run ends). A baseline that does not recover within `--cap` seconds is reported as not recovered.

Run: `python bench/dead_run.py [--cap 300]` (about 12 minutes). Prints progress lines (`# ...`), then one JSON
object per figure per line, also written to bench/results/dead_run.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import emit

BENCH = "dead_run"
REPO = Path(__file__).resolve().parents[1]
TARGET_S = 300


def log(message: str) -> None:
    print(f"# {BENCH}: {message}", flush=True)


def baseline_config(deployed: Path, dest: Path) -> Path:
    """The deployed instance config as it was before the dead-run work: default launcher, slots freed after 60 s."""
    config = yaml.safe_load(deployed.read_text())
    config.pop("run_launcher", None)
    config["run_monitoring"] = {"enabled": True, "free_slots_after_run_end_seconds": 60}
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def measure(e2e, dead_runs, work: Path, instance_yaml: Path, code_server_too: bool, cap_s: float) -> dict:
    pg_database = contextlib.contextmanager(e2e.pg_database.__wrapped__)
    with pg_database() as database:
        pg_env = {
            "GL_PG_HOST": e2e.PG["host"],
            "GL_PG_PORT": str(e2e.PG["port"]),
            "GL_PG_USER": e2e.PG_USER,
            "GL_PG_PASSWORD": e2e.PG_PASSWORD,
            "GL_PG_DB": database,
        }
        began = time.perf_counter()
        with dead_runs.held_runs(work, database, e2e.pg_connect, pg_env, instance_yaml) as held:
            setup_s = time.perf_counter() - began
            try:
                recovery = dead_runs.kill_holder(held, code_server_too=code_server_too, timeout_s=cap_s)
            except TimeoutError:
                return {"recovered": False, "seconds": None, "cap_s": cap_s, "setup_s": round(setup_s, 1)}
            failed_at = held.query(
                "select extract(epoch from timestamp) from event_logs"
                " where run_id = %s and dagster_event_type = 'PIPELINE_FAILURE'",
                (recovery.holder,),
            )
            return {
                "recovered": True,
                "seconds": round(recovery.seconds, 1),
                "killed_to_run_failed_s": round(float(failed_at[0][0]) - recovery.killed_at, 1) if failed_at else None,
                "setup_s": round(setup_s, 1),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=TARGET_S, help="seconds to wait for a recovery")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.e2e import conftest as e2e
    from tests.e2e import dead_runs

    results: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gl-bench-dead-run-") as tmp:
        configs = {
            "deployed": dead_runs.DEPLOYED_INSTANCE,
            "baseline": baseline_config(dead_runs.DEPLOYED_INSTANCE, Path(tmp) / "baseline.yaml"),
        }
        for config_name, instance_yaml in configs.items():
            for scenario, code_server_too in (("worker_and_code_server", True), ("worker_only", False)):
                name = f"{config_name}/{scenario}"
                work = Path(tmp) / name.replace("/", "-")
                result = measure(e2e, dead_runs, work, instance_yaml, code_server_too, args.cap)
                log(f"{name}: {result}")
                results[name] = result

    figure = results["deployed/worker_and_code_server"]
    emit(
        BENCH,
        [
            {
                "figure": "dead_run_recovery_seconds",
                "value": figure["seconds"],
                "unit": "s",
                "target": f"<= {TARGET_S}",
                "scenarios": results,
                "stat": "one kill each; SIGKILL of the slot holder's run worker to the waiting run's STEP_START event",
                "loadavg_1m": [load_before, os.getloadavg()[0]],
            }
        ],
    )


if __name__ == "__main__":
    main()
