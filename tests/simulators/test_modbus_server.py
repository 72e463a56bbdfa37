"""The Modbus half of the demo plant, read over loopback by a plain pymodbus client.

Expected values come from `meter_model`; since the server computes them at read time, each
check brackets the read between two timestamps taken around it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from itertools import product

import numpy as np
import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gl_demo_plant import meter_model, plant_model
from gl_demo_plant.modbus_server import ModbusFaults, ThreadedDemoModbusServer, _Table
from gl_pipelines.config import REGISTER_COUNT, ModbusDevice, ModbusPoint, ModbusSource, load_site_config
from gl_pipelines.resources.modbus_codec import decode_registers
from tests.conftest import free_port

TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")
ORDERS = tuple(product(("big", "little"), ("big", "little")))  # (byte order, word order)
HOUR = datetime(2026, 11, 1, 9, tzinfo=UTC)


def _codec_device() -> ModbusDevice:
    """One holding point per type x byte/word order, with a one-register gap between points: 111 registers."""
    points, address = [], 0
    for data_type, (byte_order, word_order) in product(TYPES, ORDERS):
        name = f"Codec.{data_type}.{byte_order}_{word_order}"
        points.append(
            ModbusPoint(
                name=name,
                table="holding",
                address=address,
                type=data_type,
                byte_order=byte_order,
                word_order=word_order,
                unit="1",
            )
        )
        address += REGISTER_COUNT[data_type] + 1
    points.append(ModbusPoint(name="Codec.Flag", table="discrete", address=21, type="bool", unit="dimensionless"))
    return ModbusDevice(name="codec", host="127.0.0.1", device_id=7, points=points)


DEMO = load_site_config().modbus
SOURCE = DEMO.model_copy(update={"devices": [*DEMO.devices, _codec_device()]})
DEVICES = {device.name: device for device in SOURCE.devices}
POINTS = {point.name: (device, point) for device in SOURCE.devices for point in device.points}


@pytest.fixture(scope="module")
def modbus_server():
    with ThreadedDemoModbusServer(source=SOURCE, port=free_port()) as server:
        yield server


@pytest.fixture
def meters(modbus_server):
    modbus_server.faults = ModbusFaults()
    yield modbus_server
    modbus_server.faults = ModbusFaults()


async def _connect(port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    assert await client.connect()
    return client


def _read(port: int, function: str, address: int, count: int, device_id: int):
    """One request on a fresh connection -> (time before, response, time after)."""

    async def go():
        client = await _connect(port)
        try:
            before = time.time()
            response = await getattr(client, function)(address, count=count, device_id=device_id)
            return before, response, time.time()
        finally:
            client.close()

    return asyncio.run(go())


_FUNCTION = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


def _read_raw(port: int, name: str) -> tuple[float, int | float | bool, float]:
    device, point = POINTS[name]
    before, response, after = _read(port, _FUNCTION[point.table], point.address, point.register_count, device.device_id)
    assert not response.isError(), response
    if point.type == "bool":
        return before, response.bits[0], after
    return before, decode_registers(response.registers, point.type, point.byte_order, point.word_order), after


def _model(name: str, epoch_s: float) -> float | bool:
    device, point = POINTS[name]
    return meter_model.engineering_value(point, datetime.fromtimestamp(epoch_s, UTC), device=device.name)


def _assert_between(value: float, a: float, b: float, tolerance: float) -> None:
    assert min(a, b) - tolerance <= value <= max(a, b) + tolerance, (value, a, b)


# --- the model -------------------------------------------------------------------------------


def test_meters_follow_the_opcua_boiler_without_noise():
    t = plant_model.sample_times(HOUR, HOUR + timedelta(days=1)).astype(float)
    steam = meter_model.steam_flow_t_h(t)
    np.testing.assert_allclose(steam, plant_model.FULL_LOAD_STEAM_T_H * plant_model.boiler_load(t))
    np.testing.assert_allclose(meter_model.gas_flow_m3_h(t), steam * plant_model.GAS_M3_PER_T_STEAM)
    boiler = {tag.name: tag for tag in plant_model.PROCESS_TAGS}["Boiler1.SteamFlow"].values(t.astype(np.int64))
    assert np.abs(boiler - steam).max() <= 0.4 + 1e-9  # the OPC UA tag is the same flow plus its noise


@pytest.mark.parametrize(
    ("total", "rate"),
    [
        ("SteamMeter.Total", meter_model.steam_flow_t_h),
        ("GasMeter.Total", meter_model.gas_flow_m3_h),
        ("PowerMeter.Energy", meter_model.active_power_kw),
    ],
)
def test_totalizers_are_the_exact_integral_of_their_rates(total, rate):
    t = np.arange(HOUR.timestamp(), HOUR.timestamp() + 3600 + 0.5, 0.5)
    numeric = np.trapezoid(rate(t), t) / 3600.0
    exact = meter_model.consumption(total, HOUR, HOUR + timedelta(hours=1))
    assert exact == pytest.approx(numeric, rel=1e-9)
    assert meter_model.METERS[total](HOUR.timestamp()) > meter_model.OPENING[total]


def test_unknown_points_get_a_deterministic_value_never_an_error():
    _, point = POINTS["Codec.int32.big_big"]
    values = {meter_model.engineering_value(point, HOUR, device=name) for name in ("a", "b", "a")}
    assert len(values) == 2
    assert meter_model.engineering_value(point, HOUR, seed=1) != meter_model.engineering_value(point, HOUR)
    assert 0 < meter_model.engineering_value("Nobody.Knows", HOUR) < 100
    counter = point.model_copy(update={"totalizer": True})
    assert meter_model.engineering_value(counter, HOUR + timedelta(hours=1)) > meter_model.engineering_value(
        counter, HOUR
    )


# --- the server --------------------------------------------------------------------------------


def test_every_type_and_byte_word_order_decodes_to_the_model_value(meters):
    device = DEVICES["codec"]
    before, response, after = _read(meters.port, "read_holding_registers", 0, 111, device.device_id)
    assert not response.isError(), response
    taken: set[int] = set()
    for point in device.points:
        if point.type == "bool":
            continue
        span = range(point.address, point.address + point.register_count)
        taken.update(span)
        raw = decode_registers([response.registers[i] for i in span], point.type, point.byte_order, point.word_order)
        a, b = (_model(point.name, moment) for moment in (before, after))
        precision = 1e-6 if point.type == "float32" else 1e-12
        _assert_between(raw, a, b, tolerance=1 + precision * abs(a))  # 1: integers are rounded
    assert all(register == 0 for i, register in enumerate(response.registers) if i not in taken)
    assert {p.type for p in device.points} >= set(TYPES)
    assert any(v < 0 for v in (_model(p.name, before) for p in device.points if p.type.startswith("int")))
    *_, flag, _ = _read_raw(meters.port, "Codec.Flag")
    assert flag is _model("Codec.Flag", before)


@pytest.mark.parametrize("name", [p.name for d in DEMO.devices for p in d.points])
def test_demo_meters_serve_the_model_through_scale_offset_and_byte_order(meters, name):
    _, point = POINTS[name]
    before, raw, after = _read_raw(meters.port, name)
    if point.type == "bool":
        assert raw is _model(name, before) is True
        return
    value = point.offset + point.scale * raw
    precision = 1e-6 if point.type == "float32" else 1e-12
    a, b = _model(name, before), _model(name, after)
    _assert_between(value, a, b, tolerance=abs(point.scale) / 2 + precision * abs(a))
    if point.min is not None:
        assert point.min <= value <= (point.max if point.max is not None else np.inf)


@pytest.mark.parametrize("name", meter_model.TOTALIZERS)
def test_totalizer_advances_by_the_closed_form_integral(meters, name):
    _, point = POINTS[name]
    first_before, first, first_after = _read_raw(meters.port, name)
    time.sleep(1.0)
    second_before, second, second_after = _read_raw(meters.port, name)
    advanced = point.scale * (second - first)
    total = meter_model.METERS[name]
    least, most = total(second_before) - total(first_after), total(second_after) - total(first_before)
    _assert_between(advanced, least, most, tolerance=abs(point.scale))
    assert advanced > 0


@pytest.mark.parametrize("code", [2, 6, 0x0A, 0x0B])
def test_injected_exception_code_reaches_the_client_and_spares_other_devices(meters, code):
    meters.faults.exception_for["gas_meter"] = code
    _, response, _ = _read(meters.port, "read_input_registers", 10, 2, DEVICES["gas_meter"].device_id)
    assert response.isError() and response.exception_code == code
    assert _read_raw(meters.port, "SteamMeter.Flow")[1] > 0


def test_unconfigured_device_id_answers_like_a_gateway(meters):
    _, response, _ = _read(meters.port, "read_holding_registers", 0, 2, 99)
    assert response.isError() and response.exception_code == 0x0B


def test_dropped_connection_then_reconnect_works(meters):
    steam = DEVICES["steam_meter"]

    async def go():
        client = await _connect(meters.port)
        try:
            assert not (await client.read_input_registers(0, count=2, device_id=steam.device_id)).isError()
            meters.faults.drop_after_requests = 1
            with pytest.raises(ModbusException):
                await client.read_input_registers(0, count=2, device_id=steam.device_id)
            assert await client.connect()
            return await client.read_input_registers(0, count=2, device_id=steam.device_id)
        finally:
            client.close()

    response = asyncio.run(go())
    assert not response.isError() and meters.faults.drop_after_requests is None


def test_counter_shift_makes_the_totalizer_roll_over(meters):
    name = "SteamMeter.Total"
    _, point = POINTS[name]
    wrap_at = time.time() + 1.0
    raw_then = (_model(name, wrap_at) - point.offset) / point.scale
    meters.faults.counter_shift[name] = point.rollover - raw_then
    *_, before_wrap, _ = _read_raw(meters.port, name)
    assert point.rollover - 100 < before_wrap < point.rollover
    time.sleep(max(0.0, wrap_at + 1.0 - time.time()))
    *_, after_wrap, _ = _read_raw(meters.port, name)
    assert 0 <= after_wrap < 100


def test_reset_meter_counts_again_from_zero(meters):
    name = "GasMeter.Total"
    _, point = POINTS[name]
    reset = datetime.now(UTC) - timedelta(minutes=1)
    meters.faults.reset_at[name] = reset
    before, raw, after = _read_raw(meters.port, name)
    since_reset = [meter_model.consumption(name, reset, datetime.fromtimestamp(t, UTC)) for t in (before, after)]
    _assert_between(point.scale * raw, *since_reset, tolerance=abs(point.scale))
    assert 0 < point.scale * raw < 100  # about a minute of ~3,000 m**3/h


def test_writes_are_rejected_and_counted(meters):
    steam, power = DEVICES["steam_meter"], DEVICES["power_meter"]
    rejected, requests = meters.stats.writes_rejected, dict(meters.stats.requests_by_device)

    async def go():
        client = await _connect(meters.port)
        try:
            return [
                await client.write_register(100, 5, device_id=steam.device_id),
                await client.write_registers(100, [0, 0], device_id=steam.device_id),
                await client.write_coil(0, False, device_id=power.device_id),
            ]
        finally:
            client.close()

    responses = asyncio.run(go())
    assert all(r.isError() and r.exception_code == 1 for r in responses)  # ILLEGAL_FUNCTION
    assert meters.stats.writes_rejected == rejected + 3
    assert meters.stats.requests_by_device["steam_meter"] == requests.get("steam_meter", 0) + 2
    assert _read_raw(meters.port, "PowerMeter.Running")[1] is True


def test_synthetic_maps_for_benchmarks_serve_every_register():
    """A 1,000-register device among 20: every block of 125 reads without error, values in range."""
    points = [
        ModbusPoint(name=f"Syn.P{i:03d}", table="input", address=2 * i, type="float32", unit="1", min=0, max=100)
        for i in range(500)
    ]
    devices = [ModbusDevice(name=f"syn{n:02d}", host="127.0.0.1", device_id=n, points=points) for n in range(1, 21)]
    with ThreadedDemoModbusServer(source=ModbusSource(devices=devices), port=free_port()) as server:
        registers = []
        for start in range(0, 1000, 125):
            _, response, _ = _read(server.port, "read_input_registers", start, 125, 20)
            assert not response.isError(), response
            registers += response.registers
        assert server.stats.requests_by_device == {"syn20": 8}
    values = [decode_registers(registers[i : i + 2], "float32", "big", "big") for i in range(0, 1000, 2)]
    assert all(0 <= v <= 100 for v in values) and len(set(values)) > 400


def test_a_block_and_one_point_requests_encode_the_same_registers():
    """A block is encoded with numpy, a one-point request in plain Python: the same registers for
    every type and layout, scale and offset, rollover, faults and clipping to the type's range."""
    counters = [
        ModbusPoint(
            name="C.u32roll",
            table="holding",
            address=200,
            type="uint32",
            scale=0.001,
            unit="t",
            totalizer=True,
            rollover=2**32,
        ),
        ModbusPoint(
            name="C.f32roll",
            table="holding",
            address=202,
            type="float32",
            word_order="little",
            unit="1",
            totalizer=True,
            rollover=1e6,
        ),
        ModbusPoint(name="C.u32clip", table="holding", address=204, type="uint32", unit="1", totalizer=True),
        ModbusPoint(
            name="C.u64clip", table="holding", address=206, type="uint64", byte_order="little", unit="1", totalizer=True
        ),
        ModbusPoint(name="C.i64low", table="holding", address=210, type="int64", unit="1", totalizer=True),
        POINTS["SteamMeter.Total"][1].model_copy(update={"address": 220}),  # a modelled meter, not synthetic
    ]
    points = [p for p in DEVICES["codec"].points if p.table == "holding"] + counters
    table = _Table(points, plant_model.DEFAULT_SEED, "codec")
    now = HOUR.timestamp() + 1234.5678
    faults = ModbusFaults(
        counter_shift={"C.u32roll": 2**32 - 10, "C.u32clip": 5e9, "C.u64clip": 2e19, "C.i64low": -1e19},
        reset_at={"C.f32roll": HOUR, "SteamMeter.Total": HOUR},
    )
    first, block = table.registers(now, 0, len(table.points), faults)
    singles = {}
    for i in range(len(table.points)):
        address, words = table.registers(now, i, i + 1, faults)
        singles.update(zip(range(address, address + len(words)), words, strict=True))
    assert {first + k: word for k, word in enumerate(block) if first + k in singles} == singles
    assert all(block[k] == 0 for k in range(len(block)) if first + k not in singles)  # gaps read as 0
    raw = dict(zip((p.name for p in table.points), table.raw(now, 0, len(table.points), faults), strict=True))
    assert raw["C.u32clip"] == 2**32 - 1 and raw["C.i64low"] == -(2**63) and raw["C.u64clip"] < 2**64
    assert 0 <= raw["C.u32roll"] < 2**32 and 0 <= raw["C.f32roll"] < 1e6


def test_response_delay_holds_every_answer():
    """The benchmark's stand-in for a real meter's answer time (default 0)."""
    steam = DEVICES["steam_meter"]
    source = ModbusSource(devices=[steam])
    with ThreadedDemoModbusServer(source=source, port=free_port(), response_delay_s=0.2) as server:
        before, response, after = _read(server.port, "read_input_registers", 0, 2, steam.device_id)
    assert not response.isError() and after - before >= 0.15
