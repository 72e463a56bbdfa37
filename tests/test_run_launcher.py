"""The run launcher's worker health check against real processes, and Dagster's own run monitoring using it.

The daemon end to end (SIGKILLed worker, next queued run starting) is tests/e2e/test_dead_runs.py.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest
import yaml
from dagster import BetaWarning, DagsterRunStatus, PreviewWarning, instance_for_test, job, op
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import load_site_config
from gl_pipelines.run_launcher import WorkerCheckingRunLauncher, WorkerProcess, run_worker, worker_status

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = {"module": "gl_pipelines.run_launcher", "class": "WorkerCheckingRunLauncher"}


@op
def noop() -> None:
    pass


@job
def probe_job() -> None:
    noop()


@pytest.fixture(scope="module")
def instance():
    """One instance for the module (its set-up costs seconds); every test makes its own runs."""
    with instance_for_test(overrides={"run_launcher": LAUNCHER}) as instance:
        yield instance


@pytest.fixture
def worker():
    """A real process standing in for a run worker; killed and reaped afterwards."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def started_run(instance, pid: int | None, tags: dict | None = None):
    """A STARTED run whose worker announced `pid` the way Dagster's run worker does."""
    run = instance.create_run_for_job(probe_job, tags=tags or {})
    if pid is not None:
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run.run_id)
    return instance.get_run_by_id(run.run_id)


def test_deployment_instance_uses_the_checking_launcher():
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    assert config["run_launcher"] == LAUNCHER
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["poll_interval_seconds"] <= 30
    assert monitoring["start_timeout_seconds"] > 0
    assert monitoring["max_runtime_seconds"] > 0
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 30


def test_live_worker_is_running_killed_worker_is_failed(instance, worker):
    assert isinstance(instance.run_launcher, WorkerCheckingRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    run = started_run(instance, worker.pid)
    assert run.status == DagsterRunStatus.STARTED
    assert run_worker(instance, run.run_id).pid == worker.pid

    health = instance.run_launcher.check_run_worker_health(run)
    assert (health.status, health.msg) == (WorkerStatus.RUNNING, f"run worker process {worker.pid} is alive")

    os.kill(worker.pid, signal.SIGKILL)
    _wait_for_status(worker.pid, psutil.STATUS_ZOMBIE)
    health = instance.run_launcher.check_run_worker_health(run)
    assert (health.status, health.msg) == (
        WorkerStatus.FAILED,
        f"run worker process {worker.pid} has exited (zombie, not reaped)",
    )

    worker.wait()
    health = instance.run_launcher.check_run_worker_health(run)
    assert (health.status, health.msg) == (
        WorkerStatus.FAILED,
        f"run worker process {worker.pid} is gone (killed or crashed)",
    )
    assert health.run_worker_id == str(worker.pid)


def test_reused_pid_is_not_taken_for_the_worker(instance):
    """A pid announced before the live process with that number was created belongs to a dead worker."""
    run = instance.create_run_for_job(probe_job)
    me = psutil.Process(os.getpid())
    instance.report_engine_event(f"Started process for run (pid: {me.pid}).", run, EngineEventData.in_process(me.pid))
    record = run_worker(instance, run.run_id)
    assert worker_status(WorkerProcess(me.pid, record.announced_at))[0] == WorkerStatus.RUNNING
    status, message = worker_status(WorkerProcess(me.pid, me.create_time() - 60))
    assert (status, message) == (
        WorkerStatus.FAILED,
        f"run worker process {me.pid} is gone (pid reused by a newer process)",
    )


def test_unannounced_or_remote_worker_is_left_to_the_max_runtime(instance, worker):
    silent = started_run(instance, None)
    assert instance.run_launcher.check_run_worker_health(silent).status == WorkerStatus.RUNNING

    remote = started_run(
        instance, 999_999_999, tags={GRPC_INFO_TAG: json.dumps({"host": "code.plant.example", "port": 4000})}
    )
    health = instance.run_launcher.check_run_worker_health(remote)
    assert (health.status, health.msg) == (WorkerStatus.RUNNING, "run worker on another host: not checked")

    local = started_run(instance, 999_999_999, tags={GRPC_INFO_TAG: json.dumps({"host": "localhost", "port": 4000})})
    assert instance.run_launcher.check_run_worker_health(local).status == WorkerStatus.FAILED


def test_dagster_run_monitoring_fails_the_run_of_a_dead_worker(instance, worker):
    """Dagster's own monitoring step (what the daemon runs each poll) with this launcher."""
    alive = started_run(instance, worker.pid)
    monitor_started_run(instance, None, instance.get_run_record_by_id(alive.run_id), logging.getLogger("test"))
    assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED

    worker.kill()
    worker.wait()
    monitor_started_run(instance, None, instance.get_run_record_by_id(alive.run_id), logging.getLogger("test"))
    assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(alive.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    assert f"run worker process {worker.pid} is gone (killed or crashed)" in failure[0].event_log_entry.message


def _wait_for_status(pid: int, status: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while psutil.Process(pid).status() != status:
        assert time.monotonic() < deadline, f"process {pid} never became {status}"
        time.sleep(0.01)


def test_every_job_bounds_its_runtime(tmp_path):
    with warnings.catch_warnings():
        # The deliberate beta/preview features the definitions module itself silences at import (README).
        warnings.simplefilter("ignore", (BetaWarning, PreviewWarning))
        defs = build_definitions(load_site_config(), tmp_path / "w.duckdb")
    limits = {job.name: job.tags.get("dagster/max_runtime") for job in defs.jobs}
    assert limits == {
        "scada_hourly_job": "3600",
        "meter_hourly_job": "3600",
        "cems_raw_job": "3600",
        "cems_daily_job": "7200",
        "historian_daily_job": "7200",
        "erp_daily_job": "7200",
        "erp_master_data_job": "7200",
        "reports_daily_job": "7200",
        "reports_monthly_job": "7200",
    }
