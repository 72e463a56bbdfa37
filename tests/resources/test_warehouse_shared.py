"""The shared warehouse (Iceberg, catalog in PostgreSQL): the same promises as the DuckDB file, with writers
in several processes at once."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from dagster import AssetKey, Output, asset, instance_for_test, materialize
from pyiceberg.exceptions import CommitFailedException

from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources import iceberg_warehouse
from gl_pipelines.resources.iceberg_warehouse import (
    METADATA_VERSIONS_KEPT,
    IcebergConnection,
    SharedWarehouseIOManager,
    SnapshotRetention,
    append,
    expire_snapshots,
    in_files_of,
    load_table,
    new_rows,
    open_catalog,
    typed_for_iceberg,
)
from gl_pipelines.resources.warehouse import (
    ENTRIES,
    MEMORY_LIMIT_ENV,
    WAP_KEY,
    StagedRows,
    WarehouseStaging,
    stage_chunks,
)
from gl_pipelines.resources.warehouse_settings import WarehouseSettings
from gl_pipelines.sensors.warehouse_maintenance import warehouse_maintenance_definitions
from tests.assets.test_wap import assert_wap_cycle, read
from tests.resources.shared_warehouse import days, scratch_catalog, write_days
from tests.runs import run


@pytest.fixture
def shared(tmp_path):
    with scratch_catalog(tmp_path / "lake") as settings:
        yield settings


def test_scada_write_audit_publish_on_the_shared_warehouse(site, shared, plant):
    hour = "2026-11-01-03:00"
    defs = build_definitions(site, shared)
    with instance_for_test() as instance:

        def materialize():
            return run(defs, instance, ["scada_readings"], partition_key=hour)

        def bad():
            plant.faults.out_of_range["Boiler1.SteamFlow"] = 999.0
            return materialize()

        def fix():
            plant.faults.out_of_range.clear()
            return materialize()

        before, quarantined = assert_wap_cycle(
            shared, "scada_readings", "tag, ts", materialize, bad, fix, ["scada_readings_expectations"], hour
        )
    assert len(before) == len(quarantined) == 6 * 360
    assert read(shared, "select count(*) as n from plant.scada_readings")["n"].item() == 6 * 360


def test_concurrent_writers_store_every_partition_exactly_once(shared):
    keys = days.get_partition_keys()[:8]
    # Three processes, so that every day is written by two or three of them at overlapping times.
    work = [keys[0:6], [*keys[3:8], keys[0]], [*keys[6:8], *keys[0:3]]]
    # Spawned, not forked: a fork of this test process (its threads, e.g. the OPC UA fixtures') could deadlock.
    with ProcessPoolExecutor(len(work), mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(write_days, [shared] * len(work), work)) == [6, 6, 5]
    stored = read(shared, "select ts, value from plant.metered order by ts")
    assert len(stored) == 8 * 24
    assert stored["ts"].is_unique
    assert list(stored["value"]) == [float(day) for day in range(1, 9) for _ in range(24)]


def test_failed_write_names_the_table_and_leaves_the_partition(shared):
    assert write_days(shared, ["2026-11-01"]) == 1
    before = read(shared, "select * from plant.metered order by ts")
    resources = {"warehouse": shared.resources()["warehouse"]}

    @asset(name="metered", partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
    def wrong_type() -> pd.DataFrame:
        return pd.DataFrame({"ts": pd.date_range("2026-11-01", periods=2, freq="h", tz="UTC"), "value": ["a", "b"]})

    refused = r"plant\.metered: the new rows do not fit the stored table, nothing written(.|\n)*value: optional string"
    with instance_for_test() as instance, pytest.raises(ValueError, match=refused):
        materialize([wrong_type], partition_key="2026-11-01", resources=resources, instance=instance)
    pd.testing.assert_frame_equal(read(shared, "select * from plant.metered order by ts"), before)


def test_settings_refuse_an_incomplete_or_secret_carrying_catalog(tmp_path):
    with pytest.raises(ValueError, match="catalog_dsn and data_path"):
        WarehouseSettings(kind="iceberg", path=str(tmp_path / "w.duckdb"))
    with pytest.raises(ValueError, match="PGPASSWORD"):
        WarehouseSettings(
            kind="iceberg",
            path=str(tmp_path / "w.duckdb"),
            catalog_dsn="postgresql://gl:hunter2@db/lake",
            data_path=str(tmp_path),
        )
    environ = {
        "GL_WAREHOUSE_KIND": "iceberg",
        "GL_ICEBERG_CATALOG": "postgresql://gl@db/lake",
        "GL_ICEBERG_DATA": "s3://lake/gl",
    }
    settings = WarehouseSettings.from_environment(tmp_path / "w.duckdb", environ)
    assert (settings.kind, settings.catalog_dsn, settings.data_path) == (
        "iceberg",
        "postgresql://gl@db/lake",
        "s3://lake/gl",
    )


def test_an_empty_window_replaces_the_stored_rows_with_none(shared):
    write_days(shared, ["2026-11-01", "2026-11-02"])

    @asset(name="metered", partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
    def nothing_read() -> pd.DataFrame:
        return pd.DataFrame()

    with instance_for_test() as instance:
        resources = {"warehouse": shared.resources()["warehouse"]}
        assert materialize([nothing_read], partition_key="2026-11-01", resources=resources, instance=instance).success
    assert list(read(shared, "select distinct value from plant.metered")["value"]) == [2.0]


def test_reports_read_the_shared_warehouse_as_they_read_the_file(shared):
    """The reader's window query and an IO-manager input see exactly the stored window."""
    write_days(shared, ["2026-11-01", "2026-11-02", "2026-11-03"])
    reader = shared.resources()["warehouse_reader"]
    window = days.time_window_for_partition_key("2026-11-02")
    sums = reader.query_window(
        "metered",
        "ts",
        window.start,
        window.end,
        ["ts", "value"],
        "SELECT count(*) AS n, sum(value) AS s FROM window_rows",
    )
    assert (sums["n"].item(), sums["s"].item()) == (24, 48.0)
    assert reader.read_window("absent", "ts", window.start, window.end, ["ts"]) is None

    @asset(partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
    def metered() -> pd.DataFrame: ...

    @asset(partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "day"})
    def daily(metered: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"day": [metered["ts"].min()], "rows": [len(metered)], "total": [metered["value"].sum()]})

    with instance_for_test() as instance:
        resources = {"warehouse": shared.resources()["warehouse"]}
        result = materialize(
            [metered.to_source_asset(), daily], partition_key="2026-11-03", resources=resources, instance=instance
        )
    assert result.success
    stored = read(shared, "select rows, total from plant.daily")
    assert (stored["rows"].item(), stored["total"].item()) == (24, 72.0)


def test_assets_show_the_shared_warehouse_kinds(site, shared, tmp_path):
    on_file = WarehouseSettings(path=str(tmp_path / "w.duckdb"))
    kinds = {
        settings.kind: {
            node.key: node.kinds
            for node in settings.with_storage_kinds(build_definitions(site, settings)).resolve_asset_graph().asset_nodes
        }
        for settings in (on_file, shared)
    }
    stored = [key for key, found in kinds["duckdb"].items() if "duckdb" in found]
    assert AssetKey("scada_readings") in stored
    for key in stored:
        assert kinds["iceberg"][key] == kinds["duckdb"][key] - {"duckdb"} | {"iceberg", "parquet"}


def audited(verdict: list[str], value: float):
    """`metered` as a source asset writes it: one day of rows and its audit's verdict (failed check names)."""

    @asset(name="metered", partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
    def metered(context) -> Output[pd.DataFrame]:
        start = context.partition_time_window.start
        frame = pd.DataFrame({"ts": pd.date_range(start, periods=24, freq="h"), "value": [value] * 24})
        return Output(frame, metadata={WAP_KEY: {"failed_checks": verdict, "staged_table": None}})

    return metered


def open_entries_point_to_their_rows(shared) -> list[tuple[str, int]]:
    """(run, rows) of every open quarantine entry, asserting the quarantine holds exactly that many rows of it."""
    found = read(
        shared,
        "select e.run_id, e.row_count, (select count(*) from quarantine.metered q where q._wap_run_id = e.run_id) "
        "as stored from quarantine.entries e where superseded_by_run is null order by quarantined_at",
    )
    assert list(found["row_count"]) == list(found["stored"])
    return list(zip(found["run_id"], found["row_count"], strict=True))


def test_a_crash_between_the_quarantine_commits_is_settled_by_the_next_run(shared, monkeypatch):
    """Rows then entry (Iceberg commits one table at a time): a crash after the rows leaves rows no entry points
    to, never an entry without its rows; the next run of the day deletes them, failing or passing."""
    day = "2026-11-01"
    resources = {"warehouse": shared.resources()["warehouse"]}
    crash = RuntimeError("killed between the two commits")

    def crashing_append(catalog, identifier, rows):
        if identifier == ENTRIES:
            raise crash
        return append(catalog, identifier, rows)

    with instance_for_test() as instance:

        def write(verdict, value):
            return materialize(
                [audited(verdict, value)],
                partition_key=day,
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )

        assert write([], 1.0).success
        with monkeypatch.context() as patched:
            patched.setattr(iceberg_warehouse, "append", crashing_append)
            crashed = write(["range"], 2.0)
        assert not crashed.success
        assert set(read(shared, "select _wap_run_id from quarantine.metered")["_wap_run_id"]) == {crashed.run_id}
        assert load_table(open_catalog(shared.catalog_dsn, shared.data_path), ENTRIES) is None

        failing = write(["range"], 3.0)
        assert open_entries_point_to_their_rows(shared) == [(failing.run_id, 24)]
        assert set(read(shared, "select _wap_run_id from quarantine.metered")["_wap_run_id"]) == {failing.run_id}

        # A crash after a publish superseded the entry but before its rows were deleted: the next run deletes them.
        with monkeypatch.context() as patched:
            patched.setattr(iceberg_warehouse, "settle_quarantine", lambda *args: (_ for _ in ()).throw(crash))
            assert not write([], 4.0).success
        assert open_entries_point_to_their_rows(shared) == []
        assert len(read(shared, "select * from quarantine.metered")) == 24

        assert write([], 5.0).success
        assert open_entries_point_to_their_rows(shared) == []
        assert len(read(shared, "select * from quarantine.metered")) == 0
        assert list(read(shared, "select distinct value from plant.metered")["value"]) == [5.0]


def files_under(folder: Path, suffix: str) -> set[str]:
    return {path.as_uri() for path in folder.rglob(f"*{suffix}")}


def test_expiry_drops_old_snapshots_and_their_files_and_keeps_the_data(shared, tmp_path):
    for _ in range(3):  # each day written three times: 9 data files, 6 of them replaced
        write_days(shared, ["2026-11-01", "2026-11-02", "2026-11-03"])
    catalog = open_catalog(shared.catalog_dsn, shared.data_path)
    table = catalog.load_table("plant.metered")
    first = table.metadata.snapshots[0].snapshot_id
    snapshots = len(table.metadata.snapshots)  # a replace is two (delete, then append)
    assert snapshots >= 9
    assert len(table.scan(snapshot_id=first).to_arrow()) == 24  # time travel to the first write
    before = read(shared, "select * from plant.metered order by ts")
    data = files_under(tmp_path / "lake", ".parquet")
    assert len(data) == 9

    assert expire_snapshots(catalog, "plant.metered", hours=1.0) == (0, 0)  # all inside the history kept
    expired, deleted = expire_snapshots(catalog, "plant.metered", hours=0.0)

    table = catalog.load_table("plant.metered")
    assert expired == snapshots - 1
    assert [snapshot.snapshot_id for snapshot in table.metadata.snapshots] == [table.current_snapshot().snapshot_id]
    pd.testing.assert_frame_equal(read(shared, "select * from plant.metered order by ts"), before)
    current = {task.file.file_path for task in table.scan().plan_files()}
    assert files_under(tmp_path / "lake", ".parquet") == current  # the 6 replaced files are gone
    assert len(current) == 3 and deleted >= 6
    assert len(files_under(tmp_path / "lake", ".metadata.json")) <= METADATA_VERSIONS_KEPT + 1
    with pytest.raises(ValueError, match=str(first)):
        table.scan(snapshot_id=first).to_arrow()


def test_expiry_beside_concurrent_writers_loses_no_partition(shared):
    """Every writer expires everything but the current snapshot after each second commit, while the others
    commit: each day is still stored exactly once, and every file the table references is there."""
    keys = days.get_partition_keys()[:8]
    work = [keys[0:6], [*keys[3:8], keys[0]], [*keys[6:8], *keys[0:3]]]
    retention = SnapshotRetention(hours=0.0, expire_every=2)
    with ProcessPoolExecutor(len(work), mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(write_days, [shared] * len(work), work, [retention] * len(work))) == [6, 6, 5]
    stored = read(shared, "select ts, value from plant.metered order by ts")
    assert len(stored) == 8 * 24
    assert stored["ts"].is_unique
    assert list(stored["value"]) == [float(day) for day in range(1, 9) for _ in range(24)]
    table = open_catalog(shared.catalog_dsn, shared.data_path).load_table("plant.metered")
    assert len(table.metadata.snapshots) < 17  # at least 17 snapshots were committed; expiry ran


def test_the_io_manager_expires_by_its_configured_history(shared):
    """The `warehouse` IO manager passes its settings to every write: with no history kept and expiry at each
    aged snapshot, a table rewritten three times keeps only its current snapshot."""
    warehouse = SharedWarehouseIOManager(
        catalog_dsn=shared.catalog_dsn,
        data_path=shared.data_path,
        staging_database=shared.staging_database(),
        snapshot_retention_hours=0.0,
        expire_every=1,
    )
    with instance_for_test() as instance:
        for value in (1.0, 2.0, 3.0):
            assert materialize(
                [audited([], value)], partition_key="2026-11-01", resources={"warehouse": warehouse}, instance=instance
            ).success
    table = open_catalog(shared.catalog_dsn, shared.data_path).load_table("plant.metered")
    assert len(table.metadata.snapshots) == 1
    assert list(read(shared, "select distinct value from plant.metered")["value"]) == [3.0]


def test_the_daily_maintenance_job_expires_every_table(shared, tmp_path):
    """Also the tables no writer touches any more: the job expires each table's history by the settings."""
    write_days(shared, ["2026-11-01"])
    write_days(shared, ["2026-11-01"])
    catalog = open_catalog(shared.catalog_dsn, shared.data_path)
    rows = pa.table({"n": [1]})
    append(catalog, "quarantine.retired", rows)
    append(catalog, "quarantine.retired", rows)
    no_history = shared.model_copy(update={"snapshot_retention_hours": 0.0})

    result = (
        warehouse_maintenance_definitions(no_history).resolve_job_def("warehouse_maintenance_job").execute_in_process()
    )

    assert result.success
    expired = result.output_for_node("expire_warehouse_snapshots")
    assert expired["plant.metered"][0] == 2
    # The first append's manifest list; its manifest and data file are the current snapshot's too.
    assert expired["quarantine.retired"] == [1, 1]
    for table in ("plant.metered", "quarantine.retired"):
        assert len(catalog.load_table(table).metadata.snapshots) == 1
    assert read(shared, "select count(*) as n from quarantine.retired")["n"].item() == 2
    schedule = warehouse_maintenance_definitions(shared).resolve_schedule_def("warehouse_maintenance_schedule")
    assert schedule.cron_schedule == "0 4 * * *"
    assert not warehouse_maintenance_definitions(WarehouseSettings(path=str(tmp_path / "w.duckdb"))).jobs


TAGS = ("Boiler1.SteamFlow", "Boiler1.O2", "Turbine.Load")
STAGED_ROWS = 24 * len(TAGS)


def staged_day(value: float, verdict: list[str] | None = None):
    """`metered` as the chunked SCADA asset writes it: one day of hourly rows per tag, staged in four chunks through
    `warehouse_staging`, output as `StagedRows` with its audit's verdict (failed check names)."""

    @asset(
        name="metered",
        partitions_def=days,
        io_manager_key="warehouse",
        metadata={"partition_expr": "ts"},
        required_resource_keys={"warehouse_staging"},
    )
    def metered(context) -> Output[StagedRows]:
        start = context.partition_time_window.start

        def chunk(quarter: int) -> pd.DataFrame:
            hours = pd.date_range(start + timedelta(hours=6 * quarter), periods=6, freq="h")
            return pd.DataFrame(
                {
                    "ts": [hour for tag in TAGS for hour in hours],
                    "tag": [tag for tag in TAGS for _ in hours],
                    "value": [value + index for index in range(len(TAGS)) for _ in hours],
                }
            )

        staged = context.resources.warehouse_staging.stage_chunks("metered", (chunk(q) for q in range(4)))
        return Output(staged, metadata={WAP_KEY: {"failed_checks": verdict or [], "staged_table": staged.table}})

    return metered


def staged_resources(shared: WarehouseSettings, schema: str, batch_rows: int) -> dict:
    return {
        "warehouse": SharedWarehouseIOManager(
            catalog_dsn=shared.catalog_dsn,
            data_path=shared.data_path,
            staging_database=shared.staging_database(),
            schema_name=schema,
            publish_batch_rows=batch_rows,
        ),
        "warehouse_staging": WarehouseStaging(database=shared.staging_database()),
    }


def current_files(shared: WarehouseSettings, identifier: str) -> set[str]:
    table = open_catalog(shared.catalog_dsn, shared.data_path).load_table(identifier)
    return {task.file.file_path for task in table.scan().plan_files()}


def commits(shared: WarehouseSettings, identifier: str) -> int:
    """Catalog commits the table has seen (each one writes a metadata file; the log lists the earlier ones)."""
    return len(open_catalog(shared.catalog_dsn, shared.data_path).load_table(identifier).metadata.metadata_log)


def test_a_window_published_in_batches_stores_the_rows_of_a_one_batch_publish(shared):
    """7 rows a batch (11 data files) or the whole window in one: the same rows, each replace one commit."""
    day = "2026-11-02"
    with instance_for_test() as instance:
        for schema, batch_rows in (("batched", 7), ("whole", 10**9)):
            for value in (1.0, 10.0):  # the second run replaces the first
                result = materialize(
                    [staged_day(value)],
                    partition_key=day,
                    resources=staged_resources(shared, schema, batch_rows),
                    instance=instance,
                )
                assert result.success
                if value == 1.0:
                    first = commits(shared, f"{schema}.metered")
            assert commits(shared, f"{schema}.metered") == first + 1
    batched = read(shared, "select * from batched.metered order by tag, ts")
    assert len(batched) == STAGED_ROWS
    assert sorted(set(batched["value"])) == [10.0, 11.0, 12.0]
    pd.testing.assert_frame_equal(batched, read(shared, "select * from whole.metered order by tag, ts"))
    assert len(current_files(shared, "batched.metered")) == -(-STAGED_ROWS // 7)
    assert len(current_files(shared, "whole.metered")) == 1
    materialization = result.asset_materializations_for_node("metered")[0]
    assert materialization.metadata["partition_row_count"].value == STAGED_ROWS
    assert not Path(shared.staging_database()).exists()  # the staged table dropped, the emptied file removed


def test_a_crash_after_the_second_batch_leaves_the_partition_and_a_rerun_replaces_it(shared, monkeypatch, tmp_path):
    day = "2026-11-02"
    resources = staged_resources(shared, "plant", 7)
    crash = RuntimeError("killed after the second batch")

    def crashing_after_two(reader):
        typed = typed_for_iceberg(reader)
        schema = typed.schema

        def batches():
            for number, batch in enumerate(typed, start=1):
                yield batch
                if number == 2:
                    raise crash

        return pa.RecordBatchReader.from_batches(schema, batches())

    with instance_for_test() as instance:

        def write(value):
            return materialize(
                [staged_day(value)], partition_key=day, resources=resources, instance=instance, raise_on_error=False
            )

        assert write(1.0).success
        before = read(shared, "select * from plant.metered order by tag, ts")
        stored_files = current_files(shared, "plant.metered")
        with monkeypatch.context() as patched:
            patched.setattr(iceberg_warehouse, "typed_for_iceberg", crashing_after_two)
            crashed = write(2.0)
        assert not crashed.success
        assert "killed after the second batch" in str(crashed.get_step_failure_events()[0].step_failure_data.error)
        pd.testing.assert_frame_equal(read(shared, "select * from plant.metered order by tag, ts"), before)
        # The two batches' data files were deleted: only the stored partition's files are left.
        assert files_under(tmp_path / "lake", ".parquet") == stored_files
        assert not Path(shared.staging_database()).exists()

        assert write(3.0).success
    stored = read(shared, "select * from plant.metered order by tag, ts")
    assert len(stored) == STAGED_ROWS
    assert sorted(set(stored["value"])) == [3.0, 4.0, 5.0]


def test_a_failed_audit_quarantines_every_batch_and_keeps_the_partition(shared):
    day = "2026-11-02"
    resources = staged_resources(shared, "plant", 7)
    with instance_for_test() as instance:
        assert materialize([staged_day(1.0)], partition_key=day, resources=resources, instance=instance).success
        failed = materialize([staged_day(50.0, ["range"])], partition_key=day, resources=resources, instance=instance)
    assert sorted(set(read(shared, "select value from plant.metered")["value"])) == [1.0, 2.0, 3.0]
    assert open_entries_point_to_their_rows(shared) == [(failed.run_id, STAGED_ROWS)]
    quarantined = read(shared, "select * from quarantine.metered order by tag, ts")
    assert sorted(set(quarantined["value"])) == [50.0, 51.0, 52.0]
    assert len(current_files(shared, "quarantine.metered")) == -(-STAGED_ROWS // 7)


def test_a_refused_commit_deletes_the_data_files_written_for_it(shared, monkeypatch, tmp_path):
    """Every retry lost the race (or pyiceberg's conflict check refused it): the commit did not land, so the
    files written for it are referenced by nothing and are deleted."""
    write_days(shared, ["2026-11-01"])
    stored_files = current_files(shared, "plant.metered")

    def refused(catalog, identifier, change):
        raise CommitFailedException("another writer won every race")

    monkeypatch.setattr(iceberg_warehouse, "commit", refused)
    with pytest.raises(CommitFailedException):
        write_days(shared, ["2026-11-01"])
    assert files_under(tmp_path / "lake", ".parquet") == stored_files


def test_batches_are_regrouped_into_files_of_the_asked_rows():
    """DuckDB hands a stream over in its own row groups; each data file still gets `rows` rows, none lost."""
    schema = pa.schema([pa.field("n", pa.int64())])
    sizes = [5, 1, 12, 0, 3]
    start = [sum(sizes[:index]) for index in range(len(sizes))]
    batches = [
        pa.record_batch([pa.array(range(s, s + n), pa.int64())], schema=schema)
        for s, n in zip(start, sizes, strict=True)
    ]
    groups = list(in_files_of(schema, batches, 4))
    assert [group.num_rows for group in groups] == [4, 4, 4, 4, 4, 1]
    assert [n for group in groups for n in group.column("n").to_pylist()] == list(range(21))


def test_the_staged_rows_are_read_under_the_duckdb_memory_cap(tmp_path, monkeypatch):
    """The publish's scan of the staging file runs under $GL_DUCKDB_MEMORY_LIMIT, as on the DuckDB warehouse; the
    staged table is dropped afterwards and the emptied file removed."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64MB")
    database = str(tmp_path / "gl-staging.duckdb")
    staged = stage_chunks(database, "metered", [pd.DataFrame({"n": range(10)})])
    connection = IcebergConnection(None, database, SnapshotRetention(hours=1.0), batch_rows=4)
    with duckdb.connect() as reference:
        reference.execute("SET memory_limit = '64MB'")
        (capped,) = reference.execute("SELECT current_setting('memory_limit')").fetchone()
    try:
        with new_rows(pd.DataFrame(), staged.table, connection) as rows:
            ((limit,),) = rows.connection.execute("SELECT current_setting('memory_limit')").fetchall()
            assert [batch.num_rows for batch in rows.batches()] == [4, 4, 2]
    finally:
        connection.duckdb.close()
    assert (limit, rows.count) == (capped, 10)
    assert not Path(database).exists()
