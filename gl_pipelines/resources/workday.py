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
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
        params: Mapping[str, str] | None = None,
    ) -> ErpExtract:
        """Rows of RaaS report `query.entity_set` owned by `owner`. `prompts` names the report's start and
        end date prompts ({"start": "Start_Date", "end": "End_Date"}) that select the window's plant days;
        `params` are further prompts sent as they are."""
        return asyncio.run(self._report(owner, query, window, dict(prompts or {}), dict(params or {})))

    def read_collection(
        self,
        service: str,
        query: EntityQuery,
        types: Mapping[str, str],
        window: tuple[datetime, datetime] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> ErpExtract:
        """Rows of REST collection `<service>/<tenant>/<query.entity_set>` (e.g. service `staffing/v6`);
        `types` gives each mapped field's xsd type (the REST API publishes no schema to read); `params` are
        further query parameters (filters) sent with every page."""
        return asyncio.run(self._collection(service, query, dict(types), window, dict(params or {})))

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
        self,
        owner: str,
        query: EntityQuery,
        window: tuple[datetime, datetime] | None,
        prompts: dict[str, str],
        extra: dict[str, str],
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
            params = {**extra, "format": "json"}
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
        return self._extract(
            body["Report_Entry"], entity, query, window, f"GET {path}?{urlencode(params)}", 1, requests, began
        )

    async def _collection(
        self,
        service: str,
        query: EntityQuery,
        types: dict[str, str],
        window: tuple[datetime, datetime] | None,
        extra: dict[str, str],
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
                page = {**extra, "limit": REST_PAGE_MAX, "offset": len(rows)}
                body = await self._get(client, path, page, query.entity_set)
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
        described = f"GET {path}?{urlencode({**extra, 'limit': REST_PAGE_MAX})}"
        return self._extract(rows, entity, query, window, described, pages, requests, began)

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


class WorkdaySet(BaseModel):
    """What a report and a collection share with an OData entity set: asset name, our column -> Workday field,
    key, optional date column (daily partitions on the site's clock; none: replaced whole), required columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Asset name, e.g. hours_worked.")
    fields: dict[str, str] = Field(min_length=1, description="Our column -> Workday field.")
    key: list[str] = Field(min_length=1, description="Columns that identify a row (checked unique).")
    date_column: str | None = Field(default=None, description="Column the daily partitions window on.")
    required: list[str] = Field(default=[], description="Columns every row must have (checked not null).")
    filter: dict[str, str] = Field(
        default={}, description="Extra query parameters Workday filters on (RaaS prompts, REST query parameters)."
    )
    description: str | None = None

    @model_validator(mode="after")
    def _columns_mapped(self) -> WorkdaySet:
        named = [*self.key, *self.required, *([self.date_column] if self.date_column else [])]
        missing = [column for column in named if column not in self.fields]
        if missing:
            raise ValueError(f"{self.name}: {', '.join(missing)} must be in fields")
        return self

    @property
    def path(self) -> str:
        """The report or resource name, as `EntityQuery.entity_set` and in errors."""
        raise NotImplementedError

    def query(self) -> EntityQuery:
        return EntityQuery(self.path, dict(self.fields), tuple(self.key), self.date_column)


class WorkdayReport(WorkdaySet):
    """A custom report as a service (RaaS): its owner and web service name, and its date prompts."""

    owner: str = Field(min_length=1, description="The report owner (an integration system user), e.g. ISU_GL.")
    report: str = Field(min_length=1, description="The report's web service name, e.g. GL_Plant_Hours_Worked.")
    start_prompt: str = Field(default="Start_Date", description="The report's first-date prompt.")
    end_prompt: str = Field(default="End_Date", description="The report's last-date prompt (inclusive).")

    @property
    def path(self) -> str:
        return self.report

    @property
    def prompts(self) -> dict[str, str]:
        return {"start": self.start_prompt, "end": self.end_prompt}


class WorkdayCollection(WorkdaySet):
    """A REST API collection, e.g. service staffing/v6, resource workers; it publishes no schema, so each
    mapped column's xsd type is declared here."""

    service: str = Field(pattern=r"^[A-Za-z]\w*/v\d+$", description="API service and version, e.g. staffing/v6.")
    resource: str = Field(min_length=1, description="Collection under the tenant, e.g. workers.")
    types: dict[str, str] = Field(
        default={}, description="Our column -> xsd type (string, decimal, date, dateTime, boolean...); default string."
    )

    @model_validator(mode="after")
    def _types_known(self) -> WorkdayCollection:
        unknown = [f"{column}: {kind}" for column, kind in self.types.items() if kind not in XSD_TYPES]
        unmapped = [column for column in self.types if column not in self.fields]
        if unknown or unmapped:
            raise ValueError(
                f"{self.name}: "
                + "; ".join([f"type {item!r} is not one of {', '.join(XSD_TYPES)}" for item in unknown]
                            + [f"types names {column!r}, which is not in fields" for column in unmapped])
            )  # fmt: skip
        return self

    @property
    def path(self) -> str:
        return self.resource

    def column_types(self) -> dict[str, str]:
        return {column: self.types.get(column, "string") for column in self.fields}


class WorkdaySource(BaseModel):
    """A Workday tenant and the reports and collections stored from it; secrets come from the environment."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(pattern=r"^https?://", description="Host root ending in /ccx/.")
    tenant: str = Field(min_length=1, description="Workday tenant name.")
    source_name: str = Field(default="workday", description="Recorded in the `source` column and in errors.")
    auth: Literal["basic", "oauth2", "bearer"] = Field(
        default="basic", description="Integration system user (basic), OAuth2 client credentials or a bearer token."
    )
    token_url: str | None = Field(default=None, description="OAuth2 token endpoint (auth oauth2).")
    reports: list[WorkdayReport] = Field(default=[], description="RaaS reports, one asset each.")
    collections: list[WorkdayCollection] = Field(default=[], description="REST collections, one asset each.")

    @model_validator(mode="after")
    def _sets(self) -> WorkdaySource:
        names = [item.name for item in (*self.reports, *self.collections)]
        if not names:
            raise ValueError("no report or collection: give reports or collections")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate report or collection name {duplicates[0]!r}")
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth 'oauth2' needs token_url")
        return self

    def sets(self) -> list[WorkdayReport | WorkdayCollection]:
        return [*self.reports, *self.collections]


def workday_from_source(source: WorkdaySource, timezone: str, **options: Any) -> WorkdayResource:
    """The resource for one tenant; `options` are further resource fields (health_path) and the secrets
    (username, password, client_id, client_secret, token) as EnvVars."""
    return WorkdayResource(
        base_url=source.base_url,
        tenant=source.tenant,
        source_name=source.source_name,
        auth_mode=source.auth,
        token_url=source.token_url,
        timezone=timezone,
        **{key: value for key, value in options.items() if value is not None},
    )
