"""The shared warehouse (Iceberg, catalog in PostgreSQL): the same promises as the DuckDB file, with writers
in several processes at once."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest
from dagster import asset, instance_for_test, materialize

from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources.warehouse import WarehouseSettings
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
