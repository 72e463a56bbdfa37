"""Watch the DAHS drop folder: accept each new or rewritten export once, quarantine malformed ones.

The cursor maps each file name in the drop folder to (mtime_ns, size, sha256) of the version last
handled. A file whose mtime or size changed is hashed again; new content is validated in full and
either accepted (copied into the content-addressed store, then one run of `cems_hourly_raw` over
the hourly partitions it and the version it replaces cover, keyed by its hash) or moved to
quarantine with the file, line and column of the first problem. A touched file with the same
content asks for nothing. A file still being written (its size or mtime moves while it is read)
waits for the next tick.

The folder is writable by others, so nothing in it is trusted: only regular `*.csv` files are read,
through `lstat` and `O_NOFOLLOW | O_NONBLOCK` (a symlink is never followed, a FIFO never blocks the
tick); a symlink, directory, FIFO, socket or device with a `.csv` name, or a file larger than
MAX_FILE_BYTES, is quarantined unread with its reason; an entry that cannot be handled at all is
skipped with its reason; none of them stops the valid files beside it. Names starting with "." (a
DAHS writes `.name.partial` aside, then renames) are never loaded and are listed in the skip reason.
Names and values are quoted escaped and short, and every message is scrubbed.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG, cems_hourly_partitions
from gl_pipelines.cems.dahs import DahsFormatError, parse_dahs_csv
from gl_pipelines.cems.dahs_store import accept, previous_version, quarantine, sha256_of
from gl_pipelines.components.naming import InstanceNames, cems_names
from gl_pipelines.config import CemsSource
from gl_pipelines.scrub import excerpt, printable, scrub

FILE_TAG = "gl/dahs-file"
MAX_FILE_BYTES = 64 * 2**20
"""A year of hourly records for four units is about 5 MB; a larger file is refused unread."""
MAX_REASON_CHARS = 500
MAX_SKIP_REASON_CHARS = 2000
_NOT_REGULAR = (
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class _ChangedUnderUs(Exception):
    """The entry changed between lstat and open (e.g. replaced by a FIFO): look again next tick."""


def _not_regular(mode: int) -> str | None:
    return next((kind for test, kind in _NOT_REGULAR if test(mode)), None)


def _read_regular(path: Path, size: int) -> bytes:
    """The bytes of a regular file, never through a symlink and never blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if _not_regular(os.fstat(fd).st_mode):
            raise _ChangedUnderUs
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(min(size, MAX_FILE_BYTES) + 1)
    finally:
        os.close(fd)


def _drop_entries(drop: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(drop) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def build_cems_file_sensor(source: CemsSource, job_name: str, names: InstanceNames | None = None) -> SensorDefinition:
    """The drop-folder sensor of one CEMS instance (`<site>__<instance>__cems_dahs_files`; short name without one)."""
    names = cems_names(names)
    raw_asset = names.key("cems_hourly_raw")
    hourly = cems_hourly_partitions(source.lst_utc_offset_hours, source.history_start.isoformat())
    units = [unit.unit_id for unit in source.units]

    @sensor(
        name=names.job("cems_dahs_files"),
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"New or rewritten DAHS export files in {source.dahs_drop_folder} -> "
        f"{raw_asset.to_user_string()} runs.",
    )
    def dahs_files(context: SensorEvaluationContext) -> SensorResult:
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        cursor: dict[str, list] = {}
        requests: list[RunRequest] = []
        events: list[AssetObservation] = []
        notes: list[str] = []
        hidden: list[str] = []
        drop = source.dahs_drop_folder

        def reject(path: Path, reason: str, sha: str | None = None, error: DahsFormatError | None = None) -> None:
            reason = scrub(reason)[:MAX_REASON_CHARS]
            try:
                moved = quarantine(source.quarantine_folder, path, reason)
            except OSError as exc:
                notes.append(f"{reason} (left in place, cannot quarantine: {exc.strerror or type(exc).__name__})")
                context.log.error(notes[-1])
                return
            context.log.error(f"DAHS file rejected and quarantined to {printable(moved)}: {reason}")
            notes.append(reason)
            events.append(
                AssetObservation(
                    asset_key=raw_asset,
                    description=f"quarantined DAHS file {excerpt(path.name)}",
                    metadata={
                        "file": printable(path.name),
                        "line": error.line if error else 0,
                        "column": printable(error.column or "") if error else "",
                        "error": reason,
                        "quarantined_to": MetadataValue.path(printable(moved, 400)),
                        "sha256": sha or "",
                    },
                )
            )

        def handle(entry: os.DirEntry) -> None:
            path, name, shown = Path(entry.path), entry.name, excerpt(entry.name)
            status = entry.stat(follow_symlinks=False)
            kind = _not_regular(status.st_mode)
            if kind:
                reject(path, f"{shown} is a {kind}, not a regular file: not read")
                return
            if status.st_size > MAX_FILE_BYTES:
                reject(path, f"{shown} is {status.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} allowed: not read")
                return
            before = (status.st_mtime_ns, status.st_size)
            previous = seen.get(name)
            if previous and tuple(previous[:2]) == before:
                cursor[name] = previous
                return
            data = _read_regular(path, status.st_size)
            after = os.lstat(path)
            if (after.st_mtime_ns, after.st_size) != before or len(data) != status.st_size:
                return  # still being written; the next tick sees it whole
            sha = sha256_of(data)
            if previous and previous[2] == sha:
                cursor[name] = [*before, sha]
                return
            try:
                frame = parse_dahs_csv(data, name, source.lst_utc_offset_hours, units)
            except DahsFormatError as error:
                reject(path, str(error), sha, error)
                return
            replaced = previous_version(source.accepted_folder, name, sha)
            accepted = accept(source.accepted_folder, name, data, frame)
            # A rewrite supersedes the old version's hours too: re-run them, or a shrunk file leaves them stale.
            covered = [accepted] + ([replaced] if replaced else [])
            first = hourly.get_partition_key_for_timestamp(min(e.first_hour_utc for e in covered).timestamp())
            last = hourly.get_partition_key_for_timestamp(max(e.last_hour_utc for e in covered).timestamp())
            context.log.info(f"accepted {printable(accepted.ref)}: {accepted.rows} rows, partitions {first}..{last}")
            # The run key names the accepted entry: a tick repeated after a crash asks for the same run.
            requests.append(
                RunRequest(
                    run_key=f"{name}@{sha}@{accepted.accepted_ns}",
                    tags={RANGE_START_TAG: first, RANGE_END_TAG: last, FILE_TAG: printable(name, 200)},
                )
            )
            cursor[name] = [*before, sha]

        for entry in _drop_entries(drop):
            if entry.name.startswith("."):
                hidden.append(entry.name)
                continue
            if not entry.name.endswith(".csv"):
                continue
            try:
                handle(entry)
            except (OSError, _ChangedUnderUs) as exc:  # vanished, unreadable, swapped: this entry only
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "changed while read"
                notes.append(f"{excerpt(entry.name)} skipped this tick: {scrub(detail)}")
                context.log.warning(notes[-1])
        if hidden:
            notes.append(
                f"{len(hidden)} hidden entr{'y' if len(hidden) == 1 else 'ies'} not loaded (names starting with "
                f"'.' are files still being written or not exports): {', '.join(excerpt(n, 40) for n in hidden[:3])}"
                + (", …" if len(hidden) > 3 else "")
            )
        new_cursor = json.dumps(cursor, sort_keys=True)
        if requests:
            return SensorResult(run_requests=requests, cursor=new_cursor, asset_events=events)
        reason = "; ".join(notes) if notes else f"no new or changed DAHS files in {drop}"
        if len(reason) > MAX_SKIP_REASON_CHARS:
            reason = reason[:MAX_SKIP_REASON_CHARS] + "…"
        return SensorResult(skip_reason=reason, cursor=new_cursor, asset_events=events)

    return dahs_files
