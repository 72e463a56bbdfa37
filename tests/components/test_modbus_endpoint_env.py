"""Modbus and CEMS PLC instances move by `endpoint_env` ("host:port", read at load) like the other kinds, so the
demo and tests point a declared instance at a server on a free port without touching the loaded component."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

import duckdb
import pytest
from dagster import AssetKey, instance_for_test, partition_loading_context

from gl_demo_plant import meter_model
from gl_demo_plant.__main__ import declared
from gl_demo_plant.modbus_server import ThreadedDemoModbusServer
from gl_pipelines.components.modbus import ModbusInstance
from gl_pipelines.resources.warehouse import table_name
from tests.components.project import SITE, load_project
from tests.components.test_instances import _load_error
from tests.runs import run

CHICAGO = SITE.format(timezone="America/Chicago")


def demo_yaml(instance: str) -> str:
    return files("gl_pipelines.defs").joinpath("demo_plant", instance, "defs.yaml").read_text()


def meters_yaml() -> str:
    """The demo's meters at a port where nothing listens (1), late reads allowed for the test, moved by $GL_T_MODBUS."""
    text = demo_yaml("meters").replace("port: 5020", "port: 1")
    text = text.replace("max_read_delay_s: 900", "max_read_delay_s: 7300")
    return text.replace("endpoint_env: GL_MODBUS_ADDRESS", "endpoint_env: GL_T_MODBUS")


@pytest.fixture(scope="module")
def meters_server():
    with ThreadedDemoModbusServer(source=declared(ModbusInstance, "meters"), port=0) as server:
        yield server


def test_a_modbus_instance_moved_by_endpoint_env_reads_the_live_server(meters_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GL_T_MODBUS", f"127.0.0.1:{meters_server.port}")
    defs = load_project(tmp_path, {"north/site/defs.yaml": CHICAGO, "north/meters/defs.yaml": meters_yaml()})
    key = AssetKey(["north", "meters", "meter_readings"])
    with partition_loading_context(datetime.now(UTC)):
        last = defs.resolve_assets_def(key).partitions_def.get_last_partition_key()
    with instance_for_test() as instance:
        result = run(defs, instance, [key], last)
    assert result.success and all(check.passed for check in result.get_asset_check_evaluations())
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute(f"select tag, ts, value, quality from plant.{table_name(key)}").fetchall()
    assert len(rows) == 7 and {quality for *_, quality in rows} == {"good"}
    for tag, ts, value, _ in rows:
        assert value == pytest.approx(float(meter_model.engineering_value(tag, ts)), rel=1e-3, abs=0.05), tag


def test_without_the_variable_the_declared_address_stands(tmp_path, monkeypatch):
    monkeypatch.delenv("GL_T_MODBUS", raising=False)
    defs = load_project(tmp_path, {"north/site/defs.yaml": CHICAGO, "north/meters/defs.yaml": meters_yaml()})
    devices = defs.resources["modbus__north__meters"].devices
    assert {(device.host, device.port) for device in devices} == {("127.0.0.1", 1)}


def test_a_bad_address_names_the_file_the_field_and_the_value(tmp_path, monkeypatch):
    monkeypatch.setenv("GL_T_MODBUS", "127.0.0.1:http")
    error = _load_error(tmp_path, {"north/site/defs.yaml": CHICAGO, "north/meters/defs.yaml": meters_yaml()})
    assert "north/meters/defs.yaml: field 'endpoint_env': $GL_T_MODBUS = '127.0.0.1:http' is not 'host:port'" in error


def test_devices_on_two_gateways_cannot_share_one_override(tmp_path):
    two_gateways = meters_yaml().replace("port: 1\n", "port: 2\n", 1)
    error = _load_error(tmp_path, {"north/site/defs.yaml": CHICAGO, "north/meters/defs.yaml": two_gateways})
    assert "endpoint_env 'GL_T_MODBUS' would move devices at 127.0.0.1:1, 127.0.0.1:2 to one address" in error


def test_the_cems_plc_moves_by_endpoint_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GL_T_PLC", "127.0.0.2:15021")
    cems = demo_yaml("cems").replace("GL_CEMS_PLC_ADDRESS", "GL_T_PLC")
    for folder in ("dahs_drop", "quarantine", "accepted"):  # this test's own folders, not the checkout's
        cems = cems.replace(f"data/cems/{folder}", str(tmp_path / folder))
    defs = load_project(tmp_path / "p", {"north/site/defs.yaml": CHICAGO, "north/cems/defs.yaml": cems})
    (plc,) = defs.resources["cems_plc__north__cems"].devices
    assert (plc.host, plc.port, plc.name) == ("127.0.0.2", 15021, "cems_plc")
    without_plc = cems[: cems.index("  plc:")]
    error = _load_error(tmp_path / "q", {"north/site/defs.yaml": CHICAGO, "north/cems/defs.yaml": without_plc})
    assert "endpoint_env 'GL_T_PLC' moves the PLC, and there is no plc block" in error
