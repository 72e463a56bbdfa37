"""`python -m gl_pipelines.simulators` / `gl-demo-plant`: run the demo plant until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from gl_pipelines.config import DEMO_SITE_CONFIG, load_site_config
from gl_pipelines.simulators.modbus_server import DemoModbusServer
from gl_pipelines.simulators.opcua_server import DemoOpcUaServer
from gl_pipelines.simulators.plant_model import DEFAULT_SEED


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gl-demo-plant", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    parser.add_argument("--opcua-port", type=int, default=4840)
    parser.add_argument("--modbus-port", type=int, default=5020, help="serves the demo site's Modbus meters")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--synthetic-tags", type=int, default=1000, help="extra tags for scale tests")
    parser.add_argument("--max-nodes-per-history-read", type=int, default=100)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    opcua = DemoOpcUaServer(
        args.host,
        args.opcua_port,
        seed=args.seed,
        n_synthetic=args.synthetic_tags,
        max_nodes_per_history_read=args.max_nodes_per_history_read,
    )
    await opcua.start()
    modbus = DemoModbusServer(load_site_config(DEMO_SITE_CONFIG).modbus, args.host, args.modbus_port, seed=args.seed)
    await modbus.start()
    print(
        f"demo plant ready: OPC UA {opcua.endpoint} ({len(opcua.tags)} tags), "
        f"Modbus {modbus.host}:{modbus.port} ({len(modbus.source.devices)} devices)",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await modbus.stop()
        await opcua.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
