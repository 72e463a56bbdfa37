"""SAP OData v2 extraction: $metadata-validated, paged, delta-aware, read-only.

`ErpResource` reads one OData service through the shared HTTP layer (auth, retries, rate limit,
same-origin rule for `__next`). It reads `$metadata` once per resource instance (one per run),
checks the configured properties exist, then reads an entity set with `$select` and `$filter`:
client-driven windows of `$top`/`$skip` (fetched concurrently once `__count` is known), each
following the server's own `__next` pages. It returns a typed frame; it knows nothing of
partitions or the warehouse.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from typing import Any, ClassVar
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
from pydantic import Field, PrivateAttr

from gl_pipelines.config import ErpSource
from gl_pipelines.resources.http import HttpClient, HttpSourceError, HttpSourceResource
from gl_pipelines.resources.odata import (
    EntitySet,
    ODataError,
    Property,
    entity_rows,
    normalize_rows,
    parse_metadata,
    validate_fields,
    window_filter,
)

RESOURCE_VERSION = f"gl-pipelines-erp/1 httpx/{version('httpx')}"
DECIMAL_TYPE = pd.ArrowDtype(pa.decimal128(18, 3))
EXPIRED_DELTA_STATUS = (404, 410)


class ErpPagingError(ODataError):
    """Rows moved between pages ($skip windows shifted): a row may be lost; reading again fixes it."""


@dataclass(frozen=True)
class EntityQuery:
    """What to read from one entity set: our column -> OData property, the keys, the date to window on."""

    entity_set: str
    fields: Mapping[str, str]
    keys: Sequence[str]
    date_column: str | None = None
    filter: str | None = None


@dataclass(frozen=True)
class ErpExtract:
    """Rows of one read plus what an auditor needs to trace them."""

    frame: pd.DataFrame = field(repr=False)
    mode: str  # "full", "delta", or "full (delta token refused: ...)"
    query: str
    delta_link: str | None
    server_count: int | None
    pages: int
    requests: int
    duplicates_dropped: int
    payload_sha256: str
    duration_s: float
    removed_keys: tuple[dict[str, str], ...] = ()
    """Entities a delta answer reported removed (OData v4), by their key properties; not in `frame`."""


def to_exact_decimals(frame: pd.DataFrame, entity: EntitySet, query: EntityQuery) -> pd.DataFrame:
    """Edm.Decimal columns -> DECIMAL(18,3) (pandas ArrowDtype): exact, and a fixed warehouse type.

    A value needing more than 3 decimals or 15 integer digits is refused with its key, not rounded.
    """
    out = frame.copy()
    for column, prop in query.fields.items():
        if entity.properties[prop].edm_type != "Edm.Decimal":
            continue
        values = list(out[column])
        try:
            out[column] = pd.array(values, dtype=DECIMAL_TYPE)
        except (pa.ArrowInvalid, TypeError):
            for position, value in enumerate(values):
                if value is not None and (value != value.quantize(Decimal("0.001")) or abs(value) >= Decimal(10) ** 15):
                    key = {k: out[k].iloc[position] for k in query.keys}
                    raise ODataError(
                        f"{query.entity_set}.{prop} = {value} for {key}: does not fit DECIMAL(18,3); refusing to round"
                    ) from None
            raise
    return out


def deduplicate(frame: pd.DataFrame, keys: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """One row per key, the last one read winning (a document changed while we paged)."""
    if frame.empty:
        return frame, 0
    unique = frame.drop_duplicates(subset=list(keys), keep="last").reset_index(drop=True)
    return unique, len(frame) - len(unique)


def merge_delta(previous: pd.DataFrame, changes: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """A stored full read updated by a delta read: changed documents replace, new ones are added."""
    if changes.empty:
        return previous.reset_index(drop=True)
    merged = pd.concat([previous, changes], ignore_index=True)
    return merged.drop_duplicates(subset=list(keys), keep="last").reset_index(drop=True)


class _Reader:
    """One extraction's running counters and payload digest; `resource` gives the dialect's wire rules."""

    def __init__(self, client: HttpClient, resource: ErpResource) -> None:
        self.client = client
        self.resource = resource
        self.source = resource.source_name
        self.pages = 0
        self.digest = hashlib.sha256()

    async def page(self, url: str, params: dict | None) -> tuple[list[dict], str | None, str | None, int | None]:
        # Edm.Decimal sent as a JSON number (OData v4, some v2 servers) must not pass through float.
        payload = await self.client.get_json(
            url, params=params, parse_float=Decimal, accept=self.resource.accept, headers=self.resource.prefer()
        )
        rows, next_link, delta, count = self.resource.collection(payload, f"{self.source}: {url.split('?')[0]}")
        self.pages += 1
        return rows, next_link, delta, count

    async def chain(self, url: str, params: dict | None) -> tuple[list[dict], str | None, int | None]:
        """One request and every `__next` page after it (each link checked for origin by the client)."""
        rows, next_link, delta, count = await self.page(url, params)
        followed: set[str] = set()
        while next_link:
            if next_link in followed:  # a server handing out the same page again would loop forever
                raise ODataError(
                    f"{self.source}: {url.split('?')[0]}: {self.resource.next_link_name} repeats {next_link!r}"
                )
            followed.add(next_link)
            more, next_link, delta, _ = await self.page(next_link, None)
            rows += more
        return rows, delta, count


class ErpResource(HttpSourceResource):
    """One SAP OData v2 service (Gateway dialect), read-only."""

    source_name: str = Field(default="erp", description="Recorded in each row's `source` column and in errors.")
    health_path: str = Field(default="$metadata", description="Path GET by health_check(), relative to base_url.")
    page_size: int | None = Field(
        default=5000, gt=0, description="$top per request (client-driven windows); None = only the server's __next."
    )
    timezone: str = Field(default="UTC", description="Plant zone: calendar-date properties are plant days in it.")

    _metadata: dict[str, EntitySet] | None = PrivateAttr(default=None)

    # The OData v2 wire rules; resources/odata_v4.py overrides them for v4.
    accept: ClassVar[str] = "application/json"
    next_link_name: ClassVar[str] = "__next"
    count_params: ClassVar[Mapping[str, str]] = {"$inlinecount": "allpages"}
    format_params: ClassVar[Mapping[str, str]] = {"$format": "json"}

    def prefer(self) -> dict[str, str]:
        """Headers asking the server for a paging or change-tracking behaviour (none in v2)."""
        return {}

    def collection(self, payload: object, source: str) -> tuple[list[dict], str | None, str | None, int | None]:
        """(rows, next link, delta link, count) of one collection response."""
        return entity_rows(payload, source=source)

    def parse_metadata(self, text: str, source: str) -> dict[str, EntitySet]:
        return parse_metadata(text, source=source)

    def split_removed(self, rows: list[dict], entity: EntitySet) -> tuple[list[dict], list[dict[str, str]]]:
        """(changed rows, keys of removed entities) of a read; a v2 delta reports no removals."""
        return rows, []

    def window_filter(self, prop: Property, start: datetime, end: datetime) -> str:
        return window_filter(prop, start, end, ZoneInfo(self.timezone))

    def metadata(self) -> dict[str, EntitySet]:
        """$metadata, read once per resource instance (Dagster makes one per run)."""
        return asyncio.run(self._with_client(self._ametadata))

    def read(
        self,
        query: EntityQuery,
        window: tuple[datetime, datetime] | None = None,
        delta_link: str | None = None,
    ) -> ErpExtract:
        """Rows of `query` (inside `window` on its date column, if given), or only the changes since
        `delta_link`; a refused (expired) delta token falls back to a full read."""
        return asyncio.run(self._with_client(lambda client: self._aread(client, query, window, delta_link)))

    async def _with_client(self, work):
        async with self.http_client() as client:
            return await work(client)

    async def _ametadata(self, client: HttpClient) -> dict[str, EntitySet]:
        if self._metadata is None:
            text = await client.get_text("$metadata", accept="application/xml")
            self._metadata = self.parse_metadata(text, f"{self.source_name}: {self.safe_endpoint}$metadata")
        return self._metadata

    def _validated(self, metadata: dict[str, EntitySet], query: EntityQuery) -> EntitySet:
        try:
            return validate_fields(metadata, query.entity_set, query.fields.values())
        except ODataError as exc:
            raise type(exc)(f"{self.source_name}: {exc}") from None

    def _filter(self, entity: EntitySet, query: EntityQuery, window: tuple[datetime, datetime] | None) -> str:
        parts = [query.filter] if query.filter else []
        if window is not None:
            if not query.date_column:
                raise ValueError(f"{query.entity_set}: a window needs a date column")
            prop = entity.properties[query.fields[query.date_column]]
            parts.append(self.window_filter(prop, window[0], window[1]))
        return " and ".join(parts)

    async def _aread(
        self,
        client: HttpClient,
        query: EntityQuery,
        window: tuple[datetime, datetime] | None,
        delta_link: str | None,
    ) -> ErpExtract:
        began = time.perf_counter()
        entity = self._validated(await self._ametadata(client), query)
        reader = _Reader(client, self)
        params = {**self.format_params, "$select": ",".join(dict.fromkeys(query.fields.values()))}
        if entity.keys:
            # OData promises no order without $orderby: $skip windows over a shifting order lose rows.
            params["$orderby"] = ",".join(entity.keys)
        filter_text = self._filter(entity, query, window)
        if filter_text:
            params["$filter"] = filter_text
        mode = "full"
        rows: list[dict] | None = None
        count = delta = None
        if delta_link:
            try:
                rows, delta, count = await reader.chain(delta_link, None)
                mode = "delta"
            except HttpSourceError as exc:
                if exc.status not in EXPIRED_DELTA_STATUS:
                    raise
                mode = f"full (delta token refused: HTTP {exc.status})"
        if rows is None:
            rows, delta, count = await self._full(reader, query.entity_set, params)
        # Rows in query order (windows by $skip, pages by __next), so the digest is reproducible.
        reader.digest.update(json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str).encode())
        rows, removed = self.split_removed(rows, entity)
        frame = normalize_rows(rows, entity, query.fields, ZoneInfo(self.timezone))
        frame, duplicates = deduplicate(frame, query.keys)
        if mode != "delta" and count is not None and len(frame) != count:
            raise ErpPagingError(
                f"{self.source_name}: {query.entity_set} changed while it was paged: the server counted {count} "
                f"rows, {len(frame)} distinct keys were read ({duplicates} seen twice); a re-read is needed"
            )
        frame = to_exact_decimals(frame, entity, query)
        described = f"GET {query.entity_set}?" + "&".join(f"{k}={v}" for k, v in params.items())
        return ErpExtract(
            frame=frame,
            mode=mode,
            query=described,
            delta_link=delta,
            server_count=count,
            pages=reader.pages,
            requests=client.stats["requests"],
            duplicates_dropped=duplicates,
            payload_sha256=reader.digest.hexdigest(),
            duration_s=time.perf_counter() - began,
            removed_keys=tuple(removed),
        )

    async def _full(self, reader: _Reader, url: str, params: dict) -> tuple[list[dict], str | None, int | None]:
        if self.page_size is None:
            return await reader.chain(url, {**params, **self.count_params})
        top = self.page_size
        first, delta, count = await reader.chain(url, {**params, **self.count_params, "$top": top, "$skip": 0})
        if count is None:
            # No __count: walk windows one after another until a short one.
            rows, skip = list(first), top
            window_rows = first
            while len(window_rows) >= top:
                window_rows, delta, _ = await reader.chain(url, {**params, "$top": top, "$skip": skip})
                rows += window_rows
                skip += top
            return rows, delta, None
        rest = await asyncio.gather(
            *(reader.chain(url, {**params, "$top": top, "$skip": skip}) for skip in range(top, count, top))
        )
        rows = list(first)
        for window_rows, window_delta, _ in rest:
            rows += window_rows
            delta = window_delta or delta
        return rows, delta, count


def erp_from_source(
    source: ErpSource,
    timezone: str,
    *,
    client_id: Any = None,
    client_secret: Any = None,
    username: Any = None,
    password: Any = None,
) -> ErpResource:
    """The resource for a site's `erp:` section; credentials are EnvVars (or None) from definitions."""
    return ErpResource(
        base_url=source.service_url,
        source_name=source.source_name,
        auth_mode=source.auth,
        token_url=urljoin(source.service_url, source.token_url) if source.token_url else None,
        client_id=client_id,
        client_secret=client_secret,
        username=username,
        password=password,
        page_size=source.page_size,
        timezone=timezone,
    )
