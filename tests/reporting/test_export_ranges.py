"""`write_partition_exports` (one partitioned COPY per format, files renamed into place) writes exactly the files
`write_exports` writes for each partition's slice (same bytes). One deliberate difference: an empty
partition's Parquet keeps the report's column types, where an empty pandas slice registered on its
own turns a text column into DuckDB's NULL type."""

from itertools import pairwise

import duckdb
import numpy as np
import pandas as pd

from gl_pipelines.assets.partitions import site_daily_partitions, utc_window
from gl_pipelines.reporting.exports import plant_months, write_exports, write_partition_exports

TZ = "America/Chicago"


def test_range_exports_equal_per_partition_exports(tmp_path):
    days = site_daily_partitions(TZ)
    keys = ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]  # 11-01 has 25 hours
    windows = {key: utc_window(days.time_window_for_partition_key(key)) for key in keys}
    hours = pd.date_range("2026-10-31 05:00", "2026-11-03 06:00", freq="h", tz="UTC", inclusive="left")
    frame = pd.DataFrame(
        {
            "hour": hours,
            "unit_name": np.where(np.arange(len(hours)) % 2, "B1", "B2"),
            "value": np.linspace(0.1, 9.9, len(hours)),
            "flag": np.arange(len(hours)) % 3 == 0,
            "count": np.arange(len(hours), dtype="int64"),
        }
    ).iloc[::-1]  # rows not in time order: each file keeps the frame's order
    outside = frame.iloc[:1].assign(hour=pd.Timestamp("2026-12-01", tz="UTC"))  # in no window: in no file
    frame = pd.concat([frame, outside])

    ranged = write_partition_exports(frame, tmp_path / "range", "report", windows, "hour", csv=True)

    sizes = {}
    for key, (low, high) in windows.items():
        rows = frame[(frame["hour"] >= low) & (frame["hour"] < high)]
        sizes[key] = len(rows)
        single = write_exports(rows, tmp_path / "single", "report", key, csv=True)
        assert set(ranged[key]) == {"parquet", "csv"}
        for fmt, path in single.items():
            if sizes[key] or fmt == "csv":
                assert ranged[key][fmt].read_bytes() == path.read_bytes(), (key, fmt)
    assert sizes == {"2026-10-31": 24, "2026-11-01": 25, "2026-11-02": 24, "2026-11-03": 0}
    assert parquet_types(ranged["2026-11-03"]["parquet"]) == parquet_types(ranged["2026-11-01"]["parquet"])
    assert parquet_types(tmp_path / "single" / "report" / "report_2026-11-03.parquet")["unit_name"] == '"NULL"'
    assert ranged["2026-11-03"]["csv"].read_text().strip() == "hour,unit_name,value,flag,count"
    assert not list((tmp_path / "range").rglob("*.partial")) and not list((tmp_path / "range").rglob(".partial-*"))
    assert sorted(p.name for p in (tmp_path / "range" / "report").iterdir()) == sorted(
        f"report_{key}.{fmt}" for key in keys for fmt in ("csv", "parquet")
    )


def parquet_types(path) -> dict[str, str]:
    with duckdb.connect() as con:
        return dict(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()[i][:2] for i in range(5))


def test_plant_months_of_a_day_a_month_and_a_range():
    def utc(text):
        return pd.Timestamp(text, tz="UTC").to_pydatetime()

    # The fall-back day Nov 1 (25 h) is in November; its month runs from CDT midnight to CST midnight.
    assert plant_months(utc("2026-11-01 05:00"), utc("2026-11-02 06:00"), TZ) == {
        "2026-11": (utc("2026-11-01 05:00"), utc("2026-12-01 06:00"))
    }
    # A window ending exactly at a month's start does not touch that month.
    assert list(plant_months(utc("2026-10-01 05:00"), utc("2026-11-01 05:00"), TZ)) == ["2026-10"]
    # A range across the year end: every month once, each starting where the previous ends.
    months = plant_months(utc("2026-11-30 06:00"), utc("2027-02-02 06:00"), TZ)
    assert list(months) == ["2026-11", "2026-12", "2027-01", "2027-02"]
    bounds = list(months.values())
    assert all(high == low for (_, high), (low, _) in pairwise(bounds))
    assert bounds[-1][1] == utc("2027-03-01 06:00")
