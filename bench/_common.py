"""What the benchmark scripts share: the demo plant in its own process, a site config, quiet Dagster runs."""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Runs print every Dagster event to stderr by default; the benchmark only wants its figures.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
# Anything that would send the resource to another server, add credentials or change the backfill policy.
_SITE_ENV = (
    "GL_OPCUA_ENDPOINT",
    "GL_OPCUA_USERNAME",
    "GL_OPCUA_PASSWORD",
    "GL_SITE_CONFIG",
    "GL_BACKFILL_PARTITIONS_PER_RUN",
)


def quiet() -> None:
    """Silence asyncua's per-session notices and Dagster's beta/preview warnings."""
    for name in ("asyncua", "dagster"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"dagster\..*")
    warnings.filterwarnings("ignore", message=r".*(beta|preview).*", category=Warning)
    for name in _SITE_ENV:
        os.environ.pop(name, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started_process(
    command: list[str], ready: str, timeout_s: float, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run `command` until the block ends: wait for a stdout line containing `ready` (the process's
    stderr goes into the error if it never comes), yield (process, that line); always stop it
    (SIGTERM, SIGKILL after 10 s)."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            deadline, line = time.monotonic() + timeout_s, ""
            while ready not in line:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or proc.poll() is not None:
                    stderr.seek(0)
                    raise RuntimeError(f"{command[2]} did not start (exit {proc.poll()}): {stderr.read()[-2000:]}")
                readable, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
                if readable:
                    line = proc.stdout.readline()
            yield proc, line
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def demo_plant(synthetic_tags: int = 0, timeout_s: float = 90.0, cwd: Path | None = None) -> Iterator[tuple[str, int]]:
    """Start `python -m gl_demo_plant` on free ports (run from `cwd`, e.g. a copy of the code);
    yield (OPC UA endpoint, pid); always stop it."""
    port = free_port()
    command = [sys.executable, "-m", "gl_demo_plant", "--opcua-port", str(port), "--modbus-port", "0"]
    command += ["--synthetic-tags", str(synthetic_tags)]
    with started_process(command, "demo plant ready", timeout_s, cwd) as (proc, _):
        yield f"opc.tcp://127.0.0.1:{port}/gl-demo", proc.pid


def site_config(endpoint: str, synthetic_tags: int, *, boiler: bool):
    """The demo site pointed at `endpoint`, with the boiler tags (optional) plus Synthetic.T0001...."""
    from gl_pipelines.config import DEMO_SITE_CONFIG, OpcUaSource, OpcUaTag, load_site_config

    demo = load_site_config(DEMO_SITE_CONFIG)
    tags = list(demo.opcua.tags) if boiler else []
    tags += [
        OpcUaTag(name=f"Synthetic.T{i:04d}", node_id=f"ns=2;s=Synthetic.T{i:04d}", unit="percent", min=0, max=100)
        for i in range(1, synthetic_tags + 1)
    ]
    source = OpcUaSource(
        endpoint=endpoint,
        source_name=demo.opcua.source_name,
        sample_interval_s=demo.opcua.sample_interval_s,
        tags=tags,
    )
    return demo.model_copy(update={"opcua": source})


def scada_definitions(site, warehouse_path: str | Path):
    """(scada_readings, its asset checks, resources) from the project's own build_definitions."""
    from dagster import AssetKey

    from gl_pipelines.components.site_file import build_definitions

    defs = build_definitions(site, str(warehouse_path))
    (readings,) = [a for a in defs.assets if a.key == AssetKey("scada_readings")]
    if defs.resources["opcua"].endpoint != site.opcua.endpoint:
        raise RuntimeError("the opcua resource does not point at the benchmark's demo plant")
    return readings, list(defs.asset_checks or []), dict(defs.resources)


def plant_day_hours(readings, days_ago: int = 3) -> list[tuple[str, datetime, datetime]]:
    """(partition key, UTC start, UTC end) of every hour of one whole past plant day with 24 hours.

    Keys come from the asset's own partitions definition (the plant's time zone), skipping the
    23- and 25-hour days around daylight-saving changes.
    """
    from dagster import TimeWindow

    partitions = readings.partitions_def
    zone = ZoneInfo(partitions.timezone)
    for back in range(days_ago, days_ago + 7):
        day = (datetime.now(zone) - timedelta(days=back)).date()
        window = TimeWindow(
            datetime.combine(day, dt_time(0), zone), datetime.combine(day + timedelta(days=1), dt_time(0), zone)
        )
        keys = partitions.get_partition_keys_in_time_window(window)
        if len(keys) == 24:
            hours = []
            for key in keys:
                hour = partitions.time_window_for_partition_key(key)
                hours.append((key, hour.start.astimezone(UTC), hour.end.astimezone(UTC)))
            return hours
    raise RuntimeError("no 24-hour plant day in the past week")


def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's peak across fork/exec)."""
    return _proc_status_mb("VmHWM")


def rss_mb() -> float:
    return _proc_status_mb("VmRSS")


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def require_checks_passed(result, checks: int = 2) -> None:
    """A memory figure counts only for a run whose blocking checks all ran and passed."""
    evaluations = result.get_asset_check_evaluations()
    if not result.success or len(evaluations) != checks or not all(e.passed for e in evaluations):
        raise RuntimeError(f"run failed or checks did not pass: {[(e.check_name, e.passed) for e in evaluations]}")


def emit(bench: str, figures: list[dict]) -> None:
    """Print one JSON object per figure per line and write the same lines to bench/results/<bench>.jsonl."""
    lines = [json.dumps({"bench": bench, **figure}) for figure in figures]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{bench}.jsonl").write_text("".join(line + "\n" for line in lines))
    for line in lines:
        print(line, flush=True)


@dataclass
class Samples:
    """Per repetition: wall seconds, CPU seconds of the measuring process, CPU seconds of the servers."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.wall)

    def summary(self) -> dict:
        return {
            "wall_s": [round(x, 4) for x in self.wall],
            "cpu_s": round(min(self.cpu), 4),
            "server_cpu_s": round(min(self.server_cpu), 4),
        }
