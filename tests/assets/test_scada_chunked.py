"""Chunked SCADA extraction against the real demo OPC UA server: the rows stored, the audit's verdict and the
atomicity of the partition write do not depend on `chunk_values`."""

import asyncio
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from asyncua import ua
from dagster import instance_for_test, materialize

from gl_demo_plant.opcua_server import ThreadedDemoOpcUaServer
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources.opcua import OpcUaResource, TagRef, chunk_plan
from gl_pipelines.resources.warehouse import MEMORY_LIMIT_ENV, connect_warehouse
from tests.assets.test_scada import HOUR_KEY, READINGS_ONLY, step_failure_message, table, tag_names
from tests.conftest import free_port

PER_TAG = 360  # one hour at the demo plant's 10 s
ONE_READ = 1_000_000


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def materialize_chunked(site, warehouse, instance, chunk_values: int):
    """scada_readings for HOUR_KEY with the OPC UA resource reading `chunk_values` values at a time."""
    defs = build_definitions(site, warehouse)
    opcua = OpcUaResource(
        endpoint=site.opcua.endpoint,
        source_name=site.opcua.source_name,
        chunk_values=chunk_values,
        retry_attempts=2,
        retry_initial_wait_s=0.01,
    )
    return materialize(
        [*defs.assets, *defs.asset_checks],
        resources={**defs.resources, "opcua": opcua},
        instance=instance,
        selection=READINGS_ONLY,
        partition_key=HOUR_KEY,
        raise_on_error=False,
    )


def metadata_of(result) -> dict:
    return {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}


def tables_in(warehouse, schema: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        ]


def test_any_chunking_stores_the_rows_digest_and_bounds_of_one_read(site, tmp_path, instance, plant):
    """Tag batches (720 values: 2 tags a chunk) and time slices (100 values: 4 slices per tag) store exactly the
    rows of one read, with the same end-bound samples dropped (one per tag, at the hour's end, not one per slice)
    and, for tag batches, the same payload digest."""
    plant.faults.end_bound.update(tag_names(site))
    stored, metadata = {}, {}
    for chunk_values in (ONE_READ, 720, 100):
        warehouse = tmp_path / f"{chunk_values}.duckdb"
        result = materialize_chunked(site, warehouse, instance, chunk_values)
        assert result.success
        assert all(check.passed for check in result.get_asset_check_evaluations())
        stored[chunk_values], metadata[chunk_values] = table(warehouse, "scada_readings"), metadata_of(result)
        assert tables_in(warehouse, "staging") == []
    assert len(stored[ONE_READ]) == 6 * PER_TAG
    for chunk_values, chunks in ((720, 3), (100, 24)):
        pd.testing.assert_frame_equal(stored[chunk_values], stored[ONE_READ])
        assert f"in {chunks} chunks" in metadata[chunk_values]["query"]
        for key in ("dropped_outside_window", "dagster/row_count", "rows_good", "rows_uncertain"):
            assert metadata[chunk_values][key] == metadata[ONE_READ][key], key
    # Tag batches read the very same payload; time slices also read each slice's end-bound sample.
    assert metadata[720]["payload_sha256"] == metadata[ONE_READ]["payload_sha256"]
    assert metadata[100]["payload_sha256"] != metadata[ONE_READ]["payload_sha256"]
    assert "in 1 chunks" in metadata[ONE_READ]["query"]
    assert metadata[100]["dropped_outside_window"] == dict.fromkeys(sorted(tag_names(site)), 1)
    assert metadata[100]["dagster/row_count"] == 6 * PER_TAG


def test_a_chunked_rerun_replaces_the_partition(site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    for _ in range(2):
        assert materialize_chunked(site, warehouse, instance, 720).success
    stored = table(warehouse, "scada_readings")
    assert len(stored) == 6 * PER_TAG
    assert not stored.duplicated(["tag", "ts"]).any()


def test_a_check_failing_in_the_last_chunk_quarantines_every_chunk_and_keeps_the_stored_hour(
    site, tmp_path, instance, plant
):
    warehouse = tmp_path / "w.duckdb"
    assert materialize_chunked(site, warehouse, instance, 720).success
    before = table(warehouse, "scada_readings")

    last = site.opcua.tags[-1]  # in the third and last chunk of two tags
    plant.faults.out_of_range[last.name] = last.max + 1000
    failed = materialize_chunked(site, warehouse, instance, 720)
    assert not failed.success
    checks = {check.check_name: check for check in failed.get_asset_check_evaluations()}
    assert not checks["scada_readings_expectations"].passed
    assert last.name in checks["scada_readings_expectations"].metadata["results"].value

    pd.testing.assert_frame_equal(table(warehouse, "scada_readings"), before)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select count(*), count(distinct tag) from quarantine.scada_readings where _wap_run_id = ?",
            [failed.run_id],
        ).fetchall()[0]
        (entry_rows,) = con.execute("select row_count from quarantine.entries").fetchall()[0]
    assert quarantined == (6 * PER_TAG, 6)  # the first two chunks' good rows too: the hour is one verdict
    assert entry_rows == 6 * PER_TAG
    assert tables_in(warehouse, "staging") == []


@pytest.fixture
def stoppable_plant():
    """A demo server of its own that shuts down when HistoryRead number `stop_at` (set by the test) arrives,
    as a server restarted in the middle of an extraction does."""
    running = ThreadedDemoOpcUaServer(port=free_port(), n_synthetic=0)
    demo = running.server
    demo.stop_at = None
    serve = demo._read_history

    async def read_or_stop(params):
        if demo.stop_at is not None and demo.stats.history_reads >= demo.stop_at:
            asyncio.get_running_loop().create_task(demo.stop())
            raise ua.uaerrors.BadServerHalted()
        return await serve(params)

    demo._read_history = read_or_stop  # before start(): the server registers it as its history handler
    with running:
        yield demo


def test_a_server_stopping_mid_extraction_leaves_nothing_half_written(site, tmp_path, instance, stoppable_plant):
    site = site.model_copy(update={"opcua": site.opcua.model_copy(update={"endpoint": stoppable_plant.endpoint})})
    warehouse = tmp_path / "w.duckdb"
    assert materialize_chunked(site, warehouse, instance, 720).success
    before = table(warehouse, "scada_readings")

    stoppable_plant.stop_at = stoppable_plant.stats.history_reads + 2  # two chunks read and staged, then gone
    failed = materialize_chunked(site, warehouse, instance, 720)
    assert not failed.success
    assert stoppable_plant.stats.history_reads == stoppable_plant.stop_at
    assert "cannot connect: connection refused" in step_failure_message(failed)
    pd.testing.assert_frame_equal(table(warehouse, "scada_readings"), before)
    assert tables_in(warehouse, "staging") == []
    assert tables_in(warehouse, "quarantine") == []  # nothing audited, so nothing quarantined either


TAGS = [TagRef(f"t{i}", f"ns=2;s=t{i}", "bar") for i in range(5)]
START = datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_chunk_plan_batches_tags_while_a_tags_window_fits():
    plan = chunk_plan(TAGS, START, START + timedelta(hours=1), 10, 720)
    assert [[tag.name for tag in tags] for tags, _, _ in plan] == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert {(start, end) for _, start, end in plan} == {(START, START + timedelta(hours=1))}


def test_chunk_plan_slices_a_long_window_in_time_one_tag_at_a_time():
    end = START + timedelta(days=31)  # a month's single-run backfill at 1 s: 2.7 M values per tag
    plan = chunk_plan(TAGS[:2], START, end, 1, 1_000_000)
    assert [tags[0].name for tags, _, _ in plan] == ["t0"] * 3 + ["t1"] * 3  # a tag's slices in a row
    slices = [(start, stop) for _, start, stop in plan[:3]]
    assert slices[0][0] == START and slices[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))  # contiguous, no gap or overlap
    assert all(stop - start <= timedelta(seconds=1_000_000) for start, stop in slices)


def test_a_bad_duckdb_memory_limit_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=r"\$GL_DUCKDB_MEMORY_LIMIT = 'lots' is not a DuckDB memory size"):
        connect_warehouse(str(tmp_path / "w.duckdb"))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    connection = connect_warehouse(str(tmp_path / "w.duckdb"))
    try:
        (setting,) = connection.execute("select current_setting('memory_limit')").fetchone()
    finally:
        connection.close()
    assert setting == "286.1 MiB"  # DuckDB reports 300 MB in MiB
