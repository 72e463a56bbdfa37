"""`gl-demo` / `python -m gl_pipelines.demo`: every asset of the demo site, on this machine.

Starts the demo plant (OPC UA and Modbus servers) on free loopback ports in its own process and
materializes:
- the SCADA assets for one plant day in the site's time zone (the hourly readings as one
  single-run backfill, then the daily summary). The default day, 2026-11-01, is the US fall-back
  day: 25 hours;
- the meter assets live: Modbus meters keep no history, so the demo snapshots them now for the
  last two closed hours and computes the consumption of the last one. Production refuses a
  snapshot read more than `max_read_delay_s` after its hour closed; the demo raises that limit to
  two hours (it says so when it runs) so it works at any time of day.
Then it prints where the results are, rows per table and the check outcomes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from dagster import DagsterInstance, materialize, partition_loading_context

from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG, site_hourly_partitions
from gl_pipelines.config import SiteConfig, load_site_config
from gl_pipelines.definitions import DEFAULT_WAREHOUSE, build_definitions, with_modbus_address

DEMO_DAY = date(2026, 11, 1)
DEMO_READ_DELAY_S = 7300
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextmanager
def demo_plant():
    """Run `python -m gl_pipelines.simulators` on free ports until the block ends; yields (opcua, modbus port)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gl_pipelines.simulators", "--opcua-port", "0", "--modbus-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if "demo plant ready" not in line:
            raise RuntimeError(f"demo plant did not start (exit code {process.poll()})")
        print(line.strip())
        opcua = line.split("OPC UA ", 1)[1].split()[0]
        modbus_port = int(line.split("Modbus ", 1)[1].split()[0].rsplit(":", 1)[1])
        yield opcua, modbus_port
    finally:
        process.terminate()
        process.wait(timeout=10)


def demo_site(opcua_endpoint: str, modbus_port: int) -> SiteConfig:
    site = load_site_config()
    site = site.model_copy(update={"opcua": site.opcua.model_copy(update={"endpoint": opcua_endpoint})})
    site = with_modbus_address(site, "127.0.0.1", modbus_port)
    return site.model_copy(update={"modbus": site.modbus.model_copy(update={"max_read_delay_s": DEMO_READ_DELAY_S})})


def demo_steps(site: SiteConfig, day: date) -> list[tuple[str, dict]]:
    """(asset, partition arguments) in the order the demo materializes them."""
    plant_day = f"{day:%Y-%m-%d}"
    steps = [
        ("scada_readings", {"tags": {RANGE_START_TAG: f"{plant_day}-00:00", RANGE_END_TAG: f"{plant_day}-23:00"}}),
        ("scada_daily_summary", {"partition_key": plant_day}),
    ]
    if site.modbus:
        hourly = site_hourly_partitions(site.site.timezone)
        with partition_loading_context(datetime.now(UTC)):
            previous, last = hourly.get_partition_keys()[-2:]
        steps += [
            ("meter_readings", {"partition_key": previous}),
            ("meter_readings", {"partition_key": last}),
            ("meter_hourly_consumption", {"partition_key": last}),
        ]
    return steps


def _table_rows(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()]
        return {name: con.execute(f"select count(*) from plant.{name}").fetchone()[0] for name in sorted(names)}


def run_demo(day: date, warehouse: Path) -> bool:
    warnings.filterwarnings("ignore", module="dagster")
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    checks: list[tuple[str, bool, str]] = []
    ok = True
    with demo_plant() as (opcua_endpoint, modbus_port):
        site = demo_site(opcua_endpoint, modbus_port)
        defs = build_definitions(site, warehouse)
        if site.modbus:
            print(f"meters are read live now; late-read limit raised to {DEMO_READ_DELAY_S} s for the demo")
        for selection, partition in demo_steps(site, day):
            began = time.perf_counter()
            result = materialize(
                [*defs.assets, *defs.asset_checks],
                resources=defs.resources,
                instance=instance,
                selection=[selection],
                raise_on_error=False,
                run_config=QUIET,
                **partition,
            )
            target = partition.get("partition_key") or "..".join(partition["tags"].values())
            state = "ok" if result.success else "FAILED"
            print(f"{selection}[{target}]: {state} in {time.perf_counter() - began:.1f} s (run {result.run_id})")
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
