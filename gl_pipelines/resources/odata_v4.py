"""OData v4 (Dynamics 365 Finance & Operations / Dataverse, SAP S/4HANA Cloud): the v2 reader with v4's wire rules.

`ODataV4Resource` is an `ErpResource`, so the ERP assets, checks and provenance take it unchanged; only
what differs on the wire is overridden (OData v4.0 Part 1 "Protocol" and "JSON Format"):

- `$metadata` is CSDL v4 (`edmx:Edmx Version="4.0"`); a v2 document is refused, naming the instance.
- A collection is `{"value": [...], "@odata.count", "@odata.nextLink", "@odata.deltaLink"}`;
  `$count=true` replaces `$inlinecount`, and there is no `$format` (the Accept header asks for JSON).
- `Accept: application/json;odata.metadata=minimal;IEEE754Compatible=true` lets the server send
  Edm.Decimal / Edm.Int64 as strings; numbers are read exactly either way (parse_float=Decimal).
- `$filter` literals are bare: `PostingDate ge 2026-11-01T05:00:00Z` (Edm.DateTimeOffset, UTC) and
  `ge 2026-11-01` (Edm.Date, a plant day).
- `Prefer: odata.maxpagesize=N` asks for server-driven pages (Dataverse refuses `$skip`: set
  `page_size: null`); `Prefer: odata.track-changes` asks for an `@odata.deltaLink`. A delta answer lists
  changed entities and removed ones (4.0 `$deletedEntity` context or 4.01 `@removed`); removed keys are
  returned apart, never as rows.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urljoin
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import Field, model_validator

from gl_pipelines.config import ErpSource
from gl_pipelines.resources.erp import ErpResource
from gl_pipelines.resources.odata import (
    EntitySet,
    ODataError,
    Property,
    checked_count,
    checked_rows,
    parse_metadata,
    window_bounds,
)

V4_ACCEPT = "application/json;odata.metadata=minimal;IEEE754Compatible=true"
_KEY_PART = re.compile(r"(?:(\w+)=)?('(?:[^']|'')*'|[^,]+)")


def csdl_v4_metadata(xml_text: str, *, source: str) -> dict[str, EntitySet]:
    """A CSDL v4 `$metadata` document -> entity sets; a v2/v3 EDMX is refused (its JSON differs)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ODataError(f"{source}: not an EDMX document: {exc}") from None
    if _local_name(root.tag) != "Edmx":  # e.g. a sign-in page that happens to be well-formed XHTML
        raise ODataError(f"{source}: not an EDMX document (root element <{_local_name(root.tag)}>)")
    version = root.get("Version", "")
    if not version.startswith("4."):
        raise ODataError(f"{source}: EDMX Version {version or 'missing'!r} is not OData v4 (use the v2 ERP resource)")
    return parse_metadata(xml_text, source=source)


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _v4_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def v4_window_filter(prop: Property, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """`$filter` selecting `[start, end)` on a date property (see odata.window_bounds), with v4's bare
    literals: plant dates for an Edm.Date, UTC instants otherwise."""
    low, high = window_bounds(prop, start, end, zone)
    if prop.edm_type == "Edm.Date":
        return f"{prop.name} ge {low.date().isoformat()} and {prop.name} lt {high.date().isoformat()}"
    return f"{prop.name} ge {_v4_instant(low)} and {prop.name} lt {_v4_instant(high)}"


def _removed(row: Mapping[str, Any]) -> bool:
    return "@removed" in row or str(row.get("@odata.context", "")).endswith("$deletedEntity")


def removed_key(row: Mapping[str, Any], entity: EntitySet, *, source: str) -> dict[str, str]:
    """The key of a removed entity: its key properties if sent (4.01), else parsed from its id
    (`GoodsReceipts(Document='1',Item='0001')` or `Plants('1000')`)."""
    if all(key in row for key in entity.keys):
        return {key: str(row[key]) for key in entity.keys}
    ident = row.get("@id") or row.get("id") or row.get("@odata.id")
    match = re.search(r"\(([^()]*)\)\s*$", str(ident or ""))
    if not match:
        raise ODataError(f"{source}: removed entity without its key or a readable id: {str(ident)[:80]!r}")
    parts = [(name, value) for name, value in _KEY_PART.findall(match.group(1))]
    if len(parts) != len(entity.keys) or (len(parts) > 1 and any(not name for name, _ in parts)):
        raise ODataError(f"{source}: removed entity id {ident!r} does not match the keys {', '.join(entity.keys)}")
    values = {name or entity.keys[0]: unquote(value.strip("'").replace("''", "'")) for name, value in parts}
    return {key: values[key] for key in entity.keys}


def v4_collection(payload: object, *, source: str) -> tuple[list[dict], str | None, str | None, int | None]:
    """(rows, `@odata.nextLink`, `@odata.deltaLink`, `@odata.count`) of an OData v4 JSON collection."""
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise ODataError(f'{source}: not an OData v4 collection (expected {{"value": [...]}})')
    rows = checked_rows(payload["value"], source=source, where="value")
    count = checked_count(payload.get("@odata.count"), source=source, name="@odata.count")
    return rows, payload.get("@odata.nextLink"), payload.get("@odata.deltaLink"), count


def split_removed(rows: list[dict], entity: EntitySet, *, source: str) -> tuple[list[dict], list[dict[str, str]]]:
    """A delta answer's changed rows, and the keys of the entities it reports removed."""
    if not any(_removed(row) for row in rows):
        return rows, []
    kept = [row for row in rows if not _removed(row)]
    return kept, [removed_key(row, entity, source=source) for row in rows if _removed(row)]


def drop_removed(
    frame: pd.DataFrame, removed: Sequence[Mapping[str, str]], key_columns: Mapping[str, str]
) -> pd.DataFrame:
    """`frame` without the rows whose key (our columns -> OData key properties) was reported removed."""
    if not removed or frame.empty:
        return frame
    gone = {tuple(key[prop] for prop in key_columns.values()) for key in removed}
    labels = frame[list(key_columns)].astype(str).itertuples(index=False, name=None)
    return frame[[label not in gone for label in labels]].reset_index(drop=True)


class ODataV4Resource(ErpResource):
    """One OData v4 service (Dynamics 365, S/4HANA Cloud, SAP CAP, any CSDL v4 server), read-only."""

    source_name: str = Field(default="odata-v4", description="Recorded in each row's `source` column and in errors.")
    max_page_size: int | None = Field(
        default=None,
        gt=0,
        description="Sent as `Prefer: odata.maxpagesize` (server-driven pages, followed by @odata.nextLink).",
    )
    track_changes: bool = Field(
        default=False,
        description="Send `Prefer: odata.track-changes` so a service that offers delta returns an @odata.deltaLink.",
    )

    accept: ClassVar[str] = V4_ACCEPT
    next_link_name: ClassVar[str] = "@odata.nextLink"
    count_params: ClassVar[Mapping[str, str]] = {"$count": "true"}
    format_params: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="after")
    def _one_delta_token(self) -> ODataV4Resource:
        # Concurrent $skip windows would each get their own delta token; one is meaningless for the others.
        if self.track_changes and self.page_size is not None:
            raise ValueError(f"{self.source_name}: track_changes needs page_size: null (server-driven pages only)")
        return self

    def prefer(self) -> dict[str, str]:
        wanted = [f"odata.maxpagesize={self.max_page_size}"] if self.max_page_size else []
        wanted += ["odata.track-changes"] if self.track_changes else []
        return {"Prefer": ", ".join(wanted)} if wanted else {}

    def collection(self, payload: object, source: str) -> tuple[list[dict], str | None, str | None, int | None]:
        return v4_collection(payload, source=source)

    def parse_metadata(self, text: str, source: str) -> dict[str, EntitySet]:
        return csdl_v4_metadata(text, source=source)

    def window_filter(self, prop: Property, start: datetime, end: datetime) -> str:
        return v4_window_filter(prop, start, end, ZoneInfo(self.timezone))

    def split_removed(self, rows: list[dict], entity: EntitySet) -> tuple[list[dict], list[dict[str, str]]]:
        return split_removed(rows, entity, source=f"{self.source_name}: {entity.name}")


class ODataV4Source(ErpSource):
    """An OData v4 ERP (Dynamics 365 F&O / Dataverse, S/4HANA Cloud): the ERP entities plus v4's options.

    Same entities, columns, units and checks as the SAP OData v2 `erp:` section; only the wire differs.
    """

    token_client_auth: Literal["basic", "post"] = Field(
        default="basic",
        description="basic: client id/secret as HTTP Basic (SAP XSUAA); post: in the form body (Entra ID).",
    )
    scope: str | None = Field(
        default=None, description="OAuth2 scope, e.g. https://<org>.operations.dynamics.com/.default (Entra ID)."
    )
    max_page_size: int | None = Field(default=None, gt=0, description="Prefer: odata.maxpagesize.")
    track_changes: bool = Field(
        default=False, description="Prefer: odata.track-changes (delta links); needs page_size: null."
    )

    @model_validator(mode="after")
    def _server_pages_for_delta(self) -> ODataV4Source:
        if self.track_changes and self.page_size is not None:
            raise ValueError("track_changes needs page_size: null (server-driven pages only)")
        return self


def odata_v4_from_source(
    source: ODataV4Source, timezone: str, *, client_id: Any = None, client_secret: Any = None, **secrets: Any
) -> ODataV4Resource:
    """The resource for one OData v4 source instance; credentials are EnvVars (or None)."""
    return ODataV4Resource(
        base_url=source.service_url,
        source_name=source.source_name,
        auth_mode=source.auth,
        token_url=urljoin(source.service_url, source.token_url) if source.token_url else None,
        token_client_auth=source.token_client_auth,
        scope=source.scope,
        client_id=client_id,
        client_secret=client_secret,
        page_size=source.page_size,
        max_page_size=source.max_page_size,
        track_changes=source.track_changes,
        timezone=timezone,
        **{key: value for key, value in secrets.items() if value is not None},
    )
