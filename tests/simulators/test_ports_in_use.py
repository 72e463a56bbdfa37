"""A demo server whose port another process holds says which server and which port, instead of pymodbus's bare
"Could not start listen" RuntimeError."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from gl_demo_plant.cems_plc import DemoCemsPlc
from gl_pipelines.config import DEMO_SITE_CONFIG, load_site_config


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_cems_plc_on_a_held_port_names_the_port(held_port):
    plc = DemoCemsPlc(load_site_config(DEMO_SITE_CONFIG).cems, "127.0.0.1", held_port)
    with pytest.raises(OSError, match=rf"demo CEMS PLC cannot listen on 127\.0\.0\.1:{held_port}: .*in use"):
        asyncio.run(plc.start())


def test_demo_plant_serves_on_when_the_cems_plc_port_is_held(held_port):
    """The plant keeps its other servers and its ready line says why the PLC is missing."""
    plant = subprocess.Popen(
        [sys.executable, "-m", "gl_demo_plant", "--opcua-port=0", "--modbus-port=0", "--pi-port=0"]
        + ["--odata-port=-1", f"--cems-plc-port={held_port}", "--synthetic-tags=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = plant.stdout.readline()
    finally:
        plant.terminate()
        _, stderr = plant.communicate(timeout=30)
    assert ready.startswith("demo plant ready: OPC UA opc.tcp://"), stderr[-2000:]
    assert f"CEMS PLC not started on port {held_port}:" in ready and f"127.0.0.1:{held_port}" in ready
    assert "Traceback" not in stderr and plant.returncode == 0, stderr[-2000:]


def test_demo_plant_exits_naming_a_held_modbus_port(held_port):
    done = subprocess.run(
        [sys.executable, "-m", "gl_demo_plant", "--opcua-port=0", f"--modbus-port={held_port}", "--pi-port=0"]
        + ["--odata-port=-1", "--cems-plc-port=-1", "--synthetic-tags=0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"gl-demo-plant: [Errno 98] the demo Modbus server cannot listen on 127.0.0.1:{held_port}" in done.stderr
    assert "Traceback" not in done.stderr
