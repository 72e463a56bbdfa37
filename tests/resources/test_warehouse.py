"""The warehouse IO manager replaces a partition atomically: a failed write changes nothing."""

import duckdb
import pandas as pd
import pytest
from dagster import DailyPartitionsDefinition, asset, instance_for_test, materialize

from gl_pipelines.resources.warehouse import WarehouseIOManager, warehouse_io_manager

days = DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")
FRAMES: dict[str, pd.DataFrame] = {}


@asset(partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
def metered(context) -> pd.DataFrame:
    return FRAMES[context.partition_key]


def frame(day: str, values) -> pd.DataFrame:
    ts = pd.date_range(day, periods=len(values), freq="h", tz="UTC")
    return pd.DataFrame({"ts": ts, "value": values})


def stored(path) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql("select * from plant.metered order by ts").df()


@pytest.fixture
def write(tmp_path):
    path = tmp_path / "w.duckdb"

    def write_partition(day: str, data: pd.DataFrame):
        FRAMES[day] = data
        with instance_for_test() as instance:
            return materialize(
                [metered],
                partition_key=day,
                resources={"warehouse": warehouse_io_manager(str(path))},
                instance=instance,
                raise_on_error=False,
            )

    return path, write_partition


def test_rewrite_replaces_only_its_partition(write):
    path, write_partition = write
    assert write_partition("2026-11-01", frame("2026-11-01", [1.0, 2.0, 3.0])).success
    assert write_partition("2026-11-02", frame("2026-11-02", [10.0])).success
    assert write_partition("2026-11-01", frame("2026-11-01", [7.0, 8.0])).success
    assert list(stored(path)["value"]) == [7.0, 8.0, 10.0]


def test_failed_insert_rolls_back_the_delete(write):
    path, write_partition = write
    assert write_partition("2026-11-01", frame("2026-11-01", [1.0, 2.0, 3.0])).success
    before = stored(path)
    wrong_type = frame("2026-11-01", ["not", "a", "number"])  # the insert into a DOUBLE column fails
    assert not write_partition("2026-11-01", wrong_type).success
    pd.testing.assert_frame_equal(stored(path), before)


EXTRACTIONS: list[str] = []


@asset(partitions_def=days, io_manager_key="warehouse", metadata={"partition_expr": "ts"})
def extracted(context) -> pd.DataFrame:
    EXTRACTIONS.append(context.partition_key)
    return frame(context.partition_key, [1.0, 2.0])


def hold_lock(path, seconds: float):
    """Another process holding the DuckDB file's write lock for `seconds` (returns once it holds it)."""
    import subprocess
    import sys

    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def materialize_extracted(path, **config):
    EXTRACTIONS.clear()
    manager = WarehouseIOManager(database=str(path), schema="plant", **config)
    with instance_for_test() as instance:
        return materialize(
            [extracted],
            partition_key="2026-11-02",
            resources={"warehouse": manager},
            instance=instance,
            raise_on_error=False,
        )


def test_write_waits_for_another_process_holding_the_file(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = hold_lock(path, 2)
    try:
        result = materialize_extracted(path, lock_wait_s=30)
    finally:
        holder.wait()
    assert result.success
    assert EXTRACTIONS == ["2026-11-02"]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.sql("select value from plant.extracted order by ts").fetchall() == [(1.0,), (2.0,)]


def test_lock_held_past_the_wait_retries_the_step_then_fails_naming_the_lock(tmp_path):
    """The step retry re-extracts (nothing read is lost to a lock); when retries run out the run fails,
    the cause naming the file's conflicting lock, and the file holds nothing half-written."""
    path = tmp_path / "w.duckdb"
    holder = hold_lock(path, 60)
    try:
        result = materialize_extracted(path, lock_wait_s=0.5, lock_step_retries=1, lock_step_retry_wait_s=0)
    finally:
        holder.kill()
        holder.wait()
    assert not result.success
    assert EXTRACTIONS == ["2026-11-02", "2026-11-02"]
    failure = result.get_step_failure_events()[0].step_failure_data.error
    text = failure.to_string()
    assert "Conflicting lock is held" in text and str(path) in text
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select table_name from information_schema.tables").fetchall()
    assert tables == []


def test_publish_adds_a_column_the_asset_gained_and_keeps_the_stored_rows(tmp_path):
    """A table written by an older release (no `fuel_flow`) takes the new rows by name, its old rows kept, NULL in
    the new column; the staged rows' column order does not matter."""
    from dagster._core.storage.db_io_manager import TableSlice

    from gl_pipelines.resources.warehouse import _add_new_columns

    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("CREATE SCHEMA plant; CREATE TABLE plant.raw (ts TIMESTAMPTZ, value DOUBLE)")
    connection.execute("INSERT INTO plant.raw VALUES ('2026-01-01 00:00+00', 1.0)")
    connection.execute(
        "CREATE TABLE staged AS SELECT 7.5 AS fuel_flow, TIMESTAMPTZ '2026-01-01 01:00+00' AS ts, 2.0 AS value"
    )
    _add_new_columns(connection, TableSlice(table="raw", schema="plant"), "staged")
    connection.execute("INSERT INTO plant.raw BY NAME SELECT * FROM staged")
    rows = connection.execute("SELECT value, fuel_flow FROM plant.raw ORDER BY ts").fetchall()
    assert rows == [(1.0, None), (2.0, 7.5)]
