"""OpcUaResource against the real demo server over loopback."""

import socket
import tomllib
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from gl_pipelines.resources import opcua as opcua_module
from gl_pipelines.resources.opcua import (
    OpcUaError,
    OpcUaResource,
    OpcUaTransientError,
    TagRef,
    quality_of,
    redact_url,
)
from tests.conftest import DEMO_HOUR, free_port
from tests.expected import expected_readings

HOUR_END = DEMO_HOUR + timedelta(hours=1)


def refs(server, names=None):
    return [TagRef(t.name, t.node_id, t.unit) for t in server.tags.values() if names is None or t.name in names]


def fast_resource(endpoint: str, **overrides) -> OpcUaResource:
    settings = {"retry_initial_wait_s": 0.05, "retry_max_wait_s": 0.2, "connect_timeout_s": 3.0} | overrides
    return OpcUaResource(endpoint=endpoint, source_name="test-opcua", **settings)


def assert_matches_model(frame: pd.DataFrame, names, start, end):
    expected = expected_readings(names, start, end)
    got = frame.sort_values(["tag", "ts"], ignore_index=True)
    assert len(got) == len(expected)
    pd.testing.assert_series_equal(got["ts"].astype("datetime64[ns, UTC]"), expected["ts"], check_names=False)
    assert (got["tag"] == expected["tag"]).all()
    np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy())
    np.testing.assert_array_equal(got["status_code"].to_numpy(), expected["status_code"].to_numpy())


def test_reads_exact_values_for_every_tag_in_batches(plant):
    tags = refs(plant)
    before = len(plant.stats.nodes_per_read)
    history = fast_resource(plant.endpoint).read_raw_history(tags, DEMO_HOUR, HOUR_END)
    assert_matches_model(history.frame, [t.name for t in tags], DEMO_HOUR, HOUR_END)
    batches = plant.stats.nodes_per_read[before:]
    assert sorted(batches) == sorted([100, 100, 56])  # 256 tags at the server's limit of 100 nodes
    assert history.requests == 3
    assert set(history.frame["source"]) == {"test-opcua"}
    assert set(history.frame["unit"]) == {"t/h", "bar", "degC", "m**3/h", "percent"}


def test_respects_a_server_limit_below_our_own(plant):
    plant.set_history_read_limit(40)
    before = len(plant.stats.nodes_per_read)
    fast_resource(plant.endpoint).read_raw_history(refs(plant)[:100], DEMO_HOUR, HOUR_END)
    assert plant.stats.nodes_per_read[before:] == [40, 40, 20]
    assert plant.stats.rejected_too_many_operations == 0


def test_follows_continuation_points_without_losing_or_repeating_boundaries(plant):
    plant.max_values_per_node = 100  # 360 samples per tag per hour -> 4 pages
    names = ["Boiler1.SteamFlow", "Boiler1.FlueGasO2"]
    history = fast_resource(plant.endpoint).read_raw_history(refs(plant, names), DEMO_HOUR, HOUR_END)
    assert history.requests == 4
    assert_matches_model(history.frame, names, DEMO_HOUR, HOUR_END)
    assert not history.frame.duplicated(["tag", "ts"]).any()


def test_repeated_continuation_point_stops_and_releases(plant):
    plant.max_values_per_node = 100
    plant.faults.repeat_continuation_point = True
    released = plant.stats.released_continuation_points
    with pytest.raises(OpcUaError, match="Boiler1.SteamFlow .*repeated the same continuation point"):
        fast_resource(plant.endpoint).read_raw_history(refs(plant, ["Boiler1.SteamFlow"]), DEMO_HOUR, HOUR_END)
    assert plant.stats.released_continuation_points == released + 1


def test_quality_mapping_keeps_bad_and_uncertain_samples(plant):
    plant.faults.bad_status_every["Boiler1.StackTemp"] = 4
    frame = fast_resource(plant.endpoint).read_raw_history(refs(plant), DEMO_HOUR, HOUR_END).frame
    stack = frame[frame["tag"] == "Boiler1.StackTemp"]
    bad = stack[stack["quality"] == "bad"]
    assert len(stack) == 360 and len(bad) == 90
    assert (bad["status"] == "BadSensorFailure").all() and bad["value"].isna().all()
    assert (bad["ts"].astype("int64") // 10**9 // 10 % 4 == 0).all()
    uncertain = frame[frame["quality"] == "uncertain"]
    assert len(uncertain) > 0 and (uncertain["status"] == "UncertainLastUsableValue").all()
    assert uncertain["value"].notna().all()


def test_quality_of_uses_severity_bits():
    codes = np.array([0x00000000, 0x40900000, 0x808B0000, 0x00A20000, 0xC0000000], dtype=np.uint32)
    assert list(quality_of(codes)) == ["good", "uncertain", "bad", "good", "bad"]


def test_non_numeric_value_becomes_a_flagged_bad_row(plant):
    plant.faults.non_numeric_every["Boiler1.DrumPressure"] = 6
    frame = (
        fast_resource(plant.endpoint).read_raw_history(refs(plant, ["Boiler1.DrumPressure"]), DEMO_HOUR, HOUR_END).frame
    )
    flagged = frame[frame["status"].str.startswith("non-numeric")]
    assert len(flagged) == 60
    assert (flagged["quality"] == "bad").all() and flagged["value"].isna().all()
    assert flagged["status"].iloc[0] == "non-numeric value 'ERR'"


def test_sample_at_the_end_bound_is_dropped_and_counted_per_tag(plant):
    """node-opcua and PI include a value stamped exactly at EndTime; it belongs to the next hour."""
    names = ["Boiler1.SteamFlow", "Boiler1.FlueGasO2", "Boiler1.DrumPressure"]
    plant.faults.end_bound.update(names[:2])
    plant.max_values_per_node = 100  # the bound arrives on the last of 4 pages
    history = fast_resource(plant.endpoint).read_raw_history(refs(plant, names), DEMO_HOUR, HOUR_END)
    assert_matches_model(history.frame, names, DEMO_HOUR, HOUR_END)
    assert len(history.frame) == 3 * 360 and history.frame["ts"].max() == pd.Timestamp("2026-11-01T03:59:50Z")
    assert history.dropped_outside_window == {"Boiler1.FlueGasO2": 1, "Boiler1.SteamFlow": 1}


def test_server_ignoring_the_window_is_an_error_counting_per_tag(plant):
    plant.faults.outside_window.update({"Boiler1.FeedwaterTemp", "Boiler1.StackTemp"})
    plant.faults.end_bound.add("Boiler1.StackTemp")  # near the window: dropped, not counted as ignoring it
    with pytest.raises(OpcUaError) as caught:
        fast_resource(plant.endpoint).read_raw_history(refs(plant)[:6], DEMO_HOUR, HOUR_END)
    message = str(caught.value)
    assert message.startswith(f"{plant.endpoint}: server ignored the requested window ")
    assert "2 value(s) more than 1:00:00 outside it (earliest 2026-11-02T04:00:00+00:00)" in message
    assert message.endswith("per tag Boiler1.FeedwaterTemp: 1, Boiler1.StackTemp: 1")


def test_unknown_node_id_is_a_clear_error_and_not_retried(plant):
    tags = [*refs(plant, ["Boiler1.SteamFlow"]), TagRef("Boiler9.Ghost", "ns=2;s=Boiler9.Ghost", "bar")]
    before = plant.stats.history_reads
    with pytest.raises(OpcUaError, match=r"tag Boiler9.Ghost \(ns=2;s=Boiler9.Ghost\).*BadNodeIdUnknown"):
        fast_resource(plant.endpoint).read_raw_history(tags, DEMO_HOUR, HOUR_END)
    assert plant.stats.history_reads == before + 1


def test_retries_after_the_server_drops_the_connection_mid_read(plant):
    plant.faults.drop_after_reads = 1
    names = ["Boiler1.SteamFlow", "Boiler1.FuelGasFlow"]
    before = plant.stats.history_reads
    history = fast_resource(plant.endpoint).read_raw_history(refs(plant, names), DEMO_HOUR, HOUR_END)
    assert plant.stats.history_reads >= before + 2  # the dropped read, then the retried one
    assert_matches_model(history.frame, names, DEMO_HOUR, HOUR_END)


def test_server_down_fails_after_retries_naming_the_endpoint():
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/nothing-here"
    resource = fast_resource(endpoint, retry_attempts=3)
    with pytest.raises(OpcUaTransientError, match=f"{endpoint}: cannot connect"):
        resource.read_raw_history([TagRef("a", "ns=2;s=a", "bar")], DEMO_HOUR, HOUR_END)
    health = resource.health_check()
    assert not health.ok and health.endpoint == endpoint


def test_hung_server_says_it_timed_out_after_n_seconds():
    """A server that accepts the TCP connection and never answers (issue 18: it said "cannot connect: ")."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        endpoint = f"opc.tcp://127.0.0.1:{hung.getsockname()[1]}/hung"
        resource = fast_resource(endpoint, connect_timeout_s=0.5)
        with pytest.raises(OpcUaTransientError) as caught:
            resource.read_raw_history([TagRef("a", "ns=2;s=a", "bar")], DEMO_HOUR, HOUR_END, attempts=1)
    assert str(caught.value) == f"{endpoint}: cannot connect: no answer, timed out after 0.5 s"


def test_health_check_reports_running_server(plant):
    health = fast_resource(plant.endpoint).health_check()
    assert health.ok and health.detail == "server state Running"


def test_naive_datetimes_are_refused(plant):
    with pytest.raises(ValueError, match="timezone-aware"):
        fast_resource(plant.endpoint).read_raw_history(refs(plant)[:1], datetime(2026, 11, 1), datetime(2026, 11, 2))  # noqa: DTZ001 (the point of the test)


def test_credentials_never_appear_in_the_endpoint_we_report():
    assert redact_url("opc.tcp://operator:s3cret@plant.example:4840/ua") == "opc.tcp://plant.example:4840/ua"
    resource = OpcUaResource(endpoint="opc.tcp://operator:s3cret@127.0.0.1:1/ua", password="s3cret")
    assert "s3cret" not in resource.safe_endpoint


def test_resource_is_read_only():
    own = [name for name in vars(OpcUaResource) if not name.startswith("__")]
    assert not [name for name in own if "write" in name or "update" in name or "call" in name]
    source = Path(opcua_module.__file__).read_text()
    for service in ("write_value", "write_attribute", "history_update", "call_method", "add_nodes", "delete_nodes"):
        assert service not in source


def test_empty_window_gives_empty_canonical_frame(plant):
    start = DEMO_HOUR.replace(tzinfo=UTC)
    frame = fast_resource(plant.endpoint).read_raw_history(refs(plant)[:2], start, start).frame
    assert frame.empty and list(frame.columns)[:3] == ["ts", "tag", "value"]


def test_asyncua_without_the_private_hook_is_named_not_an_attribute_error():
    """asyncua 1.x's client has no `uaclient.session` (the shape below); the read fails naming the hook."""
    resource = fast_resource("opc.tcp://127.0.0.1:4840/plant")
    with pytest.raises(OpcUaError) as caught:
        resource._raw_send(SimpleNamespace(uaclient=SimpleNamespace(protocol=None)))
    assert str(caught.value) == (
        f"opc.tcp://127.0.0.1:4840/plant: asyncua {version('asyncua')} has no client.uaclient.session._send_request, "
        "which the fast HistoryRead decoder needs; install asyncua>=2.1,<3 (the range this project is tested on)"
    )
    assert not isinstance(caught.value, OpcUaTransientError)  # not retried


def test_asyncua_pin_matches_the_tested_range():
    pinned = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"asyncua{opcua_module.ASYNCUA_TESTED}" in pinned
    assert Version(version("asyncua")) in SpecifierSet(opcua_module.ASYNCUA_TESTED)
