"""Workday: custom reports as a service (RaaS, JSON) and the REST API, read-only.

Written from Workday's published shapes (the RaaS OpenAPI description at apis.io/apis/workday/raas-api,
server `https://<host>/ccx/service/customreport2/<tenant>`, path `/<report owner>/<report name>`; the
REST collection example at apis.io/examples/workday-integrations/workday-integrations-list-workers-example;
the REST reference's limit/offset parameters, "default 20, maximum 100"):

- RaaS: `GET <owner>/<report>?format=json&<prompt>=<value>` -> `{"Report_Entry": [...]}`, one answer, no
  paging. Its fields and their xsd types come from the same URL with `?xsd` (the report's schema); a
  mapped field the report does not have is refused before any data is read. Date prompts are sent as
  Workday writes dates, `2026-11-01-06:00` (the plant's offset on that date).
- REST: `GET <resource>?limit=100&offset=k` -> `{"total": n, "data": [...]}` until `total` is reached.
  There is no schema endpoint: field types are declared in the config, and a mapped field absent from
  every row read is refused.
- Dates arrive as `2026-11-01`, or `2026-11-01-06:00` (a calendar date with an offset: the date is kept),
  and instants as ISO 8601 with an offset. An error body is `{"error": "...", "errors": [{"error",
  "field"}]}`; it is quoted in ours.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from gl_pipelines.resources.erp import EntityQuery, ErpExtract
from gl_pipelines.resources.http import HttpClient, HttpSourceError, HttpSourceResource
from gl_pipelines.resources.odata import EntitySet
from gl_pipelines.resources.rest_tables import VendorError, entity_of, typed_frame, validated, vendor_refusal

XSD_TYPES = {
    "string": "Edm.String",
    "decimal": "Edm.Decimal",
    "integer": "Edm.Int64",
    "int": "Edm.Int64",
    "long": "Edm.Int64",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
    "boolean": "Edm.Boolean",
    "double": "Edm.Double",
}
REST_PAGE_MAX = 100
_DATE_WITH_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})$")


def workday_error_detail(body: str) -> str | None:
    """The `error` and each `errors[].error` (with its field) of a Workday error body."""
    try:
        error = json.loads(body)
    except ValueError:
        return None
    if not isinstance(error, dict) or "error" not in error:
        return None
    parts = [str(error["error"])]
    for item in error.get("errors") or []:
        if isinstance(item, dict):
            parts.append(f"{item.get('field', '?')}: {item.get('error')}")
    return "; ".join(parts)


def workday_date(day: date, zone: ZoneInfo) -> str:
    """A date prompt as Workday writes dates: `2026-11-01-06:00`, the zone's offset at that midnight."""
    offset = datetime(day.year, day.month, day.day, tzinfo=zone).strftime("%z")
    return f"{day.isoformat()}{offset[:3]}:{offset[3:]}"


def plain_dates(rows: list[dict], entity: EntitySet) -> list[dict]:
    """Rows with each `2026-11-01-06:00` calendar date written `2026-11-01` (the offset says where, not when)."""
    dated = [name for name, prop in entity.properties.items() if prop.edm_type == "Edm.Date"]
    if not dated:
        return rows
    out = []
    for row in rows:
        fixed = dict(row)
        for name in dated:
            value = row.get(name)
            match = _DATE_WITH_OFFSET.match(value) if isinstance(value, str) else None
            if match:
                fixed[name] = match.group(1)
        out.append(fixed)
    return out


def xsd_fields(xsd_text: str, *, source: str) -> dict[str, str]:
    """Report field -> xsd type (local name) of the Report_Entry element of a RaaS `?xsd` schema."""
    try:
        root = ET.fromstring(xsd_text)
    except ET.ParseError as exc:
        raise VendorError(f"{source}: not an XML schema: {exc}") from None
    entry = next((el for el in root.iter() if el.tag.endswith("element") and el.get("name") == "Report_Entry"), None)
    if entry is None:
        raise VendorError(f"{source}: the report schema has no Report_Entry element")
    fields = {}
    for element in entry.iter():
        if element is entry or not element.tag.endswith("element") or not element.get("name"):
            continue
        fields[element.get("name")] = (element.get("type") or "string").rsplit(":", 1)[-1]
    return fields


def keep_dates_in_window(
    frame: pd.DataFrame, column: str | None, window: tuple[datetime, datetime] | None
) -> tuple[pd.DataFrame, int]:
    """Rows whose `column` lies in [start, end), and how many others the report returned (its prompts
    may be inclusive at both ends, or ignored)."""
    if window is None or column is None or frame.empty:
        return frame, 0
    when = frame[column]
    inside = (when >= pd.Timestamp(window[0])) & (when < pd.Timestamp(window[1]))
    return frame[inside.fillna(False)].reset_index(drop=True), int((~inside.fillna(False)).sum())


class WorkdayResource(HttpSourceResource):
    """One Workday tenant; `base_url` is its host root, e.g. https://wd2-impl-services1.workday.com/ccx/."""

    source_name: str = Field(default="workday", description="Recorded in each row's `source` column and in errors.")
    tenant: str = Field(min_length=1, description="Workday tenant name.")
    timezone: str = Field(default="UTC", description="Plant zone: dates are plant days in it.")

    def read_report(
        self,
        owner: str,
        query: EntityQuery,
        window: tuple[datetime, datetime] | None = None,
        prompts: Mapping[str, str] | None = None,
    ) -> ErpExtract:
        """Rows of RaaS report `query.entity_set` owned by `owner`. `prompts` names the report's start and
        end date prompts ({"start": "Start_Date", "end": "End_Date"}) that select the window's plant days."""
        return asyncio.run(self._report(owner, query, window, dict(prompts or {})))

    def read_collection(
        self,
        service: str,
        query: EntityQuery,
        types: Mapping[str, str],
        window: tuple[datetime, datetime] | None = None,
    ) -> ErpExtract:
        """Rows of REST collection `<service>/<tenant>/<query.entity_set>` (e.g. service `staffing/v6`);
        `types` gives each mapped field's xsd type (the REST API publishes no schema to read)."""
        return asyncio.run(self._collection(service, query, dict(types), window))

    async def _get(
        self, client: HttpClient, path: str, params: Any, what: str, accept: str = "application/json"
    ) -> Any:
        try:
            if accept == "application/json":
                return await client.get_json(path, params=params, parse_float=Decimal)
            return await client.get_text(path, params=params, accept=accept)
        except HttpSourceError as error:
            raise vendor_refusal(error, workday_error_detail(error.body_excerpt), what) from None

    async def _report(
        self, owner: str, query: EntityQuery, window: tuple[datetime, datetime] | None, prompts: dict[str, str]
    ) -> ErpExtract:
        began = time.perf_counter()
        path = f"service/customreport2/{self.tenant}/{owner}/{query.entity_set}"
        what = f"report {owner}/{query.entity_set}"
        zone = ZoneInfo(self.timezone)
        async with self.http_client() as client:
            schema = await self._get(client, f"{path}?xsd", None, what, accept="application/xml")
            source = f"{self.source_name}: {what}"
            entity = validated(
                entity_of(query.entity_set, xsd_fields(schema, source=source), XSD_TYPES, source=source),
                query,
                self.source_name,
            )
            params = {"format": "json"}
            if window is not None and prompts:
                first, last = (
                    window[0].astimezone(zone).date(),
                    (window[1] - timedelta(microseconds=1)).astimezone(zone),
                )
                params |= {prompts["start"]: workday_date(first, zone), prompts["end"]: workday_date(last.date(), zone)}
            body = await self._get(client, path, params, what)
            requests = client.stats["requests"]
        if not isinstance(body, dict) or not isinstance(body.get("Report_Entry"), list):
            raise VendorError(f'{source}: not a RaaS JSON answer (expected {{"Report_Entry": [...]}})')
        return self._extract(body["Report_Entry"], entity, query, window, f"GET {path}?{params}", 1, requests, began)

    async def _collection(
        self, service: str, query: EntityQuery, types: dict[str, str], window: tuple[datetime, datetime] | None
    ) -> ErpExtract:
        began = time.perf_counter()
        path = f"api/{service}/{self.tenant}/{query.entity_set}"
        source = f"{self.source_name}: {query.entity_set}"
        entity = validated(
            entity_of(query.entity_set, {query.fields[c]: t for c, t in types.items()}, XSD_TYPES, source=source),
            query,
            self.source_name,
        )
        rows: list[dict] = []
        pages = 0
        async with self.http_client() as client:
            total = None
            while total is None or len(rows) < total:
                body = await self._get(client, path, {"limit": REST_PAGE_MAX, "offset": len(rows)}, query.entity_set)
                if not isinstance(body, dict) or not isinstance(body.get("data"), list) or "total" not in body:
                    raise VendorError(f'{source}: not a Workday REST collection (expected {{"total", "data": [...]}})')
                pages += 1
                total = int(body["total"])
                if not body["data"] and len(rows) < total:
                    raise VendorError(f"{source}: total {total} but no data at offset {len(rows)}")
                rows += body["data"]
            requests = client.stats["requests"]
        absent = [f for f in query.fields.values() if rows and all(f not in row for row in rows)]
        if absent:
            raise VendorError(f"{source}: field {', '.join(map(repr, absent))} is in no row the API returned")
        return self._extract(rows, entity, query, window, f"GET {path}?limit={REST_PAGE_MAX}", pages, requests, began)

    def _extract(
        self,
        rows: list[dict],
        entity: EntitySet,
        query: EntityQuery,
        window: tuple[datetime, datetime] | None,
        described: str,
        pages: int,
        requests: int,
        began: float,
    ) -> ErpExtract:
        if not all(isinstance(row, dict) for row in rows):
            raise VendorError(f"{self.source_name}: {query.entity_set}: a row is not an object")
        typed = typed_frame(plain_dates(rows, entity), entity, query, ZoneInfo(self.timezone))
        frame, outside = keep_dates_in_window(typed.frame, query.date_column, window)
        mode = "full" if not outside else f"full ({outside} rows outside the window not kept)"
        return replace(typed, frame=frame).extract(query=described, pages=pages, requests=requests, began=began,
                                                   mode=mode)  # fmt: skip


class WorkdayReport(BaseModel):
    """One RaaS report stored per plant day: its owner, our column -> report field, keys and date column."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    owner: str = Field(min_length=1, description="The report owner (an integration system user), e.g. ISU_GL.")
    report: str = Field(min_length=1, description="The report's web service name, e.g. GL_Plant_Hours_Worked.")
    fields: dict[str, str] = Field(min_length=1, description="Our column -> report field.")
    keys: list[str] = Field(min_length=1, description="Our columns that identify one row.")
    date_column: str = Field(description="Our column holding the row's plant day (the partition).")
    start_prompt: str = Field(default="Start_Date", description="The report's first-date prompt.")
    end_prompt: str = Field(default="End_Date", description="The report's last-date prompt (inclusive).")

    def query(self) -> EntityQuery:
        return EntityQuery(self.report, dict(self.fields), tuple(self.keys), self.date_column)


class WorkdaySource(BaseModel):
    """A Workday tenant and the reports stored from it; the password or client secret comes from the environment."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(pattern=r"^https?://", description="Host root ending in /ccx/.")
    tenant: str = Field(min_length=1)
    source_name: str = Field(default="workday", description="Recorded in the `source` column.")
    auth: Literal["basic", "oauth2", "bearer"] = Field(default="basic", description="ISU basic auth or OAuth2.")
    username: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    reports: dict[str, WorkdayReport] = Field(default_factory=dict, description="Asset name suffix -> report.")


def workday_from_source(source: WorkdaySource, timezone: str, **secrets: Any) -> WorkdayResource:
    """The resource for one tenant; `secrets` (password, client_secret, token) are EnvVars."""
    return WorkdayResource(
        base_url=source.base_url,
        tenant=source.tenant,
        source_name=source.source_name,
        auth_mode=source.auth,
        username=source.username,
        token_url=source.token_url,
        client_id=source.client_id,
        timezone=timezone,
        **{key: value for key, value in secrets.items() if value is not None},
    )
