"""SCADA assets materialized in process against the real demo server and a real DuckDB file."""

import re
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, instance_for_test, materialize

from gl_pipelines.assets.scada import daily_summary, daily_summary_query
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources.opcua import OpcUaResource
from tests.conftest import free_port
from tests.expected import expected_readings
from tests.runs import run

# Partition keys follow the demo site's clock (America/Chicago, UTC-6 after the 2026-11-01 fall-back).
HOUR_KEY = "2026-11-01-03:00"
HOUR_UTC = datetime(2026, 11, 1, 9, tzinfo=UTC)
PLANT_DAY_UTC = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))  # 25 hours

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
READINGS_ONLY = AssetSelection.assets("scada_readings")  # its blocking checks run in its own step


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def table(path, name: str, order: str = "tag, ts") -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f"select * from plant.{name} order by {order}").df()


def tag_names(site) -> list[str]:
    return [tag.name for tag in site.opcua.tags]


def test_partition_lands_exact_values_with_provenance(site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    result = run(defs, instance, ["scada_readings"], partition_key=HOUR_KEY)
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())

    stored = table(warehouse, "scada_readings")
    expected = expected_readings(tag_names(site), HOUR_UTC, HOUR_UTC + timedelta(hours=1))
    assert len(stored) == len(expected) == 6 * 360
    np.testing.assert_array_equal(stored["value"].to_numpy(), expected["value"].to_numpy())
    assert (pd.to_datetime(stored["ts"], utc=True) == expected["ts"]).all()
    assert set(stored["source"]) == {"demo-opcua"}

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["source_endpoint"].value == site.opcua.endpoint
    assert metadata["window_start"].value == "2026-11-01T09:00:00+00:00"
    assert len(metadata["payload_sha256"].value) == 64
    assert metadata["dagster/row_count"].value == 2160
    assert metadata["rows_good"].value + metadata["rows_uncertain"].value == 2160
    assert "asyncua/" in metadata["resource_version"].value


def test_rerun_replaces_the_partition(site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    digests = []
    for _ in range(2):
        result = run(defs, instance, READINGS_ONLY, partition_key=HOUR_KEY)
        assert result.success
        digests.append(result.get_asset_materialization_events()[0].materialization.metadata["payload_sha256"].value)
    run(defs, instance, READINGS_ONLY, partition_key="2026-11-01-04:00")
    stored = table(warehouse, "scada_readings")
    assert len(stored) == 2 * 2160
    assert not stored.duplicated(["tag", "ts"]).any()
    assert digests[0] == digests[1]


def test_backfill_in_one_run_lands_the_same_rows_as_24_runs(site, tmp_path, instance):
    single, per_partition = tmp_path / "single.duckdb", tmp_path / "each.duckdb"
    result = run(
        build_definitions(site, single),
        instance,
        READINGS_ONLY,
        tags={RANGE_START: "2026-10-30-12:00", RANGE_END: "2026-10-31-11:00"},  # across a day boundary
    )
    assert result.success
    each_defs = build_definitions(site, per_partition)
    for hour in pd.date_range("2026-10-30 12:00", periods=24, freq="h"):
        assert run(each_defs, instance, READINGS_ONLY, partition_key=hour.strftime("%Y-%m-%d-%H:%M")).success
    one, many = table(single, "scada_readings"), table(per_partition, "scada_readings")
    assert len(one) == 24 * 6 * 360
    pd.testing.assert_frame_equal(one, many)


def test_end_bound_samples_are_dropped_counted_and_a_range_lands_the_hours_rows(site, tmp_path, instance, plant):
    """A server that includes EndTime (node-opcua, PI): every hour and every range still succeeds,
    the bound is counted in the metadata, and a 3-hour range stores exactly the rows of its 3 hours."""
    plant.faults.end_bound.update(tag_names(site))
    single, per_hour = tmp_path / "single.duckdb", tmp_path / "each.duckdb"
    ranged = run(
        build_definitions(site, single),
        instance,
        READINGS_ONLY,
        tags={RANGE_START: "2026-11-01-03:00", RANGE_END: "2026-11-01-05:00"},
    )
    assert ranged.success
    metadata = ranged.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dropped_outside_window"].value == dict.fromkeys(sorted(tag_names(site)), 1)
    assert metadata["dagster/row_count"].value == 3 * 2160
    each_defs = build_definitions(site, per_hour)
    for key in ("2026-11-01-03:00", "2026-11-01-04:00", "2026-11-01-05:00"):
        hour = run(each_defs, instance, READINGS_ONLY, partition_key=key)
        assert hour.success
        dropped = hour.get_asset_materialization_events()[0].materialization.metadata["dropped_outside_window"]
        assert dropped.value == dict.fromkeys(sorted(tag_names(site)), 1)
    one, many = table(single, "scada_readings"), table(per_hour, "scada_readings")
    expected = expected_readings(tag_names(site), HOUR_UTC, HOUR_UTC + timedelta(hours=3))
    assert len(one) == len(expected) == 3 * 2160
    assert (pd.to_datetime(one["ts"], utc=True) == expected["ts"]).all()
    pd.testing.assert_frame_equal(one, many)


def materialize_day(defs, instance):
    return run(
        defs, instance, ["scada_readings"], tags={RANGE_START: "2026-11-01-00:00", RANGE_END: "2026-11-01-23:00"}
    )


def step_failure_message(result) -> str:
    failures = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    return failures[0].event_specific_data.error.to_string()


def test_daily_summary_matches_the_model(site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    assert materialize_day(defs, instance).success
    assert run(defs, instance, ["scada_daily_summary"], partition_key="2026-11-01").success
    stored = table(warehouse, "scada_daily_summary", order="tag")
    expected = expected_readings(tag_names(site), *PLANT_DAY_UTC)
    good = expected[expected["status_code"] == 0]
    assert (stored["count"] == 25 * 360).all()  # the fall-back day has 25 hours
    assert (pd.to_datetime(stored["day"], utc=True) == PLANT_DAY_UTC[0]).all()
    np.testing.assert_allclose(stored["mean"], good.groupby("tag")["value"].mean().sort_index(), rtol=1e-12)
    np.testing.assert_allclose(stored["max"], good.groupby("tag")["value"].max().sort_index(), rtol=1e-12)
    np.testing.assert_array_equal(stored["count_good"], good.groupby("tag").size().sort_index())


def test_failed_check_blocks_the_daily_summary(site, tmp_path, instance, plant):
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    assert materialize_day(defs, instance).success

    plant.faults.out_of_range["Boiler1.FlueGasO2"] = 35.0  # above the configured 0..21 %
    bad_hour = run(defs, instance, ["scada_readings"], partition_key="2026-11-01-05:00")
    checks = {check.check_name: check for check in bad_hour.get_asset_check_evaluations()}
    assert not checks["scada_readings_expectations"].passed
    assert "Boiler1.FlueGasO2" in checks["scada_readings_expectations"].metadata["results"].value

    blocked = run(defs, instance, ["scada_daily_summary"], partition_key="2026-11-01")
    assert not blocked.success
    message = step_failure_message(blocked)
    assert "scada_readings_expectations[2026-11-01-05:00]: failed" in message
    assert "2026-11-01-04:00" not in message
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {row[0] for row in con.sql("select table_name from information_schema.tables").fetchall()}
    assert "scada_daily_summary" not in tables

    plant.faults.out_of_range.clear()
    assert run(defs, instance, ["scada_readings"], partition_key="2026-11-01-05:00").success
    assert run(defs, instance, ["scada_daily_summary"], partition_key="2026-11-01").success


def test_mostly_bad_quality_fails_completeness_and_blocks(site, tmp_path, instance, plant):
    defs = build_definitions(site, tmp_path / "w.duckdb")
    for tag in tag_names(site):
        plant.faults.bad_status_every[tag] = 2  # half the samples Bad: below the 90 % good threshold
    result = run(defs, instance, ["scada_readings"], partition_key=HOUR_KEY)
    checks = {check.check_name: check for check in result.get_asset_check_evaluations()}
    assert not checks["scada_readings_completeness"].passed
    # half the samples Bad, and the odd uncertain one among the rest
    assert re.search(r"; 49\.\d% good \(need 90%\)$", checks["scada_readings_completeness"].description)
    assert checks["scada_readings_expectations"].passed  # bad rows are legitimate rows
    summary = run(defs, instance, ["scada_daily_summary"], partition_key="2026-11-01")
    assert "scada_readings_completeness[2026-11-01-03:00]: failed" in step_failure_message(summary)
    assert "2026-11-01-04:00: not materialized" in step_failure_message(summary)


def test_failed_extraction_leaves_the_stored_partition_untouched(site, tmp_path, instance, plant):
    warehouse = tmp_path / "w.duckdb"
    assert run(build_definitions(site, warehouse), instance, READINGS_ONLY, partition_key=HOUR_KEY).success
    before = table(warehouse, "scada_readings")

    plant.faults.outside_window.add("Boiler1.StackTemp")
    result = run(build_definitions(site, warehouse), instance, READINGS_ONLY, partition_key=HOUR_KEY)
    assert not result.success
    assert "server ignored the requested window" in step_failure_message(result)
    assert "per tag Boiler1.StackTemp: 1" in step_failure_message(result)
    pd.testing.assert_frame_equal(table(warehouse, "scada_readings"), before)


def test_unknown_node_fails_the_run_naming_the_tag(site, tmp_path, instance):
    ghost = site.opcua.tags[0].model_copy(update={"name": "Boiler9.Ghost", "node_id": "ns=2;s=Boiler9.Ghost"})
    broken = site.model_copy(update={"opcua": site.opcua.model_copy(update={"tags": [*site.opcua.tags, ghost]})})
    result = run(build_definitions(broken, tmp_path / "w.duckdb"), instance, READINGS_ONLY, partition_key=HOUR_KEY)
    assert not result.success
    assert "tag Boiler9.Ghost (ns=2;s=Boiler9.Ghost)" in step_failure_message(result)
    assert "BadNodeIdUnknown" in step_failure_message(result)


def test_daily_summary_function_on_an_empty_frame():
    empty = daily_summary(pd.DataFrame(columns=["ts", "tag", "value", "unit", "quality"]), "America/Chicago")
    assert empty.empty and "pct_good" in empty.columns


def test_daily_summary_query_groups_by_plant_day_and_summarises_good_values_only():
    """The SQL the asset runs in the warehouse agrees with the pandas summary the historian reports use."""
    rows = [
        ("2026-11-01 05:00:00+00", 1.0, "good"),  # local midnight of Nov 1 (CDT)
        ("2026-11-01 06:00:00+00", 100.0, "bad"),
        ("2026-11-02 05:59:59+00", 3.0, "good"),  # 23:59:59 CST, the 25th hour of Nov 1
        ("2026-11-02 06:00:00+00", 7.0, "good"),  # local midnight of Nov 2
    ]
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE window_rows (ts TIMESTAMPTZ, tag VARCHAR, unit VARCHAR, value DOUBLE, quality VARCHAR)"
        )
        con.executemany("INSERT INTO window_rows VALUES (?::TIMESTAMPTZ, 'a', 'bar', ?, ?)", rows)
        summary = con.execute(daily_summary_query("America/Chicago")).fetchdf()
        readings = con.execute("SELECT * FROM window_rows").fetchdf()
    assert list(pd.to_datetime(summary["day"], utc=True)) == [
        pd.Timestamp("2026-11-01 05:00", tz="UTC"),
        pd.Timestamp("2026-11-02 06:00", tz="UTC"),
    ]
    assert list(summary["count"]) == [3, 1] and list(summary["count_good"]) == [2, 1]
    assert list(summary["mean"]) == [2.0, 7.0] and list(summary["max"]) == [3.0, 7.0]
    assert summary["pct_good"].iloc[0] == pytest.approx(200 / 3)
    readings["ts"] = pd.to_datetime(readings["ts"], utc=True)
    in_pandas = daily_summary(readings, "America/Chicago")
    summary["day"] = pd.to_datetime(summary["day"], utc=True)
    pd.testing.assert_frame_equal(summary, in_pandas, check_dtype=False)


def materialize_with_dead_server(site, tmp_path, instance, tags=None):
    defs = build_definitions(site, tmp_path / "w.duckdb")
    dead = OpcUaResource(
        endpoint=f"opc.tcp://127.0.0.1:{free_port()}/gone",
        retry_attempts=2,
        retry_initial_wait_s=0.01,
        step_retry_wait_s=0.1,
    )
    return materialize(
        [*defs.assets, *defs.asset_checks],
        resources={**defs.resources, "opcua": dead},
        instance=instance,
        selection=READINGS_ONLY,
        partition_key=HOUR_KEY,
        raise_on_error=False,
        tags=tags,
    )


def test_server_down_is_retried_by_the_step_when_a_schedule_launched_the_run(site, tmp_path, instance):
    result = materialize_with_dead_server(
        site, tmp_path, instance, tags={"dagster/schedule_name": "scada_readings_hourly_schedule"}
    )
    assert not result.success
    retries = [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    assert "/gone: cannot connect: connection refused (nothing listening on that host and port)" in (
        step_failure_message(result)
    )


def test_a_run_a_person_launched_fails_at_once_saying_what_to_check(site, tmp_path, instance):
    """No schedule, sensor or backfill tag: no step retries, and the error says what to check."""
    result = materialize_with_dead_server(site, tmp_path, instance)
    assert not result.success
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    message = step_failure_message(result)
    assert "/gone: cannot connect: connection refused (nothing listening on that host and port); check the " in message
    assert "host and port in the site config, that the OPC UA server is running, and that no firewall" in message
