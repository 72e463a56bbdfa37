"""`gl-demo` / `python -m gl_pipelines.demo`: the whole pipeline for one demo day, on this machine.

Starts the demo plant on a free loopback port in its own process, materializes every asset for
one plant day in the site's time zone (the hourly sources as one single-run backfill of that
day's UTC hours, then the daily assets), and prints where the results are with rows per asset
and the check outcomes. The default day, 2026-11-01, is the US fall-back day: 25 hours.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import DagsterInstance, materialize

from gl_pipelines.config import load_site_config
from gl_pipelines.definitions import DEFAULT_WAREHOUSE, build_definitions

DEMO_DAY = date(2026, 11, 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def demo_plant(port: int):
    """Run `python -m gl_pipelines.simulators` until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gl_pipelines.simulators", "--opcua-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if "demo plant ready" not in line:
            raise RuntimeError(f"demo plant did not start (exit code {process.poll()})")
        print(line.strip())
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _table_rows(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()]
        return {name: con.execute(f"select count(*) from plant.{name}").fetchone()[0] for name in sorted(names)}


def run_demo(day: date, warehouse: Path) -> bool:
    warnings.filterwarnings("ignore", module="dagster")
    port = _free_port()
    demo = load_site_config()
    endpoint = f"opc.tcp://127.0.0.1:{port}/gl-demo"
    site = demo.model_copy(update={"opcua": demo.opcua.model_copy(update={"endpoint": endpoint})})
    defs = build_definitions(site, warehouse)
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    steps = [
        (
            "scada_readings",
            {
                "tags": {
                    "dagster/asset_partition_range_start": f"{day:%Y-%m-%d}-00:00",
                    "dagster/asset_partition_range_end": f"{day:%Y-%m-%d}-23:00",
                }
            },
        ),
        ("scada_daily_summary", {"partition_key": f"{day:%Y-%m-%d}"}),
    ]
    checks: list[tuple[str, bool, str]] = []
    ok = True
    with demo_plant(port):
        for selection, partition in steps:
            began = time.perf_counter()
            result = materialize(
                [*defs.assets, *defs.asset_checks],
                resources=defs.resources,
                instance=instance,
                selection=[selection],
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                **partition,
            )
            state = "ok" if result.success else "FAILED"
            print(f"{selection}: {state} in {time.perf_counter() - began:.1f} s (run {result.run_id})")
            checks += [(c.check_name, c.passed, c.description or "") for c in result.get_asset_check_evaluations()]
            ok = ok and result.success
    print(f"\nwarehouse: {warehouse}")
    for table, rows in _table_rows(warehouse).items():
        print(f"  plant.{table}: {rows} rows")
    print(f"checks: {sum(p for _, p, _ in checks)} passed, {sum(not p for _, p, _ in checks)} failed")
    for name, passed, description in checks:
        print(f"  {'PASS' if passed else 'FAIL'} {name}: {description}")
    if os.environ.get("DAGSTER_HOME"):
        print(f"runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}; see them with scripts/ui")
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gl-demo", description=__doc__)
    parser.add_argument("--day", type=date.fromisoformat, default=DEMO_DAY, help="plant day (site time zone)")
    parser.add_argument("--warehouse", type=Path, default=Path(os.environ.get("GL_WAREHOUSE", DEFAULT_WAREHOUSE)))
    args = parser.parse_args(argv)
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    sys.exit(0 if run_demo(args.day, args.warehouse) else 1)


if __name__ == "__main__":
    main()
