"""Watch the DAHS drop folder: accept each new or rewritten export once, quarantine malformed ones.

The cursor maps each file name in the drop folder to (mtime_ns, size, sha256) of the version last
handled. A file whose mtime or size changed is hashed again; new content is validated in full and
either accepted (copied into the content-addressed store, then one run of `cems_hourly_raw` over
the hourly partitions it and the version it replaces cover, keyed by its hash) or moved to
quarantine with the file, line and column of the first problem. A touched file with the same
content asks for nothing. A file still being written (its size or mtime moves while it is read)
waits for the next tick.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from gl_pipelines.assets.cems import cems_hourly_partitions
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.cems.dahs import DahsFormatError, parse_dahs_csv
from gl_pipelines.cems.dahs_store import accept, current_entries, quarantine, sha256_of
from gl_pipelines.config import CemsSource

RAW_ASSET = AssetKey("cems_hourly_raw")
FILE_TAG = "gl/dahs-file"


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def build_cems_file_sensor(source: CemsSource, job_name: str) -> SensorDefinition:
    hourly = cems_hourly_partitions(source.lst_utc_offset_hours, source.history_start.isoformat())
    units = [unit.unit_id for unit in source.units]

    @sensor(
        name="cems_dahs_files",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"New or rewritten DAHS export files in {source.dahs_drop_folder} -> cems_hourly_raw runs.",
    )
    def cems_dahs_files(context: SensorEvaluationContext) -> SensorResult:
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        cursor: dict[str, list] = {}
        requests: list[RunRequest] = []
        events: list[AssetObservation] = []
        rejected: list[str] = []
        drop = source.dahs_drop_folder
        for path in sorted(drop.glob("*.csv")) if drop.is_dir() else []:
            if path.name.startswith("."):
                continue
            before = _signature(path)
            previous = seen.get(path.name)
            if previous and tuple(previous[:2]) == before:
                cursor[path.name] = previous
                continue
            data = path.read_bytes()
            if _signature(path) != before:
                continue  # still being written; the next tick sees it whole
            sha = sha256_of(data)
            cursor[path.name] = [*before, sha]
            if previous and previous[2] == sha:
                continue
            try:
                frame = parse_dahs_csv(data, path.name, source.lst_utc_offset_hours, units)
            except DahsFormatError as error:
                cursor.pop(path.name)
                moved = quarantine(source.quarantine_folder, path, str(error))
                context.log.error(f"DAHS file rejected and quarantined to {moved}: {error}")
                rejected.append(str(error))
                events.append(
                    AssetObservation(
                        asset_key=RAW_ASSET,
                        description=f"quarantined DAHS file {path.name}",
                        metadata={
                            "file": path.name,
                            "line": error.line,
                            "column": error.column or "",
                            "error": str(error),
                            "quarantined_to": MetadataValue.path(str(moved)),
                            "sha256": sha,
                        },
                    )
                )
                continue
            previous_version = {e.name: e for e in current_entries(source.accepted_folder)}.get(path.name)
            entry = accept(source.accepted_folder, path.name, data, frame)
            # A rewrite supersedes the old version's hours too: re-run them, or a shrunk file leaves them stale.
            covered = [entry] + ([previous_version] if previous_version else [])
            first = hourly.get_partition_key_for_timestamp(min(e.first_hour_utc for e in covered).timestamp())
            last = hourly.get_partition_key_for_timestamp(max(e.last_hour_utc for e in covered).timestamp())
            context.log.info(f"accepted {entry.ref}: {entry.rows} rows, partitions {first}..{last}")
            requests.append(
                RunRequest(
                    run_key=f"{path.name}@{sha}@{entry.accepted_ns}",
                    tags={RANGE_START_TAG: first, RANGE_END_TAG: last, FILE_TAG: path.name[:200]},
                )
            )
        new_cursor = json.dumps(cursor, sort_keys=True)
        if requests:
            return SensorResult(run_requests=requests, cursor=new_cursor, asset_events=events)
        reason = "; ".join(rejected) if rejected else f"no new or changed DAHS files in {drop}"
        return SensorResult(skip_reason=reason, cursor=new_cursor, asset_events=events)

    return cems_dahs_files
