"""A run worker SIGKILLed while holding the `duckdb_warehouse` slot, through the real daemon on PostgreSQL.

Shared by tests/e2e/test_dead_runs.py and bench/dead_run.py. Real processes: a code server
(`dagster api grpc`, tests/e2e/held_location.py) and `dagster-daemon run` on a copy of an instance config
(the deployment's dagster_home/dagster.yaml unless told otherwise), storage in a scratch PostgreSQL
database, and a loopback HTTP receiver for the run-failure alert. The location's sensor queues two runs;
one holds the warehouse slot, the other waits for it. `kill_holder` SIGKILLs the holder's run worker (and,
with `code_server_too`, its code server, which is what would otherwise notice, then starts it again as a
supervisor would) and waits for the waiting run's step to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOYED_INSTANCE = REPO / "dagster_home" / "dagster.yaml"
_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


@dataclass
class AlertReceiver:
    """Loopback webhook: records every JSON body it is sent, answers 200."""

    url: str = ""
    bodies: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def alert_receiver() -> Iterator[AlertReceiver]:
    state = AlertReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/gl"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class HeldRuns:
    database: str
    connect: Callable
    env: dict[str, str]
    port: int
    log_dir: Path
    receiver: AlertReceiver
    code_servers: list[subprocess.Popen] = field(default_factory=list)
    daemon: subprocess.Popen | None = None

    @property
    def code_server(self) -> subprocess.Popen | None:
        return self.code_servers[-1] if self.code_servers else None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of `sql`; none while the daemon has not created Dagster's tables yet."""
        with contextlib.closing(self.connect(self.database)) as conn, conn.cursor() as cur:
            try:
                cur.execute(sql, args)
            except psycopg2.errors.UndefinedTable:
                return []
            return cur.fetchall()

    def statuses(self) -> dict[str, str]:
        return dict(self.query("select run_id, status from runs"))

    def step_starts(self) -> dict[str, float]:
        """Run id -> when its step started (epoch seconds, as the run worker stored it)."""
        sql = """select run_id, min(extract(epoch from timestamp)) from event_logs
                 where dagster_event_type = 'STEP_START' group by run_id"""
        return {run_id: float(at) for run_id, at in self.query(sql)}

    def worker_pid(self, run_id: str) -> int | None:
        sql = "select event from event_logs where run_id = %s and dagster_event_type = 'ENGINE_EVENT' order by id"
        for (event,) in self.query(sql, (run_id,)):
            found = _PID.search(event)
            if found:
                return int(found.group(1))
        return None

    def failure_message(self, run_id: str) -> str | None:
        sql = "select event from event_logs where run_id = %s and dagster_event_type = 'PIPELINE_FAILURE'"
        rows = self.query(sql, (run_id,))
        return json.loads(rows[0][0])["dagster_event"]["message"] if rows else None

    def start_code_server(self) -> None:
        command = [sys.executable, "-m", "dagster", "api", "grpc", "-m", "tests.e2e.held_location"]
        command += ["-d", str(REPO), "-h", "127.0.0.1", "-p", str(self.port), "--location-name", "held"]
        with (self.log_dir / "code-server.log").open("a") as out:
            # Its own process group: run workers are its children and must be stopped with it at the end.
            self.code_servers.append(
                subprocess.Popen(
                    command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            )

    def start_daemon(self) -> None:
        workspace = self.log_dir / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {self.port}\n      location_name: held\n"
        )
        command = [sys.executable, "-c", "from dagster._daemon.cli import main; main()", "run", "-w", str(workspace)]
        with (self.log_dir / "daemon.log").open("w") as out:
            self.daemon = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name}:\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def wait_for(what: str, predicate: Callable, timeout_s: float, held: HeldRuns, every_s: float = 0.25):
    """Poll `predicate` until it returns something truthy (returned); fail with the processes' logs if it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        for name, process in (("daemon", held.daemon), ("code server", held.code_server)):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}) waiting for {what}\n{held.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout_s:.0f} s\n{held.log_tail()}")
        time.sleep(every_s)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@contextlib.contextmanager
def held_runs(
    work_dir: Path, database: str, connect: Callable, pg_env: dict[str, str], instance_yaml: Path = DEPLOYED_INSTANCE
) -> Iterator[HeldRuns]:
    """Code server + daemon on `instance_yaml`; yields once one run holds the slot and the other waits for it."""
    home = work_dir / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_yaml.read_text())
    with alert_receiver() as receiver:
        env = {
            **os.environ,
            **pg_env,
            "DAGSTER_HOME": str(home),
            "GL_ALERT_WEBHOOK_URL": receiver.url,
            # This checkout's gl_pipelines (the instance's run launcher lives there), whatever is installed.
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        held = HeldRuns(database, connect, env, free_port(), work_dir, receiver)
        try:
            held.start_code_server()
            held.start_daemon()
            wait_for(
                "two STARTED runs, one with its step started",
                lambda: len(held.step_starts()) == 1 and list(held.statuses().values()) == ["STARTED"] * 2,
                180,
                held,
            )
            yield held
        finally:
            # Each code server's group holds its run workers, also those that outlived a killed server.
            for process in [held.daemon, *held.code_servers]:
                _stop(process)


@dataclass
class Recovery:
    holder: str
    waiter: str
    holder_pid: int
    killed_at: float
    waiter_step_start: float

    @property
    def seconds(self) -> float:
        return self.waiter_step_start - self.killed_at


def kill_holder(held: HeldRuns, *, code_server_too: bool, timeout_s: float) -> Recovery:
    """SIGKILL the slot holder's run worker (and its code server, restarted at once); wait for the waiting
    run's step to start (it has the slot)."""
    (holder,) = held.step_starts()
    (waiter,) = set(held.statuses()) - {holder}
    pid = wait_for("the holder's worker pid", lambda: held.worker_pid(holder), 30, held)
    if code_server_too:
        os.kill(held.code_server.pid, signal.SIGKILL)
        held.code_server.wait()
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    if code_server_too:
        held.start_code_server()
    started = wait_for("step start of the waiting run", lambda: held.step_starts().get(waiter), timeout_s, held)
    return Recovery(holder, waiter, pid, killed_at, started)
