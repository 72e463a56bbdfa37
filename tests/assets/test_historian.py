"""historian_recorded materialized in process against the demo PI Web API and a real DuckDB file."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, instance_for_test, materialize, serialize_value

from gl_demo_plant.pi_web_api import Mark
from gl_pipelines.components.site_file import build_definitions, site_from_environment
from tests.expected import expected_readings
from tests.fixtures_historian import PI_CLIENT_ID, PI_CLIENT_SECRET

DAY_KEY = "2026-11-01"  # America/Chicago: the fall-back day, 25 hours
DAY_UTC = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))
HISTORIAN = AssetSelection.assets("historian_recorded")


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def run(site, warehouse, instance, partition_key=DAY_KEY, selection=HISTORIAN):
    defs = build_definitions(site, warehouse)
    return materialize(
        [*defs.assets, *defs.asset_checks],
        resources=defs.resources,
        instance=instance,
        selection=selection,
        partition_key=partition_key,
        raise_on_error=False,
    )


def stored(warehouse, schema: str = "plant") -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(f"select * from {schema}.historian_recorded order by tag, ts").df()


def tag_names(site) -> list[str]:
    return [tag.name for tag in site.historian.tags]


def test_plant_day_lands_model_values_with_provenance_and_reruns_replace(historian_site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    result = run(historian_site, warehouse, instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"historian_recorded_expectations", "historian_recorded_completeness"}
    assert all(e.passed for e in evaluations)

    rows = stored(warehouse)
    expected = expected_readings(sorted(tag_names(historian_site)), *DAY_UTC)
    assert len(rows) == len(expected) == 5 * 25 * 360
    assert (pd.to_datetime(rows["ts"], utc=True) == expected["ts"]).all()
    np.testing.assert_array_equal(rows["value"].to_numpy(), expected["value"].to_numpy())
    assert set(rows["source"]) == {"demo-pi"}

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["source_endpoint"].value == historian_site.historian.base_url
    assert metadata["window_start"].value == "2026-11-01T05:00:00+00:00"
    assert metadata["window_end"].value == "2026-11-02T06:00:00+00:00"
    assert metadata["dagster/row_count"].value == len(expected)
    assert len(metadata["payload_sha256"].value) == 64
    assert "streamsets/recorded 5 points" in metadata["query"].value

    again = run(historian_site, warehouse, instance)
    assert again.success
    assert len(stored(warehouse)) == len(expected)  # replaced, not appended
    assert (
        again.get_asset_materialization_events()[0].materialization.metadata["payload_sha256"]
        == metadata["payload_sha256"]
    )


def test_values_outside_the_day_are_not_stored_and_reruns_add_no_copies(historian_site, tmp_path, instance, pi):
    warehouse = tmp_path / "w.duckdb"
    pi.faults.outside_window["Boiler1.SteamFlow"] = 30
    for _ in range(2):
        result = run(historian_site, warehouse, instance)
        assert result.success
    rows = stored(warehouse)
    expected = expected_readings(sorted(tag_names(historian_site)), *DAY_UTC)
    assert len(rows) == len(expected) == 5 * 25 * 360
    assert (pd.to_datetime(rows["ts"], utc=True) == expected["ts"]).all()
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    # the 25-hour day is read as two windows (window_hours: 24): each ends with PI's inclusive end
    # value, and SteamFlow's two strays come in each window's response
    assert metadata["dropped_outside_window"].value == dict.fromkeys(sorted(tag_names(historian_site)), 2) | {
        "Boiler1.SteamFlow": 6
    }


def test_per_item_error_fails_the_run_and_keeps_what_was_stored(historian_site, tmp_path, instance, pi):
    warehouse = tmp_path / "w.duckdb"
    assert run(historian_site, warehouse, instance).success
    before = stored(warehouse)
    pi.faults.item_errors["Boiler1.FlueGasO2"] = "[-11091] Point not found in the archive"
    result = run(historian_site, warehouse, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Boiler1.FlueGasO2" in str(failure.event_specific_data.error)
    pd.testing.assert_frame_equal(stored(warehouse), before)


def test_system_states_become_bad_rows_and_block(historian_site, tmp_path, instance, pi):
    outage = (DAY_UTC[0], datetime(2026, 11, 1, 20, tzinfo=UTC))
    pi.faults.marks = [Mark(name, *outage, "I/O Timeout") for name in tag_names(historian_site)]
    warehouse = tmp_path / "w.duckdb"
    result = run(historian_site, warehouse, instance)
    completeness = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "historian_recorded_completeness"
    )
    assert not completeness.passed
    rows = stored(warehouse, "quarantine")  # failed its blocking check: kept apart, never published
    assert set(rows["_wap_run_id"]) == {result.run_id}
    in_outage = pd.to_datetime(rows["ts"], utc=True) < outage[1]
    assert rows.loc[in_outage, "value"].isna().all()
    assert (rows.loc[in_outage, "quality"] == "bad").all() and (rows.loc[in_outage, "status"] == "I/O Timeout").all()


def test_oauth2_secret_absent_from_event_log_and_logs(historian_site, tmp_path, instance, pi, monkeypatch, caplog):
    pi.oauth_clients = {PI_CLIENT_ID: PI_CLIENT_SECRET}
    pi.faults.statuses = [503]  # a retry writes a warning line: it must not carry the secret either
    monkeypatch.setenv("GL_HISTORIAN_CLIENT_SECRET", PI_CLIENT_SECRET)
    historian = historian_site.historian.model_copy(
        update={"auth_mode": "oauth2", "token_url": pi.url + "/token", "client_id": PI_CLIENT_ID}
    )
    caplog.set_level(logging.DEBUG)
    result = run(historian_site.model_copy(update={"historian": historian}), tmp_path / "w.duckdb", instance)
    assert result.success
    assert pi.stats.token_requests == 1

    records = instance.all_logs(result.run_id)
    assert len(records) > 10
    event_log = "\n".join(serialize_value(record) for record in records)
    assert "retrying" in event_log or "retrying" in caplog.text
    run_record = serialize_value(instance.get_run_by_id(result.run_id))
    for text in (event_log, run_record, caplog.text):
        assert PI_CLIENT_SECRET not in text


def test_historian_url_from_environment(monkeypatch):
    monkeypatch.setenv("GL_HISTORIAN_URL", "http://10.1.2.3:8443/piwebapi")
    assert site_from_environment().historian.base_url == "http://10.1.2.3:8443/piwebapi"


@pytest.mark.parametrize(
    ("retry_after", "max_wait_s", "expected_wait_s"),
    [("600", 1800.0, 600.0), ("60", 1800.0, 120.0), ("3600", 1800.0, None)],
)
def test_step_retry_waits_what_the_server_asked(historian_site, tmp_path, pi, retry_after, max_wait_s, expected_wait_s):
    """PI answers 503 with Retry-After: the client stops at once (never retries early) and the step retry waits
    the Retry-After (at least its own 120 s); past step_retry_max_wait_s the step fails, saying both waits."""
    from dagster import Failure, RetryRequested, build_asset_context

    pi.faults.statuses = [503] * 10
    pi.faults.retry_after = retry_after
    defs = build_definitions(historian_site, tmp_path / "w.duckdb")
    # As built, before Definitions binds its resources: the test gives the step its own.
    asset_def = next(asset for asset in defs.assets if asset.key.to_user_string() == "historian_recorded")
    historian = defs.resources["historian"].model_copy(update={"step_retry_max_wait_s": max_wait_s})
    context = build_asset_context(
        partition_key=DAY_KEY,
        resources={"historian": historian, "warehouse_staging": defs.resources["warehouse_staging"]},
    )
    if expected_wait_s is None:
        with pytest.raises(Failure) as raised:
            list(asset_def(context))
        assert raised.value.allow_retries is False
        assert raised.value.description.startswith(
            "demo-pi: GET /piwebapi/points -> HTTP 503: server busy or failing (Retry-After 3600 s); body: "
        )
        assert raised.value.description.endswith(
            "; the server asked to retry after 3600 s, "
            "longer than this step waits (step_retry_max_wait_s = 1800 s): re-run the partition once the server "
            "accepts requests"
        )
    else:
        with pytest.raises(RetryRequested) as raised:
            list(asset_def(context))
        assert raised.value.seconds_to_wait == expected_wait_s
        assert raised.value.max_retries == 2
