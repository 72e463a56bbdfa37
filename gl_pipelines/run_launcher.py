"""The instance's run launcher: Dagster's DefaultRunLauncher plus a run-worker health check.

The default launcher starts each run in a subprocess of the code server and cannot answer run
monitoring's `check_run_worker_health`. Only the code server notices a dead child, so a run whose
worker is SIGKILLed (an OOM kill) while that server is down, restarting or cannot reach the instance
database stays STARTED forever and keeps its `duckdb_warehouse` pool slot: every later run waits.
This launcher answers the check from the worker's own pid (Dagster's "Started process for run"
engine event), so the monitoring daemon fails such a run within one poll interval and, with
`free_slots_after_run_end_seconds`, frees its slots (dagster_home/dagster.yaml).

The pid is only meaningful where the worker runs: the daemon must share a host (and pid namespace)
with the code server, as `dagster dev` and the documented systemd deployment do. For a code server on
another host the check answers RUNNING and only the maximum runtime can end a dead run.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dagster_shared.seven as seven
import psutil
from dagster import DagsterEventType, DagsterInstance, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

WORKER_STARTED_PREFIX = "Started process for run"
"""How DefaultRunLauncher's worker announces its pid (dagster/_grpc/impl.py, dagster/_cli/api.py)."""
_ENGINE_EVENTS_SCANNED = 50
_CREATE_TIME_SLACK_S = 2.0
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}

MAX_RUNTIME_TAG = "dagster/max_runtime"
"""Run monitoring ends a run (worker alive but hung, e.g. on a frozen server) that is STARTED for longer."""
HOURLY_JOB_MAX_RUNTIME_S = 3600
"""An hourly job still running when the next hour's run is due is stuck; a long backfill launched through
the job sets its own `dagster/max_runtime` at launch."""
DAILY_JOB_MAX_RUNTIME_S = 7200


def max_runtime(seconds: int) -> dict[str, str]:
    """The job tag that bounds each of its runs' runtime (seconds)."""
    return {MAX_RUNTIME_TAG: str(seconds)}


@dataclass(frozen=True)
class WorkerProcess:
    pid: int
    announced_at: float
    """When the worker wrote its pid (epoch seconds): a process created later only reuses the number."""


def run_worker(instance: DagsterInstance, run_id: str) -> WorkerProcess | None:
    """The run worker's pid from the run's first engine events, or None before the worker announced it."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=_ENGINE_EVENTS_SCANNED, ascending=True
    ).records
    for record in records:
        entry = record.event_log_entry
        if not entry.message.startswith(WORKER_STARTED_PREFIX):
            continue
        pid = entry.dagster_event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return WorkerProcess(pid=int(pid.value), announced_at=entry.timestamp)
    return None


def worker_status(worker: WorkerProcess) -> tuple[WorkerStatus, str]:
    """RUNNING while that very process lives; FAILED once it is gone, a zombie, or its pid was reused."""
    try:
        process = psutil.Process(worker.pid)
        status, created = process.status(), process.create_time()
    except psutil.NoSuchProcess:
        return WorkerStatus.FAILED, f"run worker process {worker.pid} is gone (killed or crashed)"
    except psutil.AccessDenied:
        return WorkerStatus.RUNNING, f"run worker process {worker.pid} exists (not ours to inspect)"
    if status == psutil.STATUS_ZOMBIE:
        return WorkerStatus.FAILED, f"run worker process {worker.pid} has exited (zombie, not reaped)"
    if created > worker.announced_at + _CREATE_TIME_SLACK_S:
        return WorkerStatus.FAILED, f"run worker process {worker.pid} is gone (pid reused by a newer process)"
    return WorkerStatus.RUNNING, f"run worker process {worker.pid} is alive"


def worker_is_local(run: DagsterRun) -> bool:
    """Whether the run's code server (hence its worker) is on this host: a unix socket or a local address."""
    raw = run.tags.get(GRPC_INFO_TAG)
    if raw is None:
        return True  # launched without a code server (e.g. `dagster job execute`): the worker is a local process
    info = seven.json.loads(raw)
    if info.get("socket"):
        return True
    host = str(info.get("host", "")).lower()
    return host in _LOCAL_HOSTS or host in {socket.gethostname().lower(), socket.getfqdn().lower()}


class WorkerCheckingRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose runs the monitoring daemon can health-check (see module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        # Anything but RUNNING/SUCCESS makes the monitoring daemon fail the run: answer FAILED only when sure.
        if not worker_is_local(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker on another host: not checked")
        worker = run_worker(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker has not announced its pid yet")
        status, message = worker_status(worker)
        return CheckRunHealthResult(status, message, run_worker_id=str(worker.pid))
