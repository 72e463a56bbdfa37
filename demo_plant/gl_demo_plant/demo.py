"""`gl-demo` / `python -m gl_demo_plant.demo`: every asset of the demo site, on this machine.

Starts the demo plant (OPC UA, Modbus, PI Web API, SAP OData and CEMS PLC servers) on free loopback
ports in its own process and materializes:
- the SCADA assets for one plant day in the site's time zone (the hourly readings as one
  single-run backfill, then the daily summary). The default day, 2026-11-01, is the US fall-back
  day: 25 hours;
- the meter assets live: Modbus meters keep no history, so the demo snapshots them now for the
  last two closed hours and computes the consumption of the last one. Production refuses a
  snapshot read more than `max_read_delay_s` after its hour closed; the demo raises that limit to
  two hours (it says so when it runs) so it works at any time of day;
- the historian day, the ERP master data and documents of the day, and the day's energy balance;
- the CEMS: the DAHS export files of the day (with their injected gaps and a failed calibration)
  go through the drop-folder sensor, then raw hours, hourly emissions and the daily report.
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
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from dagster import DagsterInstance, build_sensor_context, materialize, partition_loading_context

from gl_demo_plant.cems_dahs import write_day
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG, site_hourly_partitions
from gl_pipelines.checks.wap import is_partition_copy
from gl_pipelines.components.shared import DEFAULT_WAREHOUSE
from gl_pipelines.components.site_file import build_definitions, with_environment
from gl_pipelines.config import SiteConfig, load_site_config

DEMO_DAY = date(2026, 11, 1)
DEMO_READ_DELAY_S = 7300
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class DemoEndpoints:
    """Where the demo plant's servers listen (free loopback ports chosen at start)."""

    opcua: str
    modbus_port: int
    pi_url: str | None
    odata_url: str | None
    cems_plc_port: int | None


@contextmanager
def demo_plant():
    """Run `python -m gl_demo_plant` on free ports until the block ends; yields its DemoEndpoints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gl_demo_plant"] + [f"--{name}-port=0" for name in DEMO_SERVERS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The ready line names OPC UA, Modbus and the CEMS PLC; one line each follows for PI and SAP.
        lines = [process.stdout.readline() for _ in range(3)]
        if "demo plant ready" not in lines[0]:
            raise RuntimeError(f"demo plant did not start (exit code {process.poll()})")
        print("".join(lines).strip())
        yield _endpoints(lines)
    finally:
        process.terminate()  # the plant stops every server on SIGTERM (about 1.5 s)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()  # the demo's work is done; a plant that will not stop must not fail it
            process.wait()
            print("warning: the demo plant did not stop within 10 s of SIGTERM and was killed", file=sys.stderr)


DEMO_SERVERS = ("opcua", "modbus", "pi", "odata", "cems-plc")


def _endpoints(lines: list[str]) -> DemoEndpoints:
    ready = lines[0]

    def port_after(label: str) -> int | None:
        return int(ready.split(label, 1)[1].split()[0].rstrip(",").rsplit(":", 1)[1]) if label in ready else None

    def url_after(label: str) -> str | None:
        line = next((line for line in lines if line.startswith(label)), None)
        return line.split()[len(label.split())] if line else None

    return DemoEndpoints(
        opcua=ready.split("OPC UA ", 1)[1].split()[0],
        modbus_port=port_after("Modbus "),
        pi_url=url_after("PI Web API"),
        odata_url=url_after("SAP OData"),
        cems_plc_port=port_after("CEMS PLC "),
    )


def demo_site(plant: DemoEndpoints, work_folder: Path) -> SiteConfig:
    """The demo site pointed at the running demo plant; CEMS folders under `work_folder`."""
    cems_folder = work_folder / "cems"
    environ = {
        "GL_OPCUA_ENDPOINT": plant.opcua,
        "GL_MODBUS_HOST": "127.0.0.1",
        "GL_MODBUS_PORT": str(plant.modbus_port),
        "GL_HISTORIAN_URL": plant.pi_url or "",
        "GL_ERP_URL": plant.odata_url or "",
        "GL_CEMS_DROP_FOLDER": str(cems_folder / "drop"),
        "GL_CEMS_QUARANTINE_FOLDER": str(cems_folder / "quarantine"),
        "GL_CEMS_ACCEPTED_FOLDER": str(cems_folder / "accepted"),
        "GL_CEMS_PLC_PORT": str(plant.cems_plc_port or ""),
    }
    site = with_environment(load_site_config(), environ)
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
    if site.historian:
        steps.append(("historian_recorded", {"partition_key": plant_day}))
    if site.erp:
        steps += [
            ("erp_plants", {}),
            ("erp_materials", {}),
            ("erp_fuel_receipts", {"partition_key": plant_day}),
            ("erp_production", {"partition_key": plant_day}),
        ]
    if site.reporting:
        steps.append(("plant_energy_balance", {"partition_key": plant_day}))
    if site.cems:
        steps += cems_demo_steps(day)
    return steps


def cems_demo_steps(day: date) -> list[tuple[str, dict]]:
    """CEMS for the demo day (a local-standard-time day): raw hours from the DAHS files the sensor
    accepted (`prepare_cems_demo`), then emissions and the daily report."""
    lst_day = f"{day:%Y-%m-%d}"
    return [
        ("cems_hourly_raw", {"tags": {RANGE_START_TAG: f"{lst_day}-00:00", RANGE_END_TAG: f"{lst_day}-23:00"}}),
        ("cems_hourly_emissions", {"partition_key": lst_day}),
        ("cems_daily_emissions", {"partition_key": lst_day}),
    ]


def prepare_cems_demo(defs, site: SiteConfig, day: date, instance: DagsterInstance) -> None:
    """Write the demo CEMS's DAHS export of `day` (with its daily faults) into the drop folder and
    let the sensor accept it, as the running sensor would."""
    cems = site.cems
    offset = cems.lst_utc_offset_hours
    files = [path for unit in cems.units for path in write_day(cems.dahs_drop_folder, unit.unit_id, day, offset)]
    result = defs.resolve_sensor_def("cems_dahs_files")(build_sensor_context(instance=instance, definitions=defs))
    print(
        f"DAHS files written to {cems.dahs_drop_folder}: {', '.join(p.name for p in files)}; "
        f"sensor asked for {len(result.run_requests)} run(s)"
    )


def _table_rows(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()]
        return {name: con.execute(f"select count(*) from plant.{name}").fetchone()[0] for name in sorted(names)}


def _key_figures(warehouse: Path) -> list[str]:
    """The numbers people look at, straight from the warehouse tables the demo just wrote."""
    queries = {
        "plant_energy_balance": "select unit_name, fuel_energy_mmbtu, steam_energy_mmbtu, efficiency"
        " from plant.plant_energy_balance",
        "cems_daily_emissions": "select unit_id, heat_input_mmbtu, co2_mass_tons, nox_mass_lb, so2_mass_lb,"
        " co2_substituted_hours + so2_substituted_hours + flow_substituted_hours from plant.cems_daily_emissions",
    }
    lines = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
        if "plant_energy_balance" in tables:
            for unit, fuel, steam, efficiency in con.execute(queries["plant_energy_balance"]).fetchall():
                lines.append(
                    f"energy balance {unit}: fuel {fuel:,.0f} mmBtu in, steam {steam:,.0f} mmBtu out,"
                    f" efficiency {efficiency:.1%}"
                )
        if "cems_daily_emissions" in tables:
            for unit, heat, co2, nox, so2, substituted in con.execute(queries["cems_daily_emissions"]).fetchall():
                lines.append(
                    f"CEMS {unit}: heat input {heat:,.0f} mmBtu, CO2 {co2:,.1f} short tons, NOx {nox:,.1f} lb,"
                    f" SO2 {so2:,.2f} lb ({substituted} substituted parameter-hours)"
                )
    return lines


def run_demo(day: date, warehouse: Path) -> bool:
    warnings.filterwarnings("ignore", module="dagster")
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    checks: list[tuple[str, bool, str]] = []
    ok = True
    with demo_plant() as plant:
        site = demo_site(plant, warehouse.parent)
        if site.erp:
            # The demo SAP service's own client (no real credential): read from the environment like any secret.
            os.environ.setdefault("GL_ERP_CLIENT_ID", DEMO_CLIENT_ID)
            os.environ.setdefault("GL_ERP_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        defs = build_definitions(site, warehouse)
        if site.modbus:
            print(f"meters are read live now; late-read limit raised to {DEMO_READ_DELAY_S} s for the demo")
        if site.cems:
            prepare_cems_demo(defs, site, day, instance)
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
            target = partition.get("partition_key") or "..".join(partition.get("tags", {}).values()) or "all"
            state = "ok" if result.success else "FAILED"
            print(f"{selection}[{target}]: {state} in {time.perf_counter() - began:.1f} s (run {result.run_id})")
            checks += [
                (c.check_name, c.passed, c.description or "")
                for c in result.get_asset_check_evaluations()
                if not is_partition_copy(c)  # the UI's per-hour copies of one verdict (checks/wap.py)
            ]
            ok = ok and result.success
    print(f"\nwarehouse: {warehouse}")
    for table, rows in _table_rows(warehouse).items():
        print(f"  plant.{table}: {rows} rows")
    for line in _key_figures(warehouse):
        print(line)
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
