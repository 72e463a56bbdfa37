"""End-to-end fixtures: a scratch PostgreSQL database, the demo plant and the deployment topology as real processes:
the code location's own gRPC code server, `dagster-webserver` and `dagster-daemon` on PostgreSQL, the webserver and
daemon loading the location through deploy/workspace.yaml."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
import pytest
import yaml

from gl_pipelines.config import DEMO_SITE_CONFIG, SITE_CONFIG_ENV
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
PG = {"host": os.environ.get("GL_PG_HOST", "127.0.0.1"), "port": int(os.environ.get("GL_PG_PORT", "5432"))}
PG_USER = os.environ.get("GL_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("GL_PG_PASSWORD", "")


def pg_connect(dbname: str):
    return psycopg2.connect(dbname=dbname, user=PG_USER, password=PG_PASSWORD, **PG)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database with a random name, dropped afterwards (with FORCE: the daemon may still hold connections)."""
    try:
        admin = pg_connect("postgres")
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG} (run scripts/ci-services): {exc}")
    admin.autocommit = True
    name = f"gl_e2e_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate the process's whole group (a code server spawns run workers)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()


@pytest.fixture
def plant_endpoint() -> Iterator[str]:
    """The demo plant in its own process (real OPC UA server on loopback), only the configured tags."""
    with demo_plant() as endpoint:
        yield endpoint


@contextlib.contextmanager
def demo_plant(*extra_args: str) -> Iterator[str]:
    """Run the demo plant (with `extra_args`) until the block ends; yield its OPC UA endpoint."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gl_demo_plant", "--opcua-port", str(port), "--synthetic-tags", "0"]
        # Only OPC UA is read here; the other servers on free ports or off, never on the fixed default ports
        # another run of the demo plant on this machine may hold.
        + ["--modbus-port", "0", "--pi-port", "0", "--odata-port", "-1", "--cems-plc-port", "-1", *extra_args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = _read_line(process, timeout=60)
        if "demo plant ready" not in line:
            pytest.fail(f"demo plant did not start (exit code {process.poll()}, said {line!r})")
        yield f"opc.tcp://127.0.0.1:{port}/gl-demo"
    finally:
        _stop(process)


def site_config_for(tmp_path: Path) -> Path:
    """The site config the deployment would load ($GL_SITE_CONFIG or the demo) with its report files under
    tmp_path: a test run must not write into the deployment's reports folder."""
    raw = yaml.safe_load(Path(os.environ.get(SITE_CONFIG_ENV) or DEMO_SITE_CONFIG).read_text())
    if raw.get("reporting") is not None:
        raw["reporting"]["reports_dir"] = str(tmp_path / "reports")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class Deployment:
    url: str
    home: Path
    env: dict[str, str]
    logs: list[Path]
    reports: Path
    code_server_port: int

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-chars:]}" for log in self.logs)


WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus displayMetadata { key value }
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
RELOAD_MUTATION = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }
"""


def _wait_for_location(dev: Deployment, processes: dict[str, subprocess.Popen], timeout: float) -> dict:
    """Wait for the webserver, then for the code location (reloaded while its code server is still starting);
    returns the location's entry."""
    deadline = time.monotonic() + timeout
    last, last_reload = "nothing yet", time.monotonic()
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{dev.log_tail()}")
        try:
            httpx.get(f"{dev.url}/server_info", timeout=5).raise_for_status()
            entries = dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            entry = next((e for e in entries if e["name"] == "gl_pipelines"), None)
            loaded = entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]
            if loaded and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                return entry
            last = str(entry)
            if loaded and time.monotonic() - last_reload > 10:
                dev.graphql(RELOAD_MUTATION, {"name": "gl_pipelines"})
                last_reload = time.monotonic()
        time.sleep(1)
    pytest.fail(f"code location gl_pipelines not loaded after {timeout:.0f} s: {last}\n{dev.log_tail()}")


@pytest.fixture
def cems_folders(tmp_path: Path) -> dict[str, Path]:
    """The CEMS folders of the deployment, under tmp_path: its running sensor must never watch (or move files out
    of) the repository's own drop folder."""
    return {name: tmp_path / "cems" / name for name in ("drop", "quarantine", "accepted", "epa")}


@pytest.fixture
def deployment(
    tmp_path: Path,
    pg_database: str,
    plant_endpoint: str,
    cems_folders: dict[str, Path],
    instance_yaml: str | None = None,
) -> Iterator[Deployment]:
    """The deployment: a code server (`dagster code-server start`), `dagster-daemon run` and `dagster-webserver`
    as separate processes on the deployment dagster.yaml, storage in `pg_database`, the webserver and daemon
    loading the location from the code server through deploy/workspace.yaml; the warehouse and report files
    under tmp_path. `instance_yaml` (for benches comparing settings) replaces the deployment dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    if instance_yaml is not None:
        (home / "dagster.yaml").write_text(instance_yaml)
    code_server_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "GL_PG_HOST": PG["host"],
        "GL_PG_PORT": str(PG["port"]),
        "GL_PG_USER": PG_USER,
        "GL_PG_PASSWORD": PG_PASSWORD,
        "GL_PG_DB": pg_database,
        "GL_CODE_SERVER_HOST": "127.0.0.1",
        "GL_CODE_SERVER_PORT": str(code_server_port),
        "GL_OPCUA_ENDPOINT": plant_endpoint,
        "GL_WAREHOUSE": str(tmp_path / "w.duckdb"),
        SITE_CONFIG_ENV: str(site_config_for(tmp_path)),
        "GL_CEMS_DROP_FOLDER": str(cems_folders["drop"]),
        "GL_CEMS_QUARANTINE_FOLDER": str(cems_folders["quarantine"]),
        "GL_CEMS_ACCEPTED_FOLDER": str(cems_folders["accepted"]),
        "GL_CEMS_EPA_FOLDER": str(cems_folders["epa"]),
    }
    workspace = str(REPO / "deploy" / "workspace.yaml")
    commands = {
        # The code location in its own process; runs are launched by it (the instance's run launcher).
        "code-server": ["dagster", "code-server", "start", "-m", "gl_pipelines.definitions", "-d", str(REPO)]
        + ["-h", "127.0.0.1", "-p", str(code_server_port), "--location-name", "gl_pipelines"],
        "daemon": ["dagster._daemon", "run", "-w", workspace],
        "webserver": ["dagster_webserver", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
    }
    logs = [tmp_path / f"{name}.log" for name in commands]
    dev = Deployment(
        url=f"http://127.0.0.1:{port}",
        home=home,
        env=env,
        logs=logs,
        reports=tmp_path / "reports",
        code_server_port=code_server_port,
    )
    processes: dict[str, subprocess.Popen] = {}
    try:
        for (name, command), log in zip(commands.items(), logs, strict=True):
            with log.open("w") as out:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", *command],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        entry = _wait_for_location(dev, processes, timeout=120)
        # The webserver reads the location from the code server, not from a process of its own.
        metadata = {item["key"]: item["value"] for item in entry["displayMetadata"]}
        assert (metadata.get("host"), metadata.get("port")) == ("127.0.0.1", str(code_server_port)), metadata
        yield dev
    finally:
        for process in processes.values():
            _stop(process)
