"""Accepted DAHS files: content-addressed copies the assets read, and the quarantine for bad ones.

The drop folder belongs to the DAHS, which may rewrite a file at any time; the assets must read
exactly the bytes that were validated. So an accepted file is copied to `files/<sha256>.csv` and
described by one small JSON entry in `index/` (written aside, then renamed: an entry is whole or
absent). Which rows count for an hour: per original file name only its latest accepted version,
then per unit-hour the row of the most recently accepted file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gl_pipelines.cems.dahs import parse_dahs_csv
from gl_pipelines.cems.schema import KEY_COLUMNS, RAW_COLUMNS, empty_raw_frame


@dataclass(frozen=True)
class AcceptedFile:
    """One accepted version of a DAHS file."""

    sha256: str
    name: str
    accepted_ns: int
    first_hour_utc: datetime
    last_hour_utc: datetime
    rows: int
    units: tuple[str, ...]

    @property
    def ref(self) -> str:
        """How rows and errors name this version: original name @ short hash."""
        return f"{self.name}@{self.sha256[:12]}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_aside(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def accept(store: Path, name: str, data: bytes, frame: pd.DataFrame) -> AcceptedFile:
    """Copy a validated file into the store and index it; `frame` is what the parser made of `data`."""
    sha = sha256_of(data)
    copy = store / "files" / f"{sha}.csv"
    if not copy.exists():
        _write_aside(copy, data)
    entry = AcceptedFile(
        sha256=sha,
        name=name,
        accepted_ns=time.time_ns(),
        first_hour_utc=frame["hour_start_utc"].min().to_pydatetime(),
        last_hour_utc=frame["hour_start_utc"].max().to_pydatetime(),
        rows=len(frame),
        units=tuple(sorted(frame["unit_id"].unique())),
    )
    record = {
        "sha256": sha,
        "name": name,
        "accepted_ns": entry.accepted_ns,
        "first_hour_utc": entry.first_hour_utc.isoformat(),
        "last_hour_utc": entry.last_hour_utc.isoformat(),
        "rows": entry.rows,
        "units": list(entry.units),
    }
    _write_aside(store / "index" / f"{entry.accepted_ns:020d}_{sha}.json", json.dumps(record).encode())
    return entry


def entries(store: Path) -> list[AcceptedFile]:
    """Every accepted version, oldest first."""
    index = store / "index"
    found = []
    for path in sorted(index.glob("*.json")) if index.is_dir() else []:
        record = json.loads(path.read_text())
        found.append(
            AcceptedFile(
                sha256=record["sha256"],
                name=record["name"],
                accepted_ns=record["accepted_ns"],
                first_hour_utc=datetime.fromisoformat(record["first_hour_utc"]),
                last_hour_utc=datetime.fromisoformat(record["last_hour_utc"]),
                rows=record["rows"],
                units=tuple(record["units"]),
            )
        )
    return sorted(found, key=lambda entry: entry.accepted_ns)


def current_entries(store: Path) -> list[AcceptedFile]:
    """The latest accepted version of each file name, oldest first."""
    latest: dict[str, AcceptedFile] = {}
    for entry in entries(store):
        latest[entry.name] = entry
    return sorted(latest.values(), key=lambda entry: entry.accepted_ns)


def rows_for_window(
    store: Path, start: datetime, end: datetime, lst_offset_hours: float, units: Collection[str]
) -> tuple[pd.DataFrame, list[AcceptedFile]]:
    """`cems_hourly_raw` rows with hour start in [start, end) from the current accepted files, and
    the files they came from. A later file wins a unit-hour that two files both hold."""
    used, frames = [], []
    for entry in current_entries(store):
        if entry.last_hour_utc < start or entry.first_hour_utc >= end:
            continue
        data = (store / "files" / f"{entry.sha256}.csv").read_bytes()
        if sha256_of(data) != entry.sha256:
            raise RuntimeError(f"accepted store {store}: copy of {entry.ref} does not match its hash")
        frame = parse_dahs_csv(data, entry.ref, lst_offset_hours, units)
        hours = frame["hour_start_utc"]
        frame = frame[(hours >= start) & (hours < end)]
        if not frame.empty:
            used.append(entry)
            frames.append(frame)
    if not frames:
        return empty_raw_frame(), used
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(KEY_COLUMNS, keep="last")
    return rows.sort_values(KEY_COLUMNS).reset_index(drop=True)[RAW_COLUMNS], used


def quarantine(folder: Path, path: Path, reason: str) -> Path:
    """Move a rejected file out of the drop folder, with a `.reason.txt` beside it; never overwrites."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}_{path.name}"
    shutil.move(path, target)
    (folder / f"{target.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return target
