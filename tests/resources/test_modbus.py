"""ModbusResource against the real demo Modbus server over loopback."""

from __future__ import annotations

import ast
import contextlib
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import build_sensor_context

from gl_demo_plant.meter_model import value_function
from gl_demo_plant.modbus_server import ModbusFaults, ThreadedDemoModbusServer
from gl_demo_plant.plant_model import DEFAULT_SEED
from gl_demo_plant.register_maps import contiguous_1000
from gl_pipelines.config import REGISTER_COUNT, ModbusDevice, ModbusPoint, load_site_config
from gl_pipelines.resources import modbus as modbus_module
from gl_pipelines.resources.modbus import READINGS_COLUMNS, ModbusReadError, ModbusResource
from gl_pipelines.resources.modbus_plan import AddressRange
from tests.conftest import free_port

DEMO = load_site_config().modbus
ORDERS = [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")]


def every_type_and_order(device_id: int) -> ModbusDevice:
    """Every register type in all four byte/word layouts, scaled, plus coils and discrete inputs."""
    points, address = [], 0
    for data_type in sorted(REGISTER_COUNT):
        for byte_order, word_order in ORDERS:
            points.append(
                ModbusPoint(
                    name=f"Types.{data_type}.{byte_order[0]}{word_order[0]}",
                    table="input" if data_type.startswith("float") else "holding",
                    address=address,
                    type=data_type,
                    byte_order=byte_order,
                    word_order=word_order,
                    scale=0.5,
                    offset=10,
                    unit="1",
                )
            )
            address += REGISTER_COUNT[data_type] + 1
    points += [
        ModbusPoint(name=f"Types.bit{i}", table=t, address=i, type="bool", unit="1")
        for i, t in enumerate(["coil", "discrete"] * 3)
    ]
    return ModbusDevice(name="every_type", host="127.0.0.1", device_id=device_id, points=points)


def gappy(device_id: int) -> ModbusDevice:
    """Two runs of ten uint16 with ten unused registers between them: one block at the default max_gap."""
    points = [
        ModbusPoint(name=f"Gappy.R{address}", table="holding", address=address, type="uint16", unit="1")
        for address in [*range(10), *range(20, 30)]
    ]
    return ModbusDevice(name="gappy", host="127.0.0.1", device_id=device_id, points=points)


@pytest.fixture(scope="module")
def modbus_server():
    port = free_port()
    devices = [*DEMO.devices, contiguous_1000("big_meter", 10), every_type_and_order(11), gappy(12)]
    source = DEMO.model_copy(update={"devices": [d.model_copy(update={"port": port}) for d in devices]})
    with ThreadedDemoModbusServer(source=source, port=port) as server:
        yield server


@pytest.fixture
def meters(modbus_server):
    """The running server with faults cleared before and after each test; nothing may ever write to it."""
    modbus_server.faults = ModbusFaults()
    yield modbus_server
    modbus_server.faults = ModbusFaults()
    assert modbus_server.stats.writes_rejected == 0


def devices(server, *names: str) -> list[ModbusDevice]:
    return [d for d in server.source.devices if d.name in names]


def demo_devices(server) -> list[ModbusDevice]:
    return devices(server, *(d.name for d in DEMO.devices))


def resource(server, **overrides) -> ModbusResource:
    settings = {"retry_initial_wait_s": 0.02, "retry_max_wait_s": 0.1} | overrides
    return ModbusResource.from_source(server.source, **settings)


def requests_to(server, name: str) -> int:
    return server.stats.requests_by_device.get(name, 0)


def assert_matches_model(frame: pd.DataFrame, devices: list[ModbusDevice], read_from: datetime) -> None:
    """Each value is what the meter model gives at some moment between the call and the row's read time,
    within the register's resolution (one raw count x scale, or float32 precision)."""
    points = {p.name: (d, p) for d in devices for p in d.points}
    assert sorted(frame["tag"]) == sorted(points)
    for row in frame.itertuples():
        device, point = points[row.tag]
        moments = np.linspace(read_from.timestamp(), row.ts.timestamp(), 50)
        model = value_function(point, DEFAULT_SEED, device.name)
        expected = np.array([float(model(t)) for t in moments])
        low, high = expected.min(), expected.max()
        tolerance = abs(point.scale) + 1e-6 * max(abs(low), abs(high))
        assert low - tolerance <= row.value <= high + tolerance, (row.tag, row.value, low, high)


def test_demo_meters_read_as_the_model_says(meters):
    demo = demo_devices(meters)
    before, started = meters.stats.requests, datetime.now(UTC)
    snapshot = resource(meters).read_points(demo)
    frame = snapshot.frame
    assert list(frame.columns) == READINGS_COLUMNS
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]" and frame["value"].dtype == np.float64
    assert (frame["ts"] >= pd.Timestamp(started)).all() and (frame["ts"] <= pd.Timestamp.now(tz="UTC")).all()
    assert set(frame["quality"]) == {"good"} and set(frame["status"]) == {"ok"}
    assert set(frame["source"]) == {"demo-modbus"}
    assert dict(zip(frame["tag"], frame["device"], strict=True)) == {p.name: d.name for d in demo for p in d.points}
    assert dict(zip(frame["tag"], frame["unit"], strict=True)) == {p.name: p.unit for d in demo for p in d.points}
    assert_matches_model(frame, demo, started)
    assert frame.set_index("tag").loc["PowerMeter.Running", "value"] == 1.0
    # steam 2 tables, gas 2, power 3 (input, holding, coil): one request each.
    assert snapshot.requests == meters.stats.requests - before == 7
    assert snapshot.endpoints == tuple(f"modbus://127.0.0.1:{meters.port}/{i}" for i in (1, 2, 3))
    assert len(snapshot.payload_sha256) == 64 and snapshot.duration_s > 0


def test_every_type_and_layout_decodes_what_the_server_encoded(meters):
    device = devices(meters, "every_type")
    started = datetime.now(UTC)
    frame = resource(meters).read_points(device).frame
    assert set(frame["quality"]) == {"good"}
    assert_matches_model(frame, device, started)


def test_thousand_contiguous_registers_take_eight_requests(meters):
    big = devices(meters, "big_meter")
    before, started = requests_to(meters, "big_meter"), datetime.now(UTC)
    snapshot = resource(meters).read_points(big)
    assert requests_to(meters, "big_meter") - before == snapshot.requests == 8
    assert len(snapshot.frame) == 8 * 63 and set(snapshot.frame["quality"]) == {"good"}
    assert_matches_model(snapshot.frame, big, started)


def test_a_uint32_near_rollover_decodes_unsigned(meters):
    """The steam totalizer (uint32, words swapped) just below 2**32 counts: the high bit set, never negative."""
    raw_now = round(float(value_function("SteamMeter.Total")(time.time())) / 0.001)
    meters.faults.counter_shift["SteamMeter.Total"] = 2**32 - 5_000 - raw_now
    frame = resource(meters).read_points(devices(meters, "steam_meter")).frame.set_index("tag")
    assert 4_294_962.0 < frame.loc["SteamMeter.Total", "value"] < 4_294_967.296


@pytest.mark.parametrize("code", [2, 10])
def test_exception_response_becomes_bad_rows_without_retries(meters, code):
    meters.faults.exception_for["gas_meter"] = code
    before = requests_to(meters, "gas_meter")
    frame = resource(meters).read_points(demo_devices(meters)).frame
    gas = frame[frame["device"] == "gas_meter"]
    assert set(gas["quality"]) == {"bad"} and gas["value"].isna().all()
    name = {2: "ILLEGAL DATA ADDRESS", 10: "GATEWAY PATH UNAVAILABLE"}[code]
    statuses = dict(zip(gas["tag"], gas["status"], strict=True))
    assert statuses == {
        "GasMeter.Total": f"exception {code} ({name}) from device gas_meter: point GasMeter.Total at holding 200..203",
        "GasMeter.Flow": f"exception {code} ({name}) from device gas_meter: point GasMeter.Flow at input 10..11",
    }
    assert requests_to(meters, "gas_meter") - before == 2  # one per block: asking again cannot help
    others = frame[frame["device"] != "gas_meter"]
    assert len(others) == 5 and set(others["quality"]) == {"good"}


def test_an_illegal_address_costs_only_its_own_point_and_is_remembered(meters):
    """Holding 300 does not exist: its point (F2_24, holding 299..300) is the only bad row. The block
    [250, 375) of 63 points is narrowed down by halves: [0..30] fails, [0..14] ok, [15..30] known to
    fail (it adjoins), [15..22] ok, [23..26] fails, [23,24] ok, [25,26] known, [25] fails, [26] ok,
    [27..30] ok, [31..62] ok: 9 requests after the first, plus the 7 other blocks = 17. Remembered, the
    next plan reads [250..298], F2_24 alone, then 301.. packed afresh (6 blocks): 10 requests."""
    big = devices(meters, "big_meter")
    meters.faults.illegal_addresses["big_meter"] = {("holding", 300)}
    reader = resource(meters)
    before = requests_to(meters, "big_meter")
    started = datetime.now(UTC)
    first = reader.read_points(big)
    assert first.requests == requests_to(meters, "big_meter") - before == 17
    bad = first.frame[first.frame["quality"] == "bad"]
    assert list(bad["tag"]) == ["big_meter.F2_24"] and bad["value"].isna().all()
    assert list(bad["status"]) == [
        "exception 2 (ILLEGAL DATA ADDRESS) from device big_meter: point big_meter.F2_24 at holding 299..300"
    ]
    good = first.frame[first.frame["quality"] == "good"]
    assert len(good) == 503 and set(good["status"]) == {"ok"}
    assert_matches_model(
        good, [big[0].model_copy(update={"points": [p for p in big[0].points if p.address != 299]})], started
    )
    assert first.refused == {"big_meter": (AddressRange("holding", 299, 300),)}

    before = requests_to(meters, "big_meter")
    second = reader.read_points(big)
    assert second.requests == requests_to(meters, "big_meter") - before == 10
    assert list(second.frame.loc[second.frame["quality"] == "bad", "tag"]) == ["big_meter.F2_24"]
    assert second.refused == first.refused

    fresh = resource(meters)  # a new process, told what the last run found
    fresh.remember_refused(second.refused)
    before = requests_to(meters, "big_meter")
    assert fresh.read_points(big).requests == requests_to(meters, "big_meter") - before == 10

    meters.faults.illegal_addresses.clear()  # the device was fixed: the point read alone succeeds and is forgotten
    third = reader.read_points(big)
    assert third.requests == 10 and set(third.frame["quality"]) == {"good"} and third.refused == {}
    assert reader.read_points(big).requests == 8


def test_a_hole_between_points_is_found_and_not_bridged_again(meters):
    """Holding 15, between the two runs of `gappy`, does not exist: the block [0, 30) fails, its halves
    [0, 10) and [20, 30) both read fine (3 requests), every point is good and 10..19 is remembered,
    so the next read is two blocks."""
    gap = devices(meters, "gappy")
    meters.faults.illegal_addresses["gappy"] = {("holding", 15)}
    reader = resource(meters)
    before = requests_to(meters, "gappy")
    first = reader.read_points(gap)
    assert first.requests == requests_to(meters, "gappy") - before == 3
    assert set(first.frame["quality"]) == {"good"} and len(first.frame) == 20
    assert first.refused == {"gappy": (AddressRange("holding", 10, 19),)}
    before = requests_to(meters, "gappy")
    assert reader.read_points(gap).requests == requests_to(meters, "gappy") - before == 2


def test_other_exception_codes_are_not_narrowed_down(meters):
    """Only 2 (illegal data address) says which addresses are wrong: a device failure (4) for a block of
    63 points is one bad block, asked once."""
    big = devices(meters, "big_meter")
    meters.faults.exception_for["big_meter"] = 4
    before = requests_to(meters, "big_meter")
    snapshot = resource(meters).read_points([*big, *devices(meters, "steam_meter")])
    assert requests_to(meters, "big_meter") - before == 8
    rows = snapshot.frame[snapshot.frame["device"] == "big_meter"]
    assert set(rows["quality"]) == {"bad"}
    assert rows.groupby("status").size().to_dict() == {
        f"exception 4 (SERVER DEVICE FAILURE) from device big_meter: holding {k * 125}..{k * 125 + 124} (63 points)": 63
        for k in range(8)
    }
    assert snapshot.refused == {}


def test_busy_device_is_retried_and_read_once_it_recovers(meters):
    meters.faults.exception_for["steam_meter"] = 6
    before = requests_to(meters, "steam_meter")

    def recover():
        """Clear the fault well after the first request was answered busy, well before the retry (>= 0.6 s)."""
        deadline = time.monotonic() + 10
        while requests_to(meters, "steam_meter") == before and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.2)
        meters.faults.exception_for.clear()

    helper = threading.Thread(target=recover)
    helper.start()
    snapshot = resource(meters, retry_initial_wait_s=0.6, retry_max_wait_s=2).read_points(
        devices(meters, "steam_meter")
    )
    helper.join()
    assert set(snapshot.frame["quality"]) == {"good"} and set(snapshot.frame["status"]) == {"ok"}
    assert snapshot.requests == requests_to(meters, "steam_meter") - before == 3  # busy, its retry, the other block


def test_busy_that_persists_becomes_bad_rows_after_the_retries(meters):
    meters.faults.exception_for["steam_meter"] = 6
    before = requests_to(meters, "steam_meter")
    frame = resource(meters, retry_attempts=3).read_points(demo_devices(meters)).frame
    steam = frame[frame["device"] == "steam_meter"]
    assert set(steam["quality"]) == {"bad"}
    assert (
        steam["status"]
        .str.fullmatch(r"exception 6 \(SERVER DEVICE BUSY\) from device steam_meter: .* after 3 tries")
        .all()
    )
    assert requests_to(meters, "steam_meter") - before == 2 * 3
    assert set(frame.loc[frame["device"] != "steam_meter", "quality"]) == {"good"}


def test_gateway_target_that_never_answers_is_retried_then_bad(meters):
    """An id nobody serves: the server answers as a gateway would, 0x0B, which is worth retrying."""
    ghost = devices(meters, "steam_meter")[0].model_copy(update={"name": "ghost", "device_id": 99})
    frame = resource(meters, retry_attempts=2).read_points([ghost, *demo_devices(meters)]).frame
    ghost_rows = frame[frame["device"] == "ghost"]
    assert (
        ghost_rows["status"]
        .str.startswith("exception 11 (GATEWAY TARGET DEVICE FAILED TO RESPOND) from device ghost")
        .all()
    )
    assert ghost_rows["status"].str.endswith("after 2 tries").all()
    assert set(frame.loc[frame["device"] != "ghost", "quality"]) == {"good"}


@pytest.mark.parametrize("in_session", [False, True])
def test_dropped_connection_is_reconnected_and_retried(meters, in_session):
    reader = resource(meters)
    with reader.session() if in_session else contextlib.nullcontext():
        if in_session:
            reader.read_points(demo_devices(meters))  # opens the connection the next read reuses
        meters.faults.drop_after_requests = 3  # the third request is never answered and every socket closes
        before = meters.stats.requests
        began = time.perf_counter()
        snapshot = reader.read_points(demo_devices(meters))
    assert set(snapshot.frame["quality"]) == {"good"}
    assert snapshot.requests == meters.stats.requests - before == 8  # 7 + the one lost
    assert time.perf_counter() - began < 2.0  # noticed the closed socket, did not wait out the 3 s timeout


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    """Poll `condition` until it holds: the server sees a client's close a moment after it happens."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_reads_outside_a_session_each_open_and_close_a_connection(meters):
    opened = meters.stats.connections_opened
    reader = resource(meters)
    for _ in range(2):
        reader.read_points(demo_devices(meters))
    assert meters.stats.connections_opened - opened == 2  # the three demo meters share one host:port
    assert wait_for(lambda: meters.open_connections == 0)


def test_a_session_reads_over_one_connection_and_closes_it_on_exit(meters):
    opened = meters.stats.connections_opened
    reader = resource(meters)
    with reader.session():
        for _ in range(3):
            snapshot = reader.read_points(demo_devices(meters))
            assert set(snapshot.frame["quality"]) == {"good"} and snapshot.requests == 7
        assert meters.stats.connections_opened - opened == 1
        assert wait_for(lambda: meters.open_connections == 1)  # earlier tests' closes may still be in flight
    assert wait_for(lambda: meters.open_connections == 0)
    reader.read_points(demo_devices(meters))  # after the session: a read of its own again
    assert meters.stats.connections_opened - opened == 2


def test_sensors_can_use_the_resource_without_a_context_manager(meters):
    """A teardown hook would make Dagster refuse `context.resources` outside `with build_sensor_context(...)`."""
    context = build_sensor_context(resources={"modbus": resource(meters)})
    assert context.resources.modbus.health_check(demo_devices(meters)).ok
    assert wait_for(lambda: meters.open_connections == 0)


def test_a_session_reconnects_when_the_device_closed_the_idle_connection(meters):
    reader = resource(meters)
    with reader.session():
        reader.read_points(demo_devices(meters))
        meters.drop_connections()  # between reads, as a gateway restart or an idle timeout does
        before, opened = meters.stats.requests, meters.stats.connections_opened
        snapshot = reader.read_points(demo_devices(meters))
    assert set(snapshot.frame["quality"]) == {"good"}
    # Noticed before sending: no request lost into the closed socket, so no retry and no backoff.
    assert snapshot.requests == meters.stats.requests - before == 7
    assert meters.stats.connections_opened - opened == 1


def test_unreachable_device_gives_bad_rows_with_the_reason(meters):
    closed = free_port()
    away = devices(meters, "gas_meter")[0].model_copy(update={"port": closed})
    frame = resource(meters).read_points([*devices(meters, "steam_meter", "power_meter"), away]).frame
    gas = frame[frame["device"] == "gas_meter"]
    assert set(gas["quality"]) == {"bad"}
    assert (
        gas["status"]
        == f"unreachable: device gas_meter at 127.0.0.1:{closed}: connection refused (nothing listening at "
        f"127.0.0.1:{closed}: check the host and port) after 3 tries"
    ).all()
    assert set(frame.loc[frame["device"] != "gas_meter", "quality"]) == {"good"}


def test_connect_that_gets_no_answer_is_told_apart_from_refused(meters):
    """A listener whose backlog is full drops new connection attempts, as a host behind a dropping
    firewall does: the connect times out, and the status says so rather than "refused"."""
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued.connect(("127.0.0.1", port))  # fills the backlog; never accepted
        silent = devices(meters, "gas_meter")[0].model_copy(update={"port": port, "timeout_s": 0.3})
        frame = resource(meters, retry_attempts=1).read_points([silent, *devices(meters, "steam_meter")]).frame
    gas = frame[frame["device"] == "gas_meter"]
    assert set(gas["status"]) == {
        f"unreachable: device gas_meter at 127.0.0.1:{port}: no answer to connect within 0.3 s (host down or "
        "unreachable, or a firewall dropping packets: check the host and the network) after 1 try"
    }
    assert set(frame.loc[frame["device"] == "steam_meter", "quality"]) == {"good"}


def test_silent_device_times_out(meters):
    """A socket that accepts but never answers (a hung meter): a `timeout` row, not a hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        hung = devices(meters, "gas_meter")[0].model_copy(update={"port": listener.getsockname()[1], "timeout_s": 0.2})
        frame = resource(meters, retry_attempts=2).read_points([hung, *devices(meters, "steam_meter")]).frame
    gas = frame[frame["device"] == "gas_meter"]
    assert gas["status"].str.fullmatch(r"timeout: no answer from device gas_meter .* within 0\.2 s after 2 tries").all()
    assert set(frame.loc[frame["device"] == "steam_meter", "quality"]) == {"good"}


def test_every_device_failing_raises_naming_them(meters):
    dead = [d.model_copy(update={"port": free_port()}) for d in devices(meters, "steam_meter", "gas_meter")]
    with pytest.raises(ModbusReadError, match="every Modbus device failed: steam_meter .*; gas_meter .*unreachable"):
        resource(meters, retry_attempts=1).read_points(dead)


def test_health_check(meters):
    healthy = resource(meters).health_check(demo_devices(meters))
    assert healthy.ok and healthy.detail == "3/3 devices answered"
    assert healthy.endpoint == ", ".join(f"modbus://127.0.0.1:{meters.port}/{i}" for i in (1, 2, 3))
    meters.faults.exception_for["power_meter"] = 4
    sick = resource(meters).health_check(demo_devices(meters))
    assert not sick.ok and "exception 4 (SERVER DEVICE FAILURE) from device power_meter" in sick.detail
    down = resource(meters, retry_attempts=1).health_check(
        [demo_devices(meters)[0].model_copy(update={"port": free_port()})]
    )
    assert not down.ok and "every Modbus device failed: steam_meter" in down.detail


def test_health_check_defaults_to_the_configured_devices(meters):
    configured = resource(meters)
    assert [d.name for d in configured.devices] == [d.name for d in meters.source.devices]
    assert configured.health_check().ok


def test_read_only(meters):
    """No write in the module: no pymodbus write_* call, no method that could write."""
    tree = ast.parse(Path(modbus_module.__file__).read_text())
    called = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not {name for name in called if name.startswith("write")}
    assert not [name for name in dir(ModbusResource) if "write" in name.lower()]
    resource(meters).read_points(demo_devices(meters))
    assert meters.stats.writes_rejected == 0
