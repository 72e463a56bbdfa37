"""Find ERP documents changed after their plant day was stored, and re-run the days they touch.

The daily ERP run reads a closed plant day once. A goods receipt corrected later (new quantity,
or a posting date moved to another day) would leave the stored day stale, and a moved document
would be counted in both its old and its new month by the GHG inventory. This sensor asks the
service for what changed since its last look (the OData delta link kept in the cursor; a full
read of the look-back window the first time, once every `full_compare_hours` because an OData v2 delta shows
no deleted document nor one that left the filter, and whenever the service refuses the token; an OData v4
delta lists removed keys, and their stored days are re-read too), compares
those documents with the warehouse, and requests one `erp_daily_job` run per stored plant day whose
documents differ: the day a document moved from and the day it moved to. The runs re-read whole
days, so the warehouse stays one row per document and a day is replaced atomically. It watches every
dated entity set of its instance (the fuel receipts and production roles, and any `entity_sets` entry
with a `date_column`), each by its own date column.

Only days already materialized are re-run (the schedule and backfills own the others). The cursor
moves only when a tick succeeds, so a failed read is retried on the next tick.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from gl_pipelines.assets.erp import DOCUMENT_ROLES, entity_query, entity_set_query
from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import ErpSource
from gl_pipelines.resources.erp import EntityQuery, ErpResource
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.warehouse_reader import WarehouseReader, WindowRead

CHANGE_TAG = "gl/erp-changes"


@dataclass(frozen=True)
class Tracked:
    """One dated entity set the sensor watches: its label in tags and logs, its query and its asset."""

    kind: str
    query: EntityQuery
    key: AssetKey


def tracked_sets(source: ErpSource, names: InstanceNames) -> list[Tracked]:
    """Every dated entity set of the instance: the document roles, then the dated `entity_sets`."""
    roles = [
        Tracked(role, entity_query(role, getattr(source, role)), names.key(f"erp_{role}"))
        for role in DOCUMENT_ROLES
        if role in source.roles()
    ]
    generic = [
        Tracked(
            entity.name,
            entity_set_query(entity),
            names.key(entity.name),
        )
        for entity in source.entity_sets
        if entity.date_column
    ]
    return roles + generic


@dataclass
class ChangedDays:
    """What one look at the ERP found, per document kind."""

    days: dict[str, set[str]] = field(default_factory=dict)
    """Plant day -> the document kinds whose stored rows differ from the service for that day."""
    documents: dict[str, int] = field(default_factory=dict)
    """Kind -> number of documents that differ from the warehouse (changed, new, moved or gone)."""
    modes: dict[str, str] = field(default_factory=dict)
    """Kind -> how the service was read: delta, full, or full because the token was refused."""
    delta_links: dict[str, str | None] = field(default_factory=dict)
    digest: str = ""
    """Hash of the differing documents as read: the same change seen twice asks for the same runs."""


def fingerprints(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One string per row of `columns`, equal for the same document whether it came from the service
    (exact decimals, pandas timestamps) or from the warehouse (DECIMAL read back as a float)."""
    joined = pd.Series("", index=frame.index, dtype=object)
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            text = values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            text = values.astype("float64").map("{:.3f}".format)
        else:
            text = values.astype(object).where(values.notna(), None).map(str)
        joined = joined + "\x1f" + text.where(values.notna(), "").astype(str)
    return joined


def plant_days(instants: pd.Series, timezone: str) -> pd.Series:
    """The plant-day partition key of each date (a UTC instant of local midnight)."""
    return pd.to_datetime(instants, utc=True).dt.tz_convert(timezone).dt.strftime("%Y-%m-%d")


def differing_days(
    service: pd.DataFrame,
    stored: pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[str],
    timezone: str,
    stored_days: set[str],
    full: bool,
    date_column: str = "posting_date",
) -> tuple[set[str], pd.DataFrame]:
    """Stored plant days whose documents differ from `service`'s, and those documents.

    `service` holds changed documents (a delta) or, when `full`, every document of the window, so
    a stored document missing from it was deleted or moved out of the window. A document of a day
    never stored is not a difference: the schedule or a backfill will read that day."""
    new, old = (
        frame[list(keys)].assign(day=plant_days(frame[date_column], timezone), fp=fingerprints(frame, columns))
        for frame in (service, stored)
    )
    merged = new.merge(old, on=list(keys), how="outer" if full else "left", suffixes=("_new", "_old"))
    differs = merged[merged["fp_new"].fillna("\x00") != merged["fp_old"].fillna("\x00")]
    differs = differs[differs["day_new"].isin(stored_days) | differs["day_old"].isin(stored_days)]
    days = (set(differs["day_new"].dropna()) | set(differs["day_old"].dropna())) & stored_days
    return days, differs


def removed_rows(
    stored: pd.DataFrame, removed: Sequence[dict[str, str]], key_properties: dict[str, str]
) -> pd.DataFrame | None:
    """Stored rows whose key a delta reported removed (OData v4 `@removed` / `$deletedEntity`); the re-run of
    their day re-reads it without them and replaces it whole, so the deletion lands with the day's replace.
    None when a removed key lacks one of our key properties (its entity key is not ours)."""
    if not removed:
        return stored.iloc[0:0]
    if any(prop not in key for key in removed for prop in key_properties.values()):
        return None
    gone = {tuple(str(key[prop]) for prop in key_properties.values()) for key in removed}
    labels = stored[list(key_properties)].astype(str).itertuples(index=False, name=None)
    return stored[[label in gone for label in labels]]


def find_changed_days(
    erp: ErpResource,
    reader: WarehouseReader,
    source: ErpSource,
    tracked: Sequence[Tracked],
    timezone: str,
    delta_links: dict[str, str | None],
    stored_days: dict[str, set[str]],
    now: datetime,
) -> ChangedDays:
    """Read what changed in the ERP (delta, or the look-back window in full) and compare it with the
    warehouse, for the plant days `stored_days` says are materialized (per entity set)."""
    found = ChangedDays()
    digest = hashlib.sha256()
    today = pd.Timestamp(now).tz_convert(timezone).normalize()
    start = (today - timedelta(days=source.change_lookback_days)).tz_convert("UTC")
    window = (start.to_pydatetime(), (pd.Timestamp(now) + timedelta(days=366)).to_pydatetime())
    queries = {item.kind: item.query for item in tracked}
    columns = {kind: [name for name in query.fields if name != "source"] for kind, query in queries.items()}
    # Every set's stored rows through one connection (opening the warehouse file costs ~12 ms).
    reads = {
        item.kind: WindowRead(table_name(item.key), item.query.date_column, columns[item.kind]) for item in tracked
    }
    stored_rows = reader.read_windows(reads, *window)
    for kind, query in queries.items():
        extract = erp.read(query, window, delta_link=delta_links.get(kind))
        stored = stored_rows[kind]
        found.modes[kind] = extract.mode
        found.delta_links[kind] = extract.delta_link
        if stored is None:  # nothing stored yet: nothing to correct
            found.documents[kind] = 0
            continue
        full = extract.mode != "delta"
        days, differs = differing_days(
            extract.frame, stored, query.keys, columns[kind], timezone, stored_days[kind], full, query.date_column
        )
        gone = removed_rows(stored, extract.removed_keys, {column: query.fields[column] for column in query.keys})
        if gone is None:  # removed keys we cannot match to ours: the next tick compares in full instead
            found.delta_links[kind] = None
        elif not gone.empty:
            removed_days = set(plant_days(gone[query.date_column], timezone)) & stored_days[kind]
            days |= removed_days
            differs = pd.concat([differs, gone[list(query.keys)].assign(removed=True)], ignore_index=True)
        found.documents[kind] = len(differs)
        digest.update(differs.sort_values(list(query.keys)).to_csv(index=False).encode())
        for day in days:
            found.days.setdefault(day, set()).add(kind)
    found.digest = digest.hexdigest()[:12]
    return found


def build_erp_change_sensor(
    source: ErpSource,
    timezone: str,
    job_name: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    names: InstanceNames | None = None,
) -> SensorDefinition:
    names = names or InstanceNames.single("erp")
    daily = site_daily_partitions(timezone)
    tracked = tracked_sets(source, names)

    @sensor(
        name=names.job("erp_document_changes"),
        job_name=job_name,
        minimum_interval_seconds=source.change_poll_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"ERP documents changed after their day was stored (delta links, {source.change_lookback_days}-day "
        f"look-back) -> {job_name} runs for the stored days they leave and enter.",
        required_resource_keys={names.resource_key, "warehouse_reader"},
    )
    def erp_document_changes(context: SensorEvaluationContext) -> SensorResult:
        erp: ErpResource = getattr(context.resources, names.resource_key)
        warehouse_reader: WarehouseReader = context.resources.warehouse_reader
        now = clock()
        cursor = json.loads(context.cursor) if context.cursor else {}
        last_full = cursor.get("full_read_at")
        links = cursor.get("delta_links", {})
        if last_full is None or now - datetime.fromisoformat(last_full) >= timedelta(hours=source.full_compare_hours):
            links = {}  # a delta never shows a deleted document, nor one that left the filter
        existing = set(daily.get_partition_keys(current_time=now))
        stored = {item.kind: context.instance.get_materialized_partitions(item.key) & existing for item in tracked}
        found = find_changed_days(erp, warehouse_reader, source, tracked, timezone, links, stored, now)
        summary = ", ".join(f"{t.kind}: {found.documents[t.kind]} differing ({found.modes[t.kind]})" for t in tracked)
        summary = f"ERP documents against stored days: {summary}; days to re-read: {sorted(found.days) or 'none'}"
        context.log.info(summary)
        # The run key names the day and what was seen: the same change seen twice asks once, a new one again.
        requests = [
            RunRequest(
                run_key=f"erp-changes:{day}:{found.digest}",
                partition_key=day,
                tags={CHANGE_TAG: ",".join(sorted(found.days[day]))},
            )
            for day in sorted(found.days)
        ]
        full = any(mode != "delta" for mode in found.modes.values())
        cursor = {"delta_links": found.delta_links, "full_read_at": now.isoformat() if full else last_full}
        return SensorResult(
            run_requests=requests, cursor=json.dumps(cursor, sort_keys=True), skip_reason=None if requests else summary
        )

    return erp_document_changes
