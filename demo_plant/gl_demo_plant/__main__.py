"""`python -m gl_demo_plant` / `gl-demo-plant`: run the demo plant until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import yaml

from gl_demo_plant.cems_dahs import write_day, write_hour
from gl_demo_plant.cems_plc import DemoCemsPlc
from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.modbus_server import DemoModbusServer
from gl_demo_plant.opcua_server import DemoOpcUaServer
from gl_demo_plant.pi_web_api import start_pi_web_api
from gl_demo_plant.plant_model import DEFAULT_SEED
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, SERVICE_PATH, DemoSapODataService
from gl_pipelines.components.cems import CemsInstance
from gl_pipelines.components.modbus import ModbusInstance


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gl-demo-plant", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    parser.add_argument("--opcua-port", type=int, default=4840)
    parser.add_argument(
        "--opcua2-port", type=int, default=-1, help="a second OPC UA server (another unit, seed + 1); -1: off"
    )
    parser.add_argument("--modbus-port", type=int, default=5020, help="serves the demo site's Modbus meters")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--synthetic-tags", type=int, default=1000, help="extra tags for scale tests")
    parser.add_argument("--max-nodes-per-history-read", type=int, default=100)
    parser.add_argument("--pi-port", type=int, default=5450, help="PI Web API historian (0 = any free port)")
    parser.add_argument("--odata-port", type=int, default=5460, help="SAP OData ERP (0 = any free port; -1: off)")
    parser.add_argument("--cems-plc-port", type=int, default=5021, help="the CEMS PLC's last-hour block; -1: off")
    parser.add_argument("--dahs-folder", type=Path, help="write DAHS hourly export files of the demo CEMS here")
    parser.add_argument("--dahs-days", type=int, default=1, help="complete local-standard-time days to write")
    return parser.parse_args(argv)


STOP_TIMEOUT_S = 5
DEMO_SITE = "demo_plant"


def declared(schema, instance: str):
    """The demo site's `instance` as gl_pipelines/defs/ declares it (package data of gl-pipelines), so the plant
    serves the register layouts the code location reads, installed or in a checkout."""
    text = files("gl_pipelines.defs").joinpath(DEMO_SITE, instance, "defs.yaml").read_text()
    return schema.model_validate(yaml.safe_load(text)["attributes"])


async def _serve(args: argparse.Namespace) -> None:
    opcua = DemoOpcUaServer(
        args.host,
        args.opcua_port,
        seed=args.seed,
        n_synthetic=args.synthetic_tags,
        max_nodes_per_history_read=args.max_nodes_per_history_read,
    )
    await opcua.start()
    opcua2 = None
    if args.opcua2_port >= 0:
        opcua2 = DemoOpcUaServer(args.host, args.opcua2_port, seed=args.seed + 1, n_synthetic=0)
        await opcua2.start()
    modbus = DemoModbusServer(declared(ModbusInstance, "meters"), args.host, args.modbus_port, seed=args.seed)
    await modbus.start()
    try:
        pi = await start_pi_web_api(args.host, args.pi_port, seed=args.seed, n_synthetic=args.synthetic_tags)
        pi_note = f"PI Web API {pi.url} ({len(pi.api.tags)} tags)"
    except OSError as exc:  # another demo plant holds the port: OPC UA and Modbus still serve
        pi, pi_note = None, f"PI Web API not started on port {args.pi_port}: {exc}"
    cems_plc, cems_export, cems_note = await _start_cems(args)
    odata, odata_note = await _start_odata(args)
    # Stop every server on SIGTERM/SIGINT. Installed after start-up (uvicorn, the PI server on this
    # loop, takes both signals when it starts and would stop only itself) and before the ready line
    # (a caller may signal as soon as it reads it).
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print(
        f"demo plant ready: OPC UA {opcua.endpoint} ({len(opcua.tags)} tags), "
        f"Modbus {modbus.host}:{modbus.port} ({len(modbus.source.devices)} devices){cems_note}"
        + (f", second OPC UA {opcua2.endpoint}" if opcua2 else ""),
        flush=True,
    )
    # After the ready line: callers read the first line for the endpoints.
    print(pi_note, flush=True)
    print(odata_note, flush=True)
    try:
        await stop.wait()
    finally:
        if odata is not None:
            odata.stop()
        if cems_export is not None:
            cems_export.cancel()
        # A server that cannot stop in time (e.g. a client holding a connection open) must not keep the
        # process alive: the others still stop, then the process exits.
        for server in (pi, cems_plc, modbus, opcua2, opcua):
            if server is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.stop(), STOP_TIMEOUT_S)


async def _start_odata(args: argparse.Namespace) -> tuple[HttpServerThread | None, str]:
    """The demo ERP (SAP OData v2) in its own thread, unless --odata-port is -1 or the port is taken;
    and the line to print about it."""
    if args.odata_port < 0:
        return None, "SAP OData off (--odata-port -1)"
    try:
        server = HttpServerThread(DemoSapODataService().app, args.host, args.odata_port, name="demo-sap-odata")
        await asyncio.to_thread(server.start)
    except OSError as exc:
        return None, f"SAP OData not started on port {args.odata_port}: {exc}"
    return server, f"SAP OData {server.url}{SERVICE_PATH} (client id {DEMO_CLIENT_ID})"


async def _start_cems(args: argparse.Namespace) -> tuple[DemoCemsPlc | None, asyncio.Task | None, str]:
    """The CEMS PLC server and the DAHS files (those of past days now, then each hour as it closes),
    when asked for; and the text the ready line adds."""
    cems = declared(CemsInstance, "cems")
    note, plc, export = "", None, None
    if cems and cems.plc and args.cems_plc_port >= 0:
        plc = DemoCemsPlc(cems, args.host, args.cems_plc_port, seed=args.seed)
        try:
            await plc.start()
            note += f", CEMS PLC {plc.host}:{plc.port}"
        except OSError as exc:  # another demo plant holds the port: the rest still serves
            plc, note = None, f", CEMS PLC not started on port {args.cems_plc_port}: {exc}"
    if cems and args.dahs_folder:
        today = (datetime.now(UTC) + timedelta(hours=cems.lst_utc_offset_hours)).date()
        files = [
            path
            for back in range(args.dahs_days, 0, -1)
            for unit in cems.units
            for path in write_day(
                args.dahs_folder, unit.unit_id, today - timedelta(days=back), cems.lst_utc_offset_hours
            )
        ]
        note += f", {len(files)} DAHS file(s) in {args.dahs_folder} (+ one per hour as it closes)"
        export = asyncio.get_running_loop().create_task(_export_hours(args.dahs_folder, cems))
    return plc, export, note


async def _export_hours(folder: Path, cems) -> None:
    """As a live DAHS does: 30 s after each hour closes, write that hour's export file for every unit."""
    while True:
        now = datetime.now(UTC)
        next_export = now.replace(minute=0, second=30, microsecond=0) + timedelta(hours=1)
        await asyncio.sleep((next_export - now).total_seconds())
        closed = next_export.replace(second=0) - timedelta(hours=1)
        for unit in cems.units:
            write_hour(folder, unit.unit_id, closed, cems.lst_utc_offset_hours)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(_parse(argv)))
    except OSError as exc:  # an essential server's port (OPC UA, Modbus) is taken: say which, not a traceback
        sys.exit(f"gl-demo-plant: {exc}")


if __name__ == "__main__":
    main()
