"""The code location loads offline and has the shape the rest of the project relies on."""

from dagster import AssetKey

from gl_pipelines.definitions import defs


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {"scada_readings", "scada_daily_summary"}
    assert graph.get(AssetKey("scada_daily_summary")).parent_keys == {AssetKey("scada_readings")}
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        ("scada_readings", "scada_readings_expectations"),
        ("scada_readings", "scada_readings_completeness"),
    }
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).blocking


def test_partitions_are_hour_beginning_utc():
    readings = defs.resolve_assets_def("scada_readings")
    window = readings.partitions_def.time_window_for_partition_key("2026-11-01-03:00")
    assert window.start.isoformat() == "2026-11-01T03:00:00+00:00"
    assert window.end.isoformat() == "2026-11-01T04:00:00+00:00"
    assert readings.backfill_policy.max_partitions_per_run is None  # single run


def test_resources_configured_without_secrets_in_plain_config():
    opcua = defs.resources["opcua"]
    assert opcua.password is None and opcua.endpoint.startswith("opc.tcp://")
