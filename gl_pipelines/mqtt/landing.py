"""The landing area: what the collector received, durable before the broker is acknowledged.

One SQLite file per source in WAL mode with `synchronous=FULL`: a batch of messages (their readings,
quarantined payloads, Sparkplug events, decoder state and redelivery keys) is one transaction, and
its commit fsyncs the WAL before the collector sends a single PUBACK. A crash before the commit
loses nothing the broker does not still hold; a crash after it leaves at most a redelivery, which
`is_redelivery` recognises. We chose SQLite over hour files (JSONL/Parquet) because a batch often
spans an hour boundary and must still land atomically, WAL lets the Dagster asset read an hour
while the collector writes, and `ts` is indexed so an hour is one range scan. Times are integer
microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    ts INTEGER NOT NULL, tag TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
CREATE INDEX IF NOT EXISTS readings_received ON readings (received_at);
CREATE TABLE IF NOT EXISTS quarantine (
    received_at INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (at INTEGER NOT NULL, kind TEXT NOT NULL, topic TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS last_key (mid INTEGER PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS status (
    id INTEGER PRIMARY KEY CHECK (id = 1), connected INTEGER NOT NULL, heartbeat REAL NOT NULL, detail TEXT NOT NULL
);
"""

Reading = tuple[int, str, float | None, str, str]
"""(ts µs, tag, value, unit, quality) as a decoder produces it."""


@dataclass
class Batch:
    """Everything one transaction lands: decoded messages and their redelivery keys."""

    received_at: int
    readings: list[Reading] = field(default_factory=list)
    quarantined: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(topic, reason, payload)"""
    events: list[tuple[int, str, str, str]] = field(default_factory=list)
    """(at µs, kind, topic, detail)"""
    keys: dict[int, bytes] = field(default_factory=dict)
    """packet id -> message key of every message in the batch"""
    state: dict[str, object] | None = None
    """decoder state to persist with these rows (None: unchanged)"""


@dataclass(frozen=True)
class CollectorStatus:
    connected: bool
    heartbeat: float
    detail: str


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)
    connection = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: the PUBACK promise
    return connection


class LandingStore:
    """The collector's writer. One per landing file: the collector is its only writer."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._db = connect(path)
        self._db.executescript(SCHEMA)
        self._last_key: dict[int, bytes] = dict(self._db.execute("SELECT mid, key FROM last_key").fetchall())

    def close(self) -> None:
        self._db.close()

    def is_redelivery(self, mid: int, key: bytes, dup: bool) -> bool:
        """The broker resends an unacknowledged message with DUP set and its original packet id, and reuses
        a packet id only after our PUBACK; so a DUP message whose id last carried this very message was
        landed and only its PUBACK was lost."""
        return dup and self._last_key.get(mid) == key

    def load_state(self, name: str) -> dict | None:
        row = self._db.execute("SELECT body FROM state WHERE name = ?", [name]).fetchone()
        return json.loads(row[0]) if row else None

    def land(self, batch: Batch, state_name: str = "sparkplug") -> None:
        """One atomic, fsync'd transaction; returns only once the batch is on disk."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if batch.readings:
                db.executemany(
                    "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)",
                    [(*reading, batch.received_at) for reading in batch.readings],
                )
            if batch.quarantined:
                db.executemany(
                    "INSERT INTO quarantine VALUES (?, ?, ?, ?)",
                    [(batch.received_at, topic, reason, payload) for topic, reason, payload in batch.quarantined],
                )
            if batch.events:
                db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", batch.events)
            if batch.keys:
                db.executemany("INSERT OR REPLACE INTO last_key VALUES (?, ?)", batch.keys.items())
            if batch.state is not None:
                db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", [state_name, json.dumps(batch.state)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._last_key.update(batch.keys)

    def set_status(self, connected: bool, detail: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO status VALUES (1, ?, ?, ?)", [int(connected), time.time(), detail[:500]]
        )


def read_status(path: str | Path) -> CollectorStatus | None:
    if not Path(path).exists():
        return None
    connection = connect(path, readonly=True)
    try:
        row = connection.execute("SELECT connected, heartbeat, detail FROM status").fetchone()
    except sqlite3.OperationalError:  # the collector created the file but not its tables yet
        return None
    finally:
        connection.close()
    return CollectorStatus(bool(row[0]), row[1], row[2]) if row else None
