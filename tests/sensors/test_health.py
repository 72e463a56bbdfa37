"""source_health: reports down sources, and catches up what the schedules skipped once they recover."""

import json
from datetime import UTC, datetime, timedelta

from dagster import AssetKey, AssetSelection, PartitionKeyRange, build_sensor_context, instance_for_test, materialize

from gl_pipelines.components.site_file import build_definitions, with_modbus_address
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.resources.opcua import OpcUaResource
from tests.conftest import free_port


def scada_and_meters(site):
    """The demo site with only the sources these tests exercise; the others are tested with their sources."""
    return site.model_copy(update={"historian": None, "erp": None, "cems": None, "reporting": None})


def evaluate(defs, instance, opcua: OpcUaResource, cursor: str | None = None, modbus: ModbusResource | None = None):
    """One daemon-style tick: (run requests, skip message, new cursor)."""
    resources = {"opcua": opcua, "modbus": modbus or defs.resources["modbus"]}
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, repository_def=defs.get_repository_def()
    )
    tick = defs.resolve_sensor_def("source_health").evaluate_tick(context)
    return tick.run_requests or [], tick.skip_message, tick.cursor


def test_healthy_source_needs_nothing(site, tmp_path):
    defs = build_definitions(scada_and_meters(site), tmp_path / "w.duckdb")
    with instance_for_test() as instance:
        requests, skipped, cursor = evaluate(defs, instance, OpcUaResource(endpoint=site.opcua.endpoint))
    assert requests == [] and skipped == "all 2 source(s) healthy"
    assert json.loads(cursor) == {"opcua": {"down_since": None}, "modbus": {"down_since": None}}


def test_down_source_is_named_and_remembered(site, tmp_path):
    defs = build_definitions(scada_and_meters(site), tmp_path / "w.duckdb")
    dead = OpcUaResource(endpoint=f"opc.tcp://127.0.0.1:{free_port()}/gone", health_timeout_s=2)
    with instance_for_test() as instance:
        _, skipped, cursor = evaluate(defs, instance, dead)
        since = json.loads(cursor)["opcua"]["down_since"]
        _, _, cursor = evaluate(defs, instance, dead, cursor=cursor)
    assert "opcua down since" in skipped and "/gone" in skipped
    assert json.loads(cursor)["opcua"]["down_since"] == since  # the outage start is kept


def test_recovery_requests_one_catch_up_run_over_the_missing_hours(site, tmp_path):
    defs = build_definitions(scada_and_meters(site), tmp_path / "w.duckdb")
    hourly = defs.resolve_assets_def("scada_readings").partitions_def
    now = datetime.now(UTC)
    outage_start = now - timedelta(hours=3, minutes=30)
    cursor = json.dumps({"opcua": {"down_since": outage_start.isoformat()}, "modbus": {"down_since": None}})
    with instance_for_test() as instance:
        requests, _, cursor = evaluate(defs, instance, OpcUaResource(endpoint=site.opcua.endpoint), cursor)
    (request,) = requests
    first = hourly.get_partition_key_for_timestamp(outage_start.timestamp())
    last = hourly.get_partition_key_for_timestamp((now - timedelta(hours=1)).timestamp())
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last
    assert request.job_name == "scada_hourly_job"
    assert json.loads(cursor)["opcua"] == {"down_since": None}

    with instance_for_test() as instance:
        caught_up = materialize(
            [*defs.assets, *defs.asset_checks],
            resources=defs.resources,
            instance=instance,
            selection=AssetSelection.assets("scada_readings"),
            tags=request.tags,
        )
        assert caught_up.success
        assert instance.get_materialized_partitions(AssetKey("scada_readings")) == set(
            hourly.get_partition_keys_in_range(PartitionKeyRange(first, last))
        )


def test_meters_without_history_are_not_caught_up(site, tmp_path):
    defs = build_definitions(scada_and_meters(site), tmp_path / "w.duckdb")
    outage = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    cursor = json.dumps({"opcua": {"down_since": None}, "modbus": {"down_since": outage}})
    with instance_for_test() as instance:
        requests, skipped, cursor = evaluate(defs, instance, OpcUaResource(endpoint=site.opcua.endpoint), cursor)
    assert requests == [] and skipped == "all 2 source(s) healthy"
    assert json.loads(cursor)["modbus"] == {"down_since": None}


def test_down_meters_are_reported(site, tmp_path):
    defs = build_definitions(scada_and_meters(site), tmp_path / "w.duckdb")
    moved = with_modbus_address(site, "127.0.0.1", free_port())
    dead = ModbusResource.from_source(moved.modbus, retry_attempts=1, health_timeout_s=3)
    with instance_for_test() as instance:
        _, skipped, cursor = evaluate(defs, instance, OpcUaResource(endpoint=site.opcua.endpoint), modbus=dead)
    assert skipped.startswith("modbus down since")
    assert json.loads(cursor)["modbus"]["down_since"] is not None
