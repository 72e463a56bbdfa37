"""The warehouse IO manager replaces a partition atomically: a failed write changes nothing."""

import duckdb
import pandas as pd
import pytest
from dagster import DailyPartitionsDefinition, asset, instance_for_test, materialize

from gl_pipelines.resources.warehouse import warehouse_io_manager

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
