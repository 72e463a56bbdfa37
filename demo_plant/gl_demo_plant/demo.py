"""`gl-demo` / `python -m gl_demo_plant.demo`: the demo sites as declared in gl_pipelines/defs/, on this machine.

Starts the demo plant (two OPC UA servers, Modbus, PI Web API, Proficy Historian, SAP OData and the CEMS PLC) on
free loopback ports in its own process, loads the defs folder as the code location does (`ComponentTree`, one component
per `defs/<site>/<instance>/defs.yaml`), points each instance at the running plant and materializes, per
instance, on its site's clock:
- OPC UA: the hourly readings of one plant day as one single-run backfill, then the daily summary. The
  default day, 2026-11-01, is the US fall-back day: 25 hours at the demo plant (America/Chicago);
- Modbus meters live: meters keep no history, so the demo snapshots them now for the last two closed
  hours and computes the consumption of the last one. Production refuses a snapshot read more than
  `max_read_delay_s` after its hour closed; the demo raises that limit to two hours (it says so when it
  runs) so it works at any time of day;
- PI and Proficy: the historian day; OData: every entity set (master data in full, dated sets for the day);
- CEMS: the DAHS export files of the day (with their injected gaps and a failed calibration) go
  through the drop-folder sensor, then raw hours, hourly emissions and the daily report;
- the site's reports: the day's energy balance.
Then it prints where the results are, rows per table and the check outcomes.

Endpoints: an instance that declares `endpoint_env` gets the plant's address through that variable (read at
load, as in production; "host:port" for the Modbus devices and the CEMS PLC). Which server stands for an
instance: the one whose default port its YAML names. CEMS folders still move on the loaded component, under
the warehouse's folder, so a demo run never writes into the checkout's data/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import yaml
from dagster import (
    AssetKey,
    ComponentTree,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    materialize,
    partition_loading_context,
)

import gl_pipelines.defs
from gl_demo_plant.cems_dahs import write_day
from gl_demo_plant.proficy_historian import DEMO_CLIENT_SECRET as PROFICY_CLIENT_SECRET
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG, site_hourly_partitions
from gl_pipelines.checks.wap import is_partition_copy
from gl_pipelines.components.base import SourceComponent
from gl_pipelines.components.cems import CemsComponent
from gl_pipelines.components.modbus import ModbusComponent
from gl_pipelines.components.odata import ODataComponent
from gl_pipelines.components.opcua import OpcUaComponent
from gl_pipelines.components.pi import PiComponent
from gl_pipelines.components.proficy import ProficyComponent
from gl_pipelines.components.reports import ReportsComponent
from gl_pipelines.components.shared import DEFAULT_WAREHOUSE, shared_definitions

DEMO_DAY = date(2026, 11, 1)
DEMO_READ_DELAY_S = 7300
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The kinds the demo runs, in dependency order (reports last). MQTT needs the machine's broker: scripts/ui.
DEMO_KINDS = (OpcUaComponent, ModbusComponent, PiComponent, ProficyComponent, ODataComponent, CemsComponent)


@dataclass(frozen=True)
class DemoEndpoints:
    """Where the demo plant's servers listen (free loopback ports chosen at start), by the port each
    listens on by default (the one the demo's defs.yaml files name)."""

    by_default_port: dict[int, str]

    def replacing(self, declared: str) -> str:
        """`declared` (a URL or host:port) with its host and port replaced by the running server's."""
        split = urlsplit(declared if "//" in declared else f"tcp://{declared}")
        running = self.by_default_port.get(split.port)
        if running is None:
            raise ValueError(f"no demo plant server listens by default on port {split.port} ({declared})")
        return declared.replace(split.netloc, running, 1)


# gl-demo-plant's options and the port each takes by default (`python -m gl_demo_plant --help`).
DEMO_SERVERS = {
    "opcua": 4840,
    "opcua2": 4841,
    "modbus": 5020,
    "pi": 5450,
    "odata": 5460,
    "proficy": 5470,
    "cems-plc": 5021,
}


@contextmanager
def demo_plant():
    """Run `python -m gl_demo_plant` on free ports until the block ends; yields its DemoEndpoints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gl_demo_plant", "--synthetic-tags=0"] + [f"--{name}-port=0" for name in DEMO_SERVERS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The ready line names OPC UA, Modbus, the CEMS PLC and the second OPC UA; one line each follows for PI, SAP
        # and Proficy.
        lines = [process.stdout.readline() for _ in range(4)]
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


def _endpoints(lines: list[str]) -> DemoEndpoints:
    ready = lines[0]

    def after(label: str, text: str) -> str | None:
        return text.split(label, 1)[1].split()[0].rstrip(",") if label in text else None

    def netloc(address: str | None) -> str | None:
        return urlsplit(address if "//" in address else f"tcp://{address}").netloc if address else None

    pi = next((line for line in lines if line.startswith("PI Web API ")), "")
    odata = next((line for line in lines if line.startswith("SAP OData ")), "")
    proficy = next((line for line in lines if line.startswith("Proficy Historian ")), "")
    found = {
        DEMO_SERVERS["opcua"]: netloc(after("demo plant ready: OPC UA ", ready)),
        DEMO_SERVERS["opcua2"]: netloc(after("second OPC UA ", ready)),
        DEMO_SERVERS["modbus"]: netloc(after("Modbus ", ready)),
        DEMO_SERVERS["cems-plc"]: netloc(after("CEMS PLC ", ready)),
        DEMO_SERVERS["pi"]: netloc(after("PI Web API ", pi)),
        DEMO_SERVERS["odata"]: netloc(after("SAP OData ", odata)),
        DEMO_SERVERS["proficy"]: netloc(after("Proficy Historian ", proficy)),
    }
    return DemoEndpoints({port: address for port, address in found.items() if address})


def demo_tree() -> ComponentTree:
    """The defs folder as gl_pipelines/definitions.py loads it."""
    return ComponentTree.from_module(gl_pipelines.defs, project_root=Path(gl_pipelines.defs.__file__).parent.parent)


def point_at_plant(plant: DemoEndpoints, work_folder: Path) -> tuple[ComponentTree, list[SourceComponent]]:
    """The defs folder loaded with every instance pointed at the running demo plant, and the instances the
    demo runs (DEMO_KINDS, in that order). CEMS folders and report files go under `work_folder`."""
    for component in _sources(demo_tree()):
        name = component.spec.endpoint_env
        if name:
            os.environ[name] = plant.replacing(written_endpoint(component))
    tree = demo_tree()  # endpoint_env is read when an instance loads
    sources = _sources(tree)
    for component in sources:
        if isinstance(component, ModbusComponent):
            component.spec = component.spec.model_copy(update={"max_read_delay_s": DEMO_READ_DELAY_S})
        elif isinstance(component, CemsComponent):
            component.spec = _cems_folders(component.spec, work_folder / "cems")
    for component in tree.get_all_components(of_type=ReportsComponent):
        reports_dir = str(work_folder / "reports")  # the component files them under <site>/<instance>/
        component.spec = component.spec.model_copy(update={"reports_dir": reports_dir})
    return tree, sources


def _sources(tree: ComponentTree) -> list[SourceComponent]:
    return [component for kind in DEMO_KINDS for component in tree.get_all_components(of_type=kind)]


def written_endpoint(component: SourceComponent) -> str:
    """The endpoint as written in the instance's defs.yaml (the loaded one already carries any $name the shell
    set): its endpoint field, or the `host:port` of its first Modbus device or CEMS PLC."""
    attributes = yaml.safe_load(component.path.read_text())["attributes"]
    if component.endpoint_field:
        return attributes[component.endpoint_field]
    device = attributes["devices"][0] if isinstance(component, ModbusComponent) else attributes["plc"]
    return f"{device['host']}:{device.get('port', 502)}"


def _cems_folders(spec, folder: Path):
    return spec.model_copy(
        update={
            "dahs_drop_folder": folder / "drop",
            "quarantine_folder": folder / "quarantine",
            "accepted_folder": folder / "accepted",
        }
    )


Step = tuple[AssetKey, dict]


def demo_steps(defs: Definitions, sources: list[SourceComponent], reports: list, day: date) -> list[Step]:
    """(asset, partition arguments) in the order the demo materializes them, instance by instance."""
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    plant_day = f"{day:%Y-%m-%d}"
    whole_day = {"tags": {RANGE_START_TAG: f"{plant_day}-00:00", RANGE_END_TAG: f"{plant_day}-23:00"}}
    steps: list[Step] = []
    for component in sources:
        key = instance_asset(keys, component.site.name, component.instance)
        if isinstance(component, OpcUaComponent):
            steps += [(key("scada_readings"), whole_day), (key("scada_daily_summary"), {"partition_key": plant_day})]
        elif isinstance(component, ModbusComponent):
            with partition_loading_context(datetime.now(UTC)):
                previous, last = site_hourly_partitions(component.timezone).get_partition_keys()[-2:]
            steps += [
                (key("meter_readings"), {"partition_key": previous}),
                (key("meter_readings"), {"partition_key": last}),
                (key("meter_hourly_consumption"), {"partition_key": last}),
            ]
        elif isinstance(component, PiComponent):
            steps.append((key("historian_recorded"), {"partition_key": plant_day}))
        elif isinstance(component, ProficyComponent):
            steps.append((key("proficy_recorded"), {"partition_key": plant_day}))
        elif isinstance(component, ODataComponent):
            # Master data (no date column: a full refresh) first, then the documents of the day.
            entity_sets = sorted(component.spec.entity_sets, key=lambda entity: entity.date_column is not None)
            steps += [
                (key(entity.name), {"partition_key": plant_day} if entity.date_column else {}) for entity in entity_sets
            ]
        elif isinstance(component, CemsComponent):
            # A Part 75 day is a local-standard-time day; the demo day's date.
            steps += [
                (key("cems_hourly_raw"), whole_day),
                (key("cems_hourly_emissions"), {"partition_key": plant_day}),
                (key("cems_daily_emissions"), {"partition_key": plant_day}),
            ]
    for component in reports:  # each site's energy balance, on that site's day
        key = instance_asset(keys, component.site.name, component.instance)
        steps.append((key("plant_energy_balance"), {"partition_key": plant_day}))
    return steps


def instance_asset(keys: set[AssetKey], site: str, instance: str) -> Callable[[str], AssetKey]:
    """An instance's asset by name, under its `<site>/<instance>` key prefix (every kind is named so)."""

    def key(name: str) -> AssetKey:
        prefixed = AssetKey([site, instance, name])
        if prefixed not in keys:
            raise KeyError(f"{site}/{instance}: no asset {name!r} under its prefix")
        return prefixed

    return key


def prepare_cems_demo(defs: Definitions, component: CemsComponent, day: date, instance: DagsterInstance) -> None:
    """Write the demo CEMS's DAHS export of `day` (with its daily faults) into the drop folder and
    let the sensor accept it, as the running sensor would."""
    cems = component.spec
    offset = cems.lst_utc_offset_hours
    files = [path for unit in cems.units for path in write_day(cems.dahs_drop_folder, unit.unit_id, day, offset)]
    (sensor,) = [sensor for sensor in defs.sensors if sensor.name.endswith("cems_dahs_files")]
    result = sensor(build_sensor_context(instance=instance, definitions=defs))
    print(
        f"DAHS files written to {cems.dahs_drop_folder}: {', '.join(p.name for p in files)}; "
        f"sensor asked for {len(result.run_requests)} run(s)"
    )


def _table_rows(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()]
        return {name: con.execute(f"select count(*) from plant.{name}").fetchone()[0] for name in sorted(names)}


def _key_figures(warehouse: Path) -> list[str]:
    """The numbers people look at, straight from the warehouse tables the demo just wrote (by the asset name a
    table ends with, whatever site or instance prefix it carries)."""
    queries = {
        "plant_energy_balance": "select unit_name, fuel_energy_mmbtu, steam_energy_mmbtu, efficiency from plant.{}",
        "cems_daily_emissions": "select unit_id, heat_input_mmbtu, co2_mass_tons, nox_mass_lb, so2_mass_lb,"
        " co2_substituted_hours + so2_substituted_hours + flow_substituted_hours from plant.{}",
    }
    lines = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = sorted(row[0] for row in con.execute("select table_name from information_schema.tables").fetchall())
        for table in (table for table in tables if table.endswith("plant_energy_balance")):
            for unit, fuel, steam, efficiency in con.execute(queries["plant_energy_balance"].format(table)).fetchall():
                lines.append(
                    f"energy balance {unit}: fuel {fuel:,.0f} mmBtu in, steam {steam:,.0f} mmBtu out,"
                    f" efficiency {efficiency:.1%}"
                )
        for table in (table for table in tables if table.endswith("cems_daily_emissions")):
            rows = con.execute(queries["cems_daily_emissions"].format(table)).fetchall()
            for unit, heat, co2, nox, so2, substituted in rows:
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
    # The demo SAP service's own client (no real credential): read from the environment like any secret.
    os.environ.setdefault("GL_ERP_CLIENT_ID", DEMO_CLIENT_ID)
    os.environ.setdefault("GL_ERP_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    os.environ.setdefault("GL_PROFICY_CLIENT_SECRET", PROFICY_CLIENT_SECRET)
    with demo_plant() as plant:
        tree, sources = point_at_plant(plant, warehouse.parent)
        defs = Definitions.merge(tree.build_defs(), shared_definitions(warehouse))
        reports = tree.get_all_components(of_type=ReportsComponent)
        print(
            "instances: "
            + ", ".join(f"{c.site.name}/{c.instance} ({c.kind})" for c in sources)
            + "".join(f", {c.site.name}/{c.instance}" for c in reports)
        )
        if any(isinstance(component, ModbusComponent) for component in sources):
            print(f"meters are read live now; late-read limit raised to {DEMO_READ_DELAY_S} s for the demo")
        for component in sources:
            if isinstance(component, CemsComponent):
                prepare_cems_demo(defs, component, day, instance)
        for key, partition in demo_steps(defs, sources, reports, day):
            began = time.perf_counter()
            result = materialize(
                [*defs.assets, *defs.asset_checks],
                resources=defs.resources,
                instance=instance,
                selection=[key],
                raise_on_error=False,
                run_config=QUIET,
                **partition,
            )
            target = partition.get("partition_key") or "..".join(partition.get("tags", {}).values()) or "all"
            state = "ok" if result.success else "FAILED"
            print(
                f"{key.to_user_string()}[{target}]: {state} in {time.perf_counter() - began:.1f} s"
                f" (run {result.run_id})"
            )
            checks += [
                (f"{c.asset_key.to_user_string()}:{c.check_name}", c.passed, c.description or "")
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
    parser.add_argument("--day", type=date.fromisoformat, default=DEMO_DAY, help="plant day (each site's own clock)")
    parser.add_argument("--warehouse", type=Path, default=Path(os.environ.get("GL_WAREHOUSE", DEFAULT_WAREHOUSE)))
    args = parser.parse_args(argv)
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    sys.exit(0 if run_demo(args.day, args.warehouse) else 1)


if __name__ == "__main__":
    main()
