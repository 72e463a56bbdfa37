"""Meter assets against the real demo Modbus server: live snapshots, consumption, refusals."""

import time
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, instance_for_test, partition_loading_context

from gl_demo_plant import meter_model
from gl_pipelines.assets.meters import snapshot_refusal
from gl_pipelines.assets.partitions import site_hourly_partitions, utc_window
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import ModbusPoint
from tests.runs import run

READINGS = AssetSelection.assets("meter_readings")
CONSUMPTION = AssetSelection.assets("meter_hourly_consumption")


@pytest.fixture
def meters(site, modbus_server, tmp_path):
    """Definitions whose meters point at the demo server; snapshots allowed up to 2 h late for the test."""
    site = site.model_copy(update={"modbus": site.modbus.model_copy(update={"max_read_delay_s": 7300})})
    warehouse = tmp_path / "w.duckdb"
    with instance_for_test() as instance:
        yield build_definitions(site, warehouse), instance, warehouse, modbus_server


def closed_hours(defs) -> tuple[str, str]:
    """The last two closed hourly partitions on the plant clock."""
    hourly = defs.resolve_assets_def("meter_readings").partitions_def
    with partition_loading_context(datetime.now(UTC)):
        last = hourly.get_last_partition_key()
    previous = hourly.get_partition_key_for_timestamp(
        (utc_window(hourly.time_window_for_partition_key(last))[0] - timedelta(minutes=30)).timestamp()
    )
    return previous, last


def table(path, name):
    with duckdb.connect(str(path), read_only=True) as con:
        return (
            con.sql(f"select * from plant.{name} order by tag").df()
            if name == "meter_readings"
            else con.sql(f"select * from plant.{name} order by meter").df()
        )


def failure_text(result) -> str:
    return next(
        e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ).event_specific_data.error.to_string()


def test_snapshot_of_the_hour_just_closed_matches_the_meters(meters):
    defs, instance, warehouse, _ = meters
    _, last = closed_hours(defs)
    result = run(defs, instance, READINGS, last)
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    stored = table(warehouse, "meter_readings")
    assert len(stored) == 7 and (stored["quality"] == "good").all()
    start = utc_window(site_hourly_partitions("America/Chicago").time_window_for_partition_key(last))[0]
    assert (pd.to_datetime(stored["hour_start"], utc=True) == start).all()
    for row in stored.itertuples():
        expected = float(meter_model.engineering_value(row.tag, row.ts.to_pydatetime()))
        assert row.value == pytest.approx(expected, rel=1e-3, abs=0.05), row.tag


def test_past_hour_is_refused_not_faked(meters):
    defs, instance, warehouse, _ = meters
    result = run(defs, instance, READINGS, "2026-11-01-03:00")
    assert not result.success
    assert "Modbus meters keep no history, so a past hour cannot be read and is not faked" in failure_text(result)
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("select count(*) from information_schema.tables").fetchone()[0] == 0


def test_refusal_rules():
    boundary = datetime(2026, 11, 10, 9, tzinfo=UTC)
    assert snapshot_refusal("h", boundary, boundary + timedelta(seconds=30), 900) is None
    assert "the hour closes at" in snapshot_refusal("h", boundary, boundary - timedelta(seconds=1), 900)
    assert "keep no history" in snapshot_refusal("h", boundary, boundary + timedelta(minutes=16), 900)


def snapshots_and_consumption(defs, instance):
    previous, last = closed_hours(defs)
    assert run(defs, instance, READINGS, previous).success
    time.sleep(1.5)
    second = run(defs, instance, READINGS, last)
    return second, run(defs, instance, CONSUMPTION, last)


def test_consumption_from_two_live_snapshots_matches_the_physics(meters):
    defs, instance, warehouse, _ = meters
    _, result = snapshots_and_consumption(defs, instance)
    assert result.success
    consumption = table(warehouse, "meter_hourly_consumption").set_index("meter")
    assert set(consumption["flag"]) == {"ok"}
    scales = {"SteamMeter.Total": 0.001, "GasMeter.Total": 0.01, "PowerMeter.Energy": 0.0}
    for meter, row in consumption.iterrows():
        t0, t1 = row["read_start"].to_pydatetime(), row["read_end"].to_pydatetime()
        per_hour = 3600 / (t1 - t0).total_seconds()
        expected = meter_model.consumption(meter, t0, t1) * per_hour
        quantum = 2 * scales[meter] * per_hour  # one raw count at each end
        assert row["consumption"] == pytest.approx(expected, rel=0.02, abs=quantum), meter


WRAP_AFTER_S = 15


def test_counter_rollover_and_meter_reset_between_snapshots(meters):
    defs, instance, warehouse, server = meters
    previous, last = closed_hours(defs)
    rollover = 4_294_967_296
    # The counter wraps WRAP_AFTER_S from now: later than the first snapshot takes on a loaded machine (the
    # test checks that), earlier than the second, which waits for it.
    now = datetime.now(UTC)
    raw_now = meter_model.engineering_value("SteamMeter.Total", now) / 0.001
    counts_per_s = meter_model.engineering_value("SteamMeter.Total", now + timedelta(seconds=1)) / 0.001 - raw_now
    wraps_at = now + timedelta(seconds=WRAP_AFTER_S)
    server.faults.counter_shift["SteamMeter.Total"] = rollover - (raw_now % rollover) - counts_per_s * WRAP_AFTER_S
    assert run(defs, instance, READINGS, previous).success
    assert datetime.now(UTC) < wraps_at, "the first snapshot took longer than WRAP_AFTER_S: raise it"
    server.faults.reset_at["PowerMeter.Energy"] = datetime.now(UTC)
    time.sleep((wraps_at - datetime.now(UTC)).total_seconds() + 1.5)
    assert run(defs, instance, READINGS, last).success
    result = run(defs, instance, CONSUMPTION, last)
    assert result.success
    consumption = table(warehouse, "meter_hourly_consumption").set_index("meter")
    assert consumption.loc["SteamMeter.Total", "flag"] == "rollover"
    assert 10 < consumption.loc["SteamMeter.Total", "consumption"] < 60  # t/h, not a 4-million-tonne jump
    assert consumption.loc["PowerMeter.Energy", "flag"] == "reset"
    assert np.isnan(consumption.loc["PowerMeter.Energy", "consumption"])
    assert all(check.passed for check in result.get_asset_check_evaluations())


def test_device_exception_gives_named_bad_rows_and_blocks_consumption(meters):
    defs, instance, warehouse, server = meters
    previous, last = closed_hours(defs)
    assert run(defs, instance, READINGS, previous).success
    server.faults.exception_for["gas_meter"] = 2
    readings = run(defs, instance, READINGS, last)
    checks = {check.check_name: check for check in readings.get_asset_check_evaluations()}
    assert not checks["meter_readings_complete"].passed
    assert "GasMeter.Total" in checks["meter_readings_complete"].description
    assert "exception 2" in checks["meter_readings_complete"].description
    stored = table(warehouse, "meter_readings")
    assert set(stored.loc[stored["quality"] == "bad", "tag"]) == {"GasMeter.Flow", "GasMeter.Total"}
    assert (stored.loc[stored["device"] != "gas_meter", "quality"] == "good").all()
    blocked = run(defs, instance, CONSUMPTION, last)
    assert not blocked.success
    assert f"meter_readings_complete[{last}]: failed" in failure_text(blocked)


@pytest.fixture
def meters_with_a_wrong_address(site, modbus_server, tmp_path):
    """The demo site with one point the gas meter does not have (holding 206, past its map's end):
    a typo in a register map. It shares the block holding 200..206 with GasMeter.Total (200..203)."""
    typo = ModbusPoint(name="GasMeter.Pressure", table="holding", address=206, type="uint16", unit="kPa")
    devices = [
        device.model_copy(update={"points": [*device.points, typo]}) if device.name == "gas_meter" else device
        for device in site.modbus.devices
    ]
    modbus = site.modbus.model_copy(update={"max_read_delay_s": 7300, "devices": devices})
    warehouse = tmp_path / "w.duckdb"
    with instance_for_test() as instance:
        yield build_definitions(site.model_copy(update={"modbus": modbus}), warehouse), instance, warehouse


def metadata_of(result) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {key: entry.value for key, entry in event.materialization.metadata.items()}


def test_a_wrong_address_costs_only_its_own_point_and_the_next_hour_plans_around_it(meters_with_a_wrong_address):
    """The block holding 200..206 is refused (2): GasMeter.Total is read on its own and stored good, only
    GasMeter.Pressure is bad and named by the check. Requests: steam 2, power 3, gas input 1, the refused
    block, Total, Pressure = 9. The next hour (a new run) starts from the metadata: Total and Pressure
    are planned apart, 8 requests."""
    defs, instance, warehouse = meters_with_a_wrong_address
    previous, last = closed_hours(defs)
    first = run(defs, instance, READINGS, previous)  # the run fails on its blocking check, after storing
    stored = table(warehouse, "meter_readings").set_index("tag")
    assert list(stored.index[stored["quality"] == "bad"]) == ["GasMeter.Pressure"]
    refusal = "exception 2 (ILLEGAL DATA ADDRESS) from device gas_meter: point GasMeter.Pressure at holding 206"
    assert stored.loc["GasMeter.Pressure", "status"] == refusal
    assert stored.loc["GasMeter.Total", "quality"] == "good"
    expected = meter_model.engineering_value("GasMeter.Total", stored.loc["GasMeter.Total", "ts"].to_pydatetime())
    assert stored.loc["GasMeter.Total", "value"] == pytest.approx(float(expected), rel=1e-3, abs=0.05)
    checks = {check.check_name: check for check in first.get_asset_check_evaluations()}
    assert not checks["meter_readings_complete"].passed
    assert checks["meter_readings_complete"].description == f"GasMeter.Pressure: {refusal}"
    assert checks["meter_readings_in_range"].passed
    metadata = metadata_of(first)
    assert metadata["query"] == "8 points, 9 Modbus requests"
    assert metadata["modbus_refused_addresses"] == {"gas_meter": ["holding 206"]}

    second = run(defs, instance, READINGS, last)
    metadata = metadata_of(second)
    assert metadata["query"] == "8 points, 8 Modbus requests"
    assert metadata["modbus_refused_addresses"] == {"gas_meter": ["holding 206"]}
    stored = table(warehouse, "meter_readings")  # both hours
    assert len(stored) == 16 and list(stored.loc[stored["quality"] == "bad", "tag"]) == ["GasMeter.Pressure"] * 2
