"""Accepted DAHS files: content-addressed copies the assets read, and the quarantine for bad ones.

The drop folder belongs to the DAHS, which may rewrite a file at any time; the assets must read
exactly the bytes that were validated. So an accepted file is copied to `files/<sha256>.csv` and
described by one small JSON entry in `index/` (written aside, then renamed: an entry is whole or
absent). Which rows count for an hour: per original file name only its latest accepted version,
then per unit-hour the row of the most recently accepted file. Accepting the version that is
already the latest of its name writes nothing: a sensor tick that accepted a file and then died
before Dagster stored its result repeats the same acceptance (same entry, same run key) next tick.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
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
    """Copy a validated file into the store and index it; `frame` is what the parser made of `data`.
    Returns the existing entry when this content already is the latest accepted version of `name`."""
    sha = sha256_of(data)
    latest = latest_versions(store, name)
    if latest and latest[-1].sha256 == sha:
        return latest[-1]
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


def latest_versions(store: Path, name: str) -> list[AcceptedFile]:
    """The accepted versions of one file name, oldest first."""
    return [entry for entry in entries(store) if entry.name == name]


def previous_version(store: Path, name: str, sha256: str) -> AcceptedFile | None:
    """The latest accepted version of `name` with other content than `sha256`: the one it replaces."""
    return next((e for e in reversed(latest_versions(store, name)) if e.sha256 != sha256), None)


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


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
QUARANTINE_NAME_CHARS = 120


def quarantine_name(name: str) -> str:
    """A safe, bounded file name for a quarantined entry: any name fits NAME_MAX (255 bytes) with the
    timestamp and `.reason.txt`, has no control characters, and two long names stay apart (hash)."""
    safe = _UNSAFE_NAME_CHARS.sub("_", name).lstrip(".") or "unnamed"
    if safe != name or len(safe) > QUARANTINE_NAME_CHARS:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        safe = f"{safe[:QUARANTINE_NAME_CHARS]}~{digest}"
    return safe


def quarantine(folder: Path, path: Path, reason: str) -> Path:
    """Move a rejected entry out of the drop folder, with a `.reason.txt` beside it; never overwrites.

    Only a rename moves a symlink, FIFO, socket or directory (never followed, never read); a regular
    file on another file system is copied. `reason` must already be safe to show (see scrub)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}_{quarantine_name(path.name)}"
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV or not stat.S_ISREG(os.lstat(path).st_mode):
            raise
        shutil.move(path, target)
    (folder / f"{target.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return target
