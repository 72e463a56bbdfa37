"""An SAP Gateway-style OData v2 service for the demo plant's ERP documents (Starlette app).

What it speaks, as SAP NetWeaver Gateway does: service root `/sap/opu/odata/sap/ZGL_PLANT_SRV/`,
EDMX `$metadata` with `sap:` annotations, JSON as `{"d": {"results": [...], "__count", "__next",
"__delta"}}`, `/Date(ms)/` for Edm.DateTime and `/Date(ms+mmmm)/` for Edm.DateTimeOffset, decimals
as strings, `$filter` (eq/ne/lt/le/gt/ge joined by `and`), `$select`, `$top`, `$skip`,
`$inlinecount=allpages`, server-driven paging (`__next` with `$skiptoken`) at `page_size`, and
delta links (`!deltatoken='...'`) on the last page of the delta-enabled sets. An unknown or
expired delta token answers 410 Gone. Every call needs a bearer token from `POST /oauth/token`
(OAuth2 client credentials); tokens expire after `token_ttl_s` and then answer 401.

Faults for tests (`service.faults`): statuses (429 with Retry-After, 5xx), malformed JSON, an HTML
page with status 200 (a logon page), a property dropped from a row, a `__next` on a foreign
origin, slow answers. The service never writes anywhere; documents come from `ErpModel`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import operator
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlencode

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gl_demo_plant.erp_model import ENTITIES, EntityDef, ErpModel, Prop, Table
from gl_demo_plant.http_server import HttpServerThread

SERVICE_NAME = "ZGL_PLANT_SRV"
SERVICE_PATH = f"/sap/opu/odata/sap/{SERVICE_NAME}/"
TOKEN_PATH = "/oauth/token"
DEMO_CLIENT_ID = "gl-pipelines"
DEMO_CLIENT_SECRET = "demo-erp-secret-7f3a"  # demo service only; deployments use GL_ERP_CLIENT_SECRET
FOREIGN_ORIGIN = "http://attacker.invalid:9"
_QUERY_OPTIONS = {"$filter", "$select", "$top", "$skip", "$skiptoken", "$inlinecount", "$format", "$orderby"}
_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ne|gt|ge|lt|le)\s+(.+?)\s*$")
_DATETIME = re.compile(r"^datetime'(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?)'$")
_DATETIMEOFFSET = re.compile(r"^datetimeoffset'([^']+)'$")
_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_SAFE = "$!'(),:=*"  # left unescaped in __next / __delta links, as Gateway writes them


class BadRequest(Exception):
    """A request the service refuses with 400, as Gateway does for an unparsable query."""


@dataclass
class ODataFaults:
    """What the next requests to entity sets do wrong; counters count down as they are used."""

    statuses: list[int] = field(default_factory=list)
    retry_after_s: int = 1
    malformed_json: int = 0
    wrong_content_type: int = 0
    drop_property: tuple[str, str] | None = None  # (entity set, property) left out of each page's first row
    foreign_next: bool = False
    delay_s: float = 0.0
    unstable_order: bool = False  # without $orderby, each request lists rows in another order (a DB without ORDER BY)


@dataclass
class ODataStats:
    requests: Counter = field(default_factory=Counter)
    pages: int = 0
    rows: int = 0
    tokens_issued: int = 0
    unauthorized: int = 0


def sap_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": {"lang": "en", "value": message}}}
    return JSONResponse(body, status_code=status, headers=headers)


def format_decimal(raw: int, scale: int) -> str:
    sign = "-" if raw < 0 else ""
    whole, frac = divmod(abs(int(raw)), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}" if scale else f"{sign}{whole}"


def format_value(prop: Prop, raw: object, zone_offset_min: int = 0) -> object:
    if raw is None:
        return None
    if prop.edm_type == "Edm.Decimal":
        return format_decimal(int(raw), prop.scale or 0)
    if prop.edm_type == "Edm.DateTime":
        return f"/Date({int(raw)})/"
    if prop.edm_type == "Edm.DateTimeOffset":
        # The milliseconds are the local wall clock; the offset in minutes takes it back to UTC.
        sign = "+" if zone_offset_min >= 0 else "-"
        return f"/Date({int(raw) + zone_offset_min * 60_000}{sign}{abs(zone_offset_min):04d})/"
    return raw


def metadata_xml(entities: tuple[EntityDef, ...] = ENTITIES) -> str:
    """The EDMX document, shaped like SAP Gateway's (EDM 2008/09 with sap: annotations)."""
    types, sets = [], []
    for entity in entities:
        keys = "".join(f'<PropertyRef Name="{name}"/>' for name in entity.keys)
        props = []
        for prop in entity.props:
            attrs = [f'Name="{prop.name}"', f'Type="{prop.edm_type}"', f'Nullable="{"false" if prop.key else "true"}"']
            if prop.precision is not None:
                attrs.append(f'Precision="{prop.precision}"')
            if prop.scale is not None:
                attrs.append(f'Scale="{prop.scale}"')
            if prop.max_length is not None:
                attrs.append(f'MaxLength="{prop.max_length}"')
            if prop.date_only:
                attrs.append('sap:display-format="Date"')
            attrs.append(f'sap:label="{prop.label}"')
            props.append(f"<Property {' '.join(attrs)}/>")
        types.append(
            f'<EntityType Name="{entity.type_name}" sap:content-version="1"><Key>{keys}</Key>{"".join(props)}'
            "</EntityType>"
        )
        delta = ' sap:change-tracking="true"' if entity.delta else ""
        sets.append(
            f'<EntitySet Name="{entity.set_name}" EntityType="{SERVICE_NAME}.{entity.type_name}" '
            f'sap:creatable="false" sap:updatable="false" sap:deletable="false" sap:content-version="1"{delta}/>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'xmlns:sap="http://www.sap.com/Protocols/SAPData">'
        '<edmx:DataServices m:DataServiceVersion="2.0">'
        f'<Schema Namespace="{SERVICE_NAME}" xml:lang="en" sap:schema-version="1" '
        'xmlns="http://schemas.microsoft.com/ado/2008/09/edm">'
        f"{''.join(types)}"
        f'<EntityContainer Name="{SERVICE_NAME}_Entities" m:IsDefaultEntityContainer="true">{"".join(sets)}'
        "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )


def _literal(prop: Prop, text: str) -> object:
    if prop.edm_type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        match = _DATETIME.match(text) or _DATETIMEOFFSET.match(text)
        if not match:
            raise BadRequest(f"invalid date literal {text!r} for {prop.name}")
        moment = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return int(moment.timestamp() * 1000)
    if prop.edm_type == "Edm.Decimal":
        try:
            return round(float(text.rstrip("mM")) * 10 ** (prop.scale or 0))
        except ValueError:
            raise BadRequest(f"invalid decimal literal {text!r} for {prop.name}") from None
    if len(text) < 2 or text[0] != "'" or text[-1] != "'":
        raise BadRequest(f"invalid string literal {text!r} for {prop.name}")
    return text[1:-1].replace("''", "'")


def filter_mask(table: Table, expression: str) -> np.ndarray:
    """Rows of `table` matching a `$filter` of comparisons joined by `and`."""
    mask = np.ones(len(table), dtype=bool)
    if not expression.strip():
        return mask
    if re.search(r"\s(or|not)\s|[()]", expression.replace("datetime'", "").replace("datetimeoffset'", "")):
        raise BadRequest("only comparisons joined by 'and' are supported by this service")
    for clause in re.split(r"\s+and\s+", expression, flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if not match:
            raise BadRequest(f"invalid filter clause {clause!r}")
        name, op, text = match.groups()
        if name not in table.columns:
            raise BadRequest(f"property {name!r} not found in type {table.entity.type_name}")
        value = _literal(table.entity.prop(name), text)
        mask &= _OPS[op](table.columns[name], value)
    return mask


def _int_option(params, name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise BadRequest(f"{name}={text!r} is not a non-negative integer")
    return int(text)


class DemoSapODataService:
    """The Starlette app and its state; serve it with `HttpServerThread(service.app)`."""

    def __init__(
        self,
        model: ErpModel | None = None,
        *,
        page_size: int = 1000,
        token_ttl_s: float = 3600.0,
        clients: dict[str, str] | None = None,
    ) -> None:
        self.model = model or ErpModel()
        self.url = ""  # set by whoever serves the app: http://host:port
        self.page_size = page_size
        self.token_ttl_s = token_ttl_s
        self.clients = clients if clients is not None else {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self.faults = ODataFaults()
        self.stats = ODataStats()
        self.tokens: dict[str, float] = {}
        self.delta_tokens: dict[str, tuple[str, int]] = {}
        self._orders: dict[tuple, np.ndarray] = {}
        self.app = Starlette(
            routes=[
                Route(TOKEN_PATH, self.token, methods=["POST"]),
                Route(SERVICE_PATH, self.service_document, methods=["GET"]),
                Route(SERVICE_PATH + "$metadata", self.metadata, methods=["GET"]),
                Route(SERVICE_PATH + "{entity_set}", self.entity_set, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        self.faults = ODataFaults()
        self.stats = ODataStats()

    def revoke_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (as after a key rotation)."""
        self.tokens.clear()

    def expire_delta_tokens(self) -> None:
        """Every delta token issued so far answers 410 Gone (the server dropped its change log)."""
        self.delta_tokens.clear()

    async def token(self, request: Request) -> Response:
        self.stats.requests["token"] += 1
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                client_id = secret = None
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not client_id or self.clients.get(client_id) != secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        self.stats.tokens_issued += 1
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_ttl_s)})

    def _unauthorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        expiry = self.tokens.get(token) if token else None
        if expiry is not None and expiry > time.monotonic():
            return None
        self.stats.unauthorized += 1
        detail = "expired" if expiry is not None else "missing or unknown"
        return Response(
            f"access token {detail}",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            media_type="text/plain",
        )

    async def _prelude(self, request: Request, kind: str) -> Response | None:
        self.stats.requests[kind] += 1
        refused = self._unauthorized(request)  # checked on arrival, as a gateway does
        if self.faults.delay_s and not refused:
            await asyncio.sleep(self.faults.delay_s)
        return refused

    async def service_document(self, request: Request) -> Response:
        refused = await self._prelude(request, "service")
        if refused:
            return refused
        return JSONResponse({"d": {"EntitySets": [entity.set_name for entity in ENTITIES]}})

    async def metadata(self, request: Request) -> Response:
        refused = await self._prelude(request, "metadata")
        if refused:
            return refused
        return Response(metadata_xml(), media_type="application/xml")

    def _fault_response(self) -> Response | None:
        if self.faults.statuses:
            status = self.faults.statuses.pop(0)
            headers = {"Retry-After": str(self.faults.retry_after_s)} if status == 429 else None
            return sap_error(status, "/IWFND/CM_BEC/026", f"injected fault: HTTP {status}", headers)
        return None

    async def entity_set(self, request: Request) -> Response:
        refused = await self._prelude(request, "entity_set")
        if refused:
            return refused
        name = request.path_params["entity_set"]
        table = self.model.tables.get(name)
        if table is None:
            return sap_error(404, "/IWFND/MED/170", f"No service found for namespace, name '{name}'")
        injected = self._fault_response()
        if injected:
            return injected
        params = request.query_params
        unknown = [key for key in params if key.startswith("$") and key not in _QUERY_OPTIONS]
        if unknown:
            return sap_error(400, "/IWBEP/CM_MGW_RT/022", f"System query option {unknown[0]!r} not supported")
        fmt = params.get("$format")
        if fmt != "json" and "json" not in request.headers.get("accept", ""):
            return sap_error(406, "/IWFND/CM_MGW/004", "this demo service answers JSON only ($format=json)")
        try:
            body = self._query(request, table)
        except BadRequest as exc:
            return sap_error(400, "/IWBEP/CM_MGW_RT/021", str(exc))
        except KeyError as exc:
            return sap_error(410, "/IWBEP/CM_MGW_RT/085", f"Delta token {exc.args[0]} expired or unknown")
        if self.faults.wrong_content_type:
            self.faults.wrong_content_type -= 1
            return Response("<html><body><h1>SAP NetWeaver Logon</h1></body></html>", media_type="text/html")
        text = json.dumps(body, separators=(",", ":"))
        if self.faults.malformed_json:
            self.faults.malformed_json -= 1
            text = text[: len(text) // 2]
        return Response(text, media_type="application/json")

    def _query(self, request: Request, table: Table) -> dict:
        params = request.query_params
        entity = table.entity
        mask = filter_mask(table, params.get("$filter", ""))
        token = params.get("!deltatoken")
        if token is not None:
            token = token.strip("'")
            if token not in self.delta_tokens or self.delta_tokens[token][0] != entity.set_name:
                raise KeyError(token)
            mask &= table.seq > self.delta_tokens[token][1]
        selected = self._ordered(table, mask, params.get("$orderby"))
        total = len(selected)
        skip, top = _int_option(params, "$skip") or 0, _int_option(params, "$top")
        selected = selected[skip : None if top is None else skip + top]
        offset = _int_option(params, "$skiptoken") or 0
        page = selected[offset : offset + self.page_size]
        names = [p.name for p in entity.props]
        if params.get("$select"):
            names = [n.strip() for n in params["$select"].split(",")]
            missing = [n for n in names if n not in table.columns]
            if missing:
                raise BadRequest(f"property {missing[0]!r} not found in type {entity.type_name}")
        rows = self._rows(request, table, page, names)
        body: dict[str, object] = {"results": rows}
        if params.get("$inlinecount") == "allpages":
            body["__count"] = str(total)
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        if offset + self.page_size < len(selected):
            keep = {k: v for k, v in params.items() if k != "$skiptoken"}
            keep["$skiptoken"] = str(offset + self.page_size)
            origin = FOREIGN_ORIGIN if self.faults.foreign_next else f"{request.url.scheme}://{request.url.netloc}"
            body["__next"] = f"{origin}{request.url.path}?{urlencode(keep, quote_via=quote, safe=_SAFE)}"
        elif entity.delta and (top is None or skip + top >= total):
            new_token = f"{secrets.token_hex(8).upper()}_{datetime.now(UTC):%Y%m%d%H%M%S}"
            self.delta_tokens[new_token] = (entity.set_name, self.model.change_seq)
            keep = {k: v for k, v in params.items() if k in ("$filter", "$select", "$format")}
            keep["!deltatoken"] = f"'{new_token}'"
            body["__delta"] = f"{base}?{urlencode(keep, quote_via=quote, safe=_SAFE)}"
        self.stats.pages += 1
        self.stats.rows += len(rows)
        return {"d": body}

    def _ordered(self, table: Table, mask: np.ndarray, orderby: str | None) -> np.ndarray:
        """Positions of the rows in `mask`, in `$orderby` order, else in storage order or shuffled."""
        if not orderby:
            if self.faults.unstable_order:
                return np.random.default_rng(self.stats.pages).permutation(np.flatnonzero(mask))
            return np.flatnonzero(mask)
        # Sorted once per table state, not per page: a year of documents is paged hundreds of times.
        state = (table.entity.set_name, orderby, len(table), self.model.change_seq)
        if state not in self._orders:
            self._orders = {state: self._sort(table, orderby)}
        order = self._orders[state]
        return order[mask[order]]

    @staticmethod
    def _sort(table: Table, orderby: str) -> np.ndarray:
        """All row positions sorted by `$orderby` (`Name [asc|desc]`, comma-separated)."""
        names, ascending = [], []
        for part in orderby.split(","):
            name, _, direction = part.strip().partition(" ")
            if name not in table.columns or direction.strip().lower() not in ("", "asc", "desc"):
                raise BadRequest(f"invalid $orderby {part.strip()!r} for type {table.entity.type_name}")
            names.append(name)
            ascending.append(direction.strip().lower() != "desc")
        frame = pd.DataFrame({name: table.columns[name] for name in names})
        return frame.sort_values(names, ascending=ascending, kind="stable").index.to_numpy()

    def _rows(self, request: Request, table: Table, page: np.ndarray, names: list[str]) -> list[dict]:
        entity = table.entity
        props = [entity.prop(name) for name in names]
        base = f"{request.url.scheme}://{request.url.netloc}{SERVICE_PATH}"
        columns = [table.columns[p.name][page] for p in props]
        offsets = [
            _offset_minutes(col, self.model.zone) if p.edm_type == "Edm.DateTimeOffset" else None
            for p, col in zip(props, columns, strict=True)
        ]
        key_columns = [table.columns[k][page] for k in entity.keys]
        rows = []
        for i in range(len(page)):
            key = ",".join(f"{k}='{col[i]}'" for k, col in zip(entity.keys, key_columns, strict=True))
            uri = f"{base}{entity.set_name}({key})"
            row: dict[str, object] = {
                "__metadata": {"id": uri, "uri": uri, "type": f"{SERVICE_NAME}.{entity.type_name}"}
            }
            for prop, column, offset in zip(props, columns, offsets, strict=True):
                row[prop.name] = format_value(prop, column[i], 0 if offset is None else int(offset[i]))
            rows.append(row)
        dropped = self.faults.drop_property
        if dropped and dropped[0] == entity.set_name and rows:
            rows[0].pop(dropped[1], None)
        return rows


def _offset_minutes(epoch_ms: np.ndarray, zone: str) -> np.ndarray:
    """UTC offset in minutes of the plant zone at each instant (how Gateway stamps DateTimeOffset)."""
    utc = pd.to_datetime(epoch_ms.astype(np.int64), unit="ms", utc=True)
    local = pd.DatetimeIndex(utc).tz_convert(zone).tz_localize(None)
    return ((local - pd.DatetimeIndex(utc).tz_localize(None)).total_seconds() // 60).astype(np.int64).to_numpy()


def main(argv: list[str] | None = None) -> None:
    """Serve the demo ERP alone (the bench runs it in its own process); prints a ready line."""
    parser = argparse.ArgumentParser(prog="python -m gl_demo_plant.sap_odata")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5460)
    parser.add_argument("--page-size", type=int, default=1000, help="server-driven page size (__next)")
    parser.add_argument("--receipt-interval-s", type=float, default=3600.0, help="seconds between gas receipts")
    parser.add_argument("--start", default="2025-01-01", help="first document date (UTC)")
    parser.add_argument("--end", default="2027-01-01", help="end of documents (UTC, exclusive)")
    args = parser.parse_args(argv)
    model = ErpModel(
        receipt_interval_s=args.receipt_interval_s,
        start=datetime.fromisoformat(args.start).replace(tzinfo=UTC),
        end=datetime.fromisoformat(args.end).replace(tzinfo=UTC),
    )
    service = DemoSapODataService(model, page_size=args.page_size)
    with HttpServerThread(service.app, args.host, args.port, name="demo-sap-odata") as server:
        receipts = len(model.tables["GoodsReceiptSet"])
        print(f"sap odata ready on {server.url}{SERVICE_PATH} ({receipts} goods receipts)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
