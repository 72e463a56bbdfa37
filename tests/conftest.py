"""Shared fixtures: the demo plant on a free loopback port, a site config pointing at it."""

from __future__ import annotations

import socket
import warnings
from datetime import UTC, datetime

import pytest

from gl_demo_plant.modbus_server import ModbusFaults, ThreadedDemoModbusServer
from gl_demo_plant.opcua_server import OpcUaFaults, ThreadedDemoOpcUaServer
from gl_pipelines.components.site_file import with_modbus_address
from gl_pipelines.config import SiteConfig, load_site_config

pytest_plugins = ["tests.fixtures_historian", "tests.fixtures_erp", "tests.fixtures_cems"]

N_SYNTHETIC = 250  # enough to need several HistoryRead batches at the server's limit of 100
DEMO_HOUR = datetime(2026, 11, 1, 3, tzinfo=UTC)

warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def opcua_server():
    with ThreadedDemoOpcUaServer(port=free_port(), n_synthetic=N_SYNTHETIC) as server:
        yield server


@pytest.fixture
def plant(opcua_server):
    """The running demo server with faults and limits reset before and after each test."""
    limits = (opcua_server.max_nodes_per_history_read, opcua_server.max_values_per_node)
    opcua_server.faults = OpcUaFaults()
    yield opcua_server
    opcua_server.faults = OpcUaFaults()
    opcua_server.set_history_read_limit(limits[0])
    opcua_server.max_values_per_node = limits[1]


@pytest.fixture(scope="session")
def demo_modbus_server():
    with ThreadedDemoModbusServer(source=load_site_config().modbus, port=0) as server:
        yield server


@pytest.fixture
def modbus_server(demo_modbus_server):
    """The running demo Modbus server with its faults cleared before and after each test."""
    demo_modbus_server.faults = ModbusFaults()
    yield demo_modbus_server
    demo_modbus_server.faults = ModbusFaults()


@pytest.fixture
def site(plant, demo_modbus_server) -> SiteConfig:
    """The demo site pointing at the demo plant's OPC UA and Modbus servers on their free ports."""
    demo = load_site_config()
    demo = demo.model_copy(update={"opcua": demo.opcua.model_copy(update={"endpoint": plant.endpoint})})
    return with_modbus_address(demo, "127.0.0.1", demo_modbus_server.port)
