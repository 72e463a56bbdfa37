"""Oracle Fusion Cloud ERP REST (`/fscmRestApi/resources/11.13.18.05/`), read-only.

Written from Oracle's "REST API for Oracle Fusion Cloud" guides (the "Navigate a Collection" and
"Filter a Collection" task pages shared by every Fusion REST API, e.g. docs.oracle.com/en/cloud/saas/
human-resources/farws/Navigate_a_Collection.html) and the ADF REST framework's `describe`:

- A resource's attributes and types come from `GET <resource>/describe`
  (`{"Resources": {"<resource>": {"attributes": [{"name", "type"}, ...]}}}`); a mapped field that is not
  there is refused before any data is read.
- A collection is `{"items": [...], "count", "hasMore", "limit", "offset", "totalResults"}`; pages are
  `limit`/`offset` until `hasMore` is false, with `onlyData=true` (no per-item links), `fields=` (the
  mapped attributes only), `totalResults=true` (the count is checked) and `orderBy` on the keys.
- Filters are `q=` expressions (`REST-Framework-Version: 4`): `AccountingDate >= '2026-11-01' and
  AccountingDate < '2026-11-02'` for a `date` attribute (a plant day), ISO 8601 instants with an offset
  for a `datetime` one. Oracle sends dates as `2026-11-01` and datetimes as `2026-11-01T05:00:00.000+00:00`.
- An error is `application/vnd.oracle.adf.error+json` `{"title", "status", "o:errorDetails": [{"detail",
  "o:errorCode"}]}`; its detail and code are quoted in ours.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from pydantic import Field

from gl_pipelines.config import ErpSource
from gl_pipelines.resources.erp import EntityQuery, ErpExtract, ErpPagingError
from gl_pipelines.resources.http import HttpClient, HttpSourceError, HttpSourceResource
from gl_pipelines.resources.odata import EntitySet, ODataError, checked_count, checked_rows, plant_dates
from gl_pipelines.resources.rest_tables import VendorError, entity_of, typed_frame, validated, vendor_refusal

ORACLE_TYPES = {
    "string": "Edm.String",
    "number": "Edm.Decimal",
    "integer": "Edm.Int64",
    "date": "Edm.Date",
    "datetime": "Edm.DateTimeOffset",
    "boolean": "Edm.Boolean",
}
FRAMEWORK_VERSION = "4"


def oracle_error_detail(body: str) -> str | None:
    """`detail (o:errorCode ...)` of each entry of an ADF REST error body; None when the body is not one."""
    try:
        error = json.loads(body)
    except ValueError:
        return None
    details = error.get("o:errorDetails") if isinstance(error, dict) else None
    if not isinstance(details, list) or not details:
        return error.get("detail") or error.get("title") if isinstance(error, dict) else None
    return "; ".join(
        f"{item.get('detail')}" + (f" (o:errorCode {item['o:errorCode']})" if item.get("o:errorCode") else "")
        for item in details
        if isinstance(item, dict)
    )


def oracle_window(name: str, kind: str, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """`q=` expression selecting [start, end) on a `date` (by plant date) or `datetime` attribute."""
    if kind == "Edm.Date":
        first, after = plant_dates(start, end, zone)
        return f"{name} >= '{first.isoformat()}' and {name} < '{after.isoformat()}'"
    if kind == "Edm.DateTimeOffset":
        low, high = (bound.astimezone(UTC).isoformat(timespec="seconds") for bound in (start, end))
        return f"{name} >= '{low}' and {name} < '{high}'"
    raise ODataError(f"attribute {name!r} is {kind}, not a date; cannot filter a time window")


def oracle_page(payload: object, *, source: str) -> tuple[list[dict], bool, int | None]:
    """(items, hasMore, totalResults) of one collection page."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise VendorError(f'{source}: not an Oracle REST collection (expected {{"items": [...], "hasMore": ...}})')
    items = checked_rows(payload["items"], source=source, where="items")
    has_more = payload.get("hasMore")
    if not isinstance(has_more, bool):
        raise VendorError(f"{source}: hasMore is {has_more!r}, not true or false")
    return items, has_more, checked_count(payload.get("totalResults"), source=source, name="totalResults")


class OracleFusionResource(HttpSourceResource):
    """One Oracle Fusion Cloud REST API root, e.g. https://<pod>.fa.ocs.oraclecloud.com/fscmRestApi/resources/11.13.18.05.

    `read` answers as `ErpResource.read` does (an `ErpExtract`), so the ERP assets take it as their `erp`.
    """

    source_name: str = Field(default="oracle-fusion", description="Recorded in each row's `source` column and errors.")
    health_path: str = Field(default="", description="Path GET by health_check(), relative to base_url.")
    limit: int = Field(default=500, gt=0, le=500, description="Items per page (`limit`; Oracle caps it at 500).")
    timezone: str = Field(default="UTC", description="Plant zone: `date` attributes are plant days in it.")

    def read(
        self, query: EntityQuery, window: tuple[datetime, datetime] | None = None, delta_link: str | None = None
    ) -> ErpExtract:
        """Items of `query.entity_set` (the REST resource name), inside `window` on its date column if given.

        Fusion REST has no delta token: `delta_link` (asked by the ERP change sensor) is ignored and the
        read is always full, so the sensor compares the whole look-back window and sees deletions too."""
        return asyncio.run(self._read(query, window))

    async def _read(self, query: EntityQuery, window: tuple[datetime, datetime] | None) -> ErpExtract:
        began = time.perf_counter()
        async with self.http_client() as client:
            entity = validated(await self._describe(client, query.entity_set), query, self.source_name)
            params = {
                "onlyData": "true",
                "totalResults": "true",
                "fields": ",".join(dict.fromkeys(query.fields.values())),
                "orderBy": ",".join(f"{query.fields[key]}:asc" for key in query.keys),
                "limit": str(self.limit),
            }
            clauses = [query.filter] if query.filter else []
            if window is not None:
                prop = entity.properties[query.fields[query.date_column]]
                clauses.append(oracle_window(prop.name, prop.edm_type, *window, ZoneInfo(self.timezone)))
            if clauses:
                params["q"] = " and ".join(clauses)
            rows, pages, total = await self._pages(client, query.entity_set, params)
            requests = client.stats["requests"]
        typed = typed_frame(rows, entity, query, ZoneInfo(self.timezone))
        if total is not None and len(typed.frame) != total:
            raise ErpPagingError(
                f"{self.source_name}: {query.entity_set} changed while it was paged: totalResults was {total}, "
                f"{len(typed.frame)} distinct keys were read ({typed.duplicates} seen twice); a re-read is needed"
            )
        described = f"GET {query.entity_set}?" + "&".join(f"{k}={v}" for k, v in params.items())
        return typed.extract(query=described, pages=pages, requests=requests, began=began, server_count=total)

    async def _get(self, client: HttpClient, path: str, params: dict | None = None) -> Any:
        try:
            return await client.get_json(
                path, params=params, parse_float=Decimal, headers={"REST-Framework-Version": FRAMEWORK_VERSION}
            )
        except HttpSourceError as error:
            raise vendor_refusal(error, oracle_error_detail(error.body_excerpt), path) from None

    async def _describe(self, client: HttpClient, resource: str) -> EntitySet:
        body = await self._get(client, f"{resource}/describe")
        source = f"{self.source_name}: {resource}/describe"
        try:
            attributes = body["Resources"][resource]["attributes"]
            types = {str(a["name"]): str(a["type"]) for a in attributes}
        except (KeyError, TypeError):
            raise VendorError(f"{source}: not an ADF describe document (Resources.{resource}.attributes)") from None
        return entity_of(resource, types, ORACLE_TYPES, source=source)

    async def _pages(self, client: HttpClient, resource: str, params: dict) -> tuple[list[dict], int, int | None]:
        rows: list[dict] = []
        pages, total, has_more = 0, None, True
        while has_more:
            payload = await self._get(client, resource, {**params, "offset": str(len(rows))})
            items, has_more, page_total = oracle_page(payload, source=f"{self.source_name}: {resource}")
            pages += 1
            total = page_total if page_total is not None else total
            if has_more and not items:  # an empty page that promises more would loop forever
                raise VendorError(f"{self.source_name}: {resource}: hasMore with no items at offset {len(rows)}")
            rows += items
        return rows, pages, total


class OracleFusionSource(ErpSource):
    """An Oracle Fusion Cloud ERP as the site's ERP: the same entities, columns, units and checks as the
    SAP OData `erp:` section (`entity_set` is the REST resource name, `filter` a `q=` expression), so the
    ERP assets read it unchanged. Credentials come from the environment (EnvVar) only."""

    service_url: str = Field(pattern=r"^https?://", description="REST root, .../fscmRestApi/resources/11.13.18.05/.")
    auth: Literal["none", "basic", "oauth2"] = Field(default="basic", description="Basic (integration user) or OAuth2.")
    page_size: int | None = Field(default=500, gt=0, le=500, description="`limit` per page (Oracle caps it at 500).")
    change_poll_seconds: int = Field(
        default=3600,
        ge=30,
        description="How often the change sensor compares; hourly, as with no delta token each look reads the "
        "whole look-back window.",
    )


def oracle_fusion_from_source(source: OracleFusionSource, timezone: str, **secrets: Any) -> OracleFusionResource:
    """The resource for one instance; `secrets` (username, password, client_id, client_secret) are EnvVars."""
    return OracleFusionResource(
        base_url=source.service_url,
        source_name=source.source_name,
        auth_mode=source.auth,
        token_url=urljoin(source.service_url, source.token_url) if source.token_url else None,
        limit=source.page_size or 500,
        timezone=timezone,
        **{key: value for key, value in secrets.items() if value is not None},
    )
