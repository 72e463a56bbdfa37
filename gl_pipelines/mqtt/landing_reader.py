"""Reading the landing area (the Dagster side): an hour's readings, landed hours, side tables.

Apart from landing.py so the collector never imports pandas (seconds of start-up on a busy host).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from gl_pipelines.mqtt.landing import connect


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def read_readings(path: str | Path, start: datetime, end: datetime) -> tuple[pd.DataFrame, int]:
    """Readings with source time in [start, end), and the landing's last rowid in the same snapshot.

    Rows are only ever appended, so a later row with a larger rowid in this window is a late arrival
    the read did not see (sensors/mqtt.py re-runs the hour for it)."""
    connection = connect(path, readonly=True)
    try:
        connection.execute("BEGIN")  # one WAL snapshot for both statements
        (last_rowid,) = connection.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()
        frame = pd.read_sql_query(
            "SELECT ts, tag, value, unit, quality, received_at FROM readings WHERE ts >= ? AND ts < ? ORDER BY ts, tag",
            connection,
            params=[micros(start), micros(end)],
        )
        connection.execute("COMMIT")
    finally:
        connection.close()
    frame["value"] = frame["value"].astype("float64")
    for column in ("ts", "received_at"):
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    return frame, last_rowid


def landed_hours(path: str | Path, since: datetime) -> list[tuple[int, int]]:
    """(UTC hour start µs, largest rowid) of every hour with readings at or after `since`."""
    hour = 3_600_000_000
    connection = connect(path, readonly=True)
    try:
        return connection.execute(
            f"SELECT ts / {hour} * {hour} AS hour, max(rowid) FROM readings WHERE ts >= ? GROUP BY hour ORDER BY hour",
            [micros(since)],
        ).fetchall()
    finally:
        connection.close()


def read_table(path: str | Path, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A whole side table (quarantine, events) for tests, the README and operators."""
    if table not in {"quarantine", "events", "readings"}:
        raise ValueError(f"landing area has no table {table!r}")
    connection = connect(path, readonly=True)
    try:
        return pd.read_sql_query(f"SELECT {', '.join(columns or ['*'])} FROM {table}", connection)
    finally:
        connection.close()


def landed_rows(path: str | Path) -> int:
    """How many readings have landed: rows are only appended, so the last rowid (an index lookup, where
    count(*) scans the table) is the count."""
    connection = connect(path, readonly=True)
    try:
        return connection.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()[0]
    finally:
        connection.close()


def count_rows(path: str | Path, tables: Iterable[str] = ("readings", "quarantine")) -> dict[str, int]:
    connection = connect(path, readonly=True)
    try:
        return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}
    finally:
        connection.close()
