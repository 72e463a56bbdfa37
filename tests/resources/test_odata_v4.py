"""OData v4 behaviours SAP's mock server does not offer (tests/interop has the rest), on a Dynamics 365-like
Starlette service written from the OData v4.0 JSON Format and Protocol specifications:

server-driven paging (`Prefer: odata.maxpagesize` -> `@odata.nextLink` with `$skiptoken`), change
tracking (`Prefer: odata.track-changes` -> `@odata.deltaLink`; a delta lists changed entities and
`$deletedEntity` entries), decimals as JSON numbers when the server ignores IEEE754Compatible (as
Finance & Operations does), Entra ID and SAP XSUAA token endpoints, and bad answers: an HTML sign-in
page with status 200, an expired token, a malformed page, a v2 $metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from dagster import EnvVar, materialize
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gl_demo_plant.http_server import HttpServerThread
from gl_pipelines.assets.erp import build_erp_assets
from gl_pipelines.resources.erp import EntityQuery
from gl_pipelines.resources.http import HttpResponseFormatError, HttpSourceError
from gl_pipelines.resources.odata import ODataError
from gl_pipelines.resources.odata_v4 import (
    ODataV4Resource,
    ODataV4Source,
    drop_removed,
    odata_v4_from_source,
    removed_key,
)
from gl_pipelines.resources.warehouse import warehouse_io_manager
from tests.resources.vendor_auth import CLIENT_ID, CLIENT_SECRET, TokenIssuer

TENANT = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
SCOPE = "https://plant.operations.dynamics.com/.default"
METADATA = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.DataEntities" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="FuelReceipt">
        <Key><PropertyRef Name="dataAreaId"/><PropertyRef Name="ReceiptId"/></Key>
        <Property Name="dataAreaId" Type="Edm.String" Nullable="false"/>
        <Property Name="ReceiptId" Type="Edm.String" Nullable="false"/>
        <Property Name="PostingDate" Type="Edm.DateTimeOffset" Nullable="false"/>
        <Property Name="LineNumber" Type="Edm.String" Nullable="false"/>
        <Property Name="InventSiteId" Type="Edm.String"/>
        <Property Name="ItemId" Type="Edm.String"/>
        <Property Name="Quantity" Type="Edm.Decimal" Scale="Variable"/>
        <Property Name="Unit" Type="Edm.String"/>
        <Property Name="LineAmount" Type="Edm.Decimal" Scale="Variable"/>
        <Property Name="CurrencyCode" Type="Edm.String"/>
        <Property Name="ModifiedDateTime" Type="Edm.DateTimeOffset"/>
      </EntityType>
      <EntityContainer Name="Container">
        <EntitySet Name="FuelReceipts" EntityType="Microsoft.Dynamics.DataEntities.FuelReceipt"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>"""
V2_METADATA = METADATA.replace('Version="4.0"', 'Version="1.0"')
FIELDS = {"company": "dataAreaId", "document": "ReceiptId", "posting_date": "PostingDate", "quantity": "Quantity",
          "unit": "Unit"}  # fmt: skip
QUERY = EntityQuery("FuelReceipts", FIELDS, ("company", "document"), "posting_date")
FIRST = datetime(2026, 11, 1, 6, tzinfo=UTC)


def _row(k: int, quantity: Decimal | None = None) -> dict:
    quantity = quantity if quantity is not None else Decimal(k) + Decimal("0.125")
    return {"dataAreaId": "usmf", "ReceiptId": f"R{k:05d}", "LineNumber": "1",
            "PostingDate": FIRST + timedelta(hours=k), "InventSiteId": "1000", "ItemId": "NATGAS", "Quantity": quantity,
            "Unit": "m3", "LineAmount": quantity * 2, "CurrencyCode": "USD", "ModifiedDateTime": FIRST}  # fmt: skip


@dataclass
class Dynamics:
    """Finance & Operations-like: server paging at min(maxpagesize, 5), decimals as JSON numbers."""

    rows: list[dict] = field(default_factory=lambda: [_row(k) for k in range(48)])
    issuer: TokenIssuer = field(default_factory=lambda: TokenIssuer(scope=SCOPE))
    removed: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    fault: str | None = None
    metadata: str = METADATA
    preferences: list[str] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"/{TENANT}/oauth2/v2.0/token", self.issuer.entra, methods=["POST"]),
                Route("/oauth/token", self.issuer.uaa, methods=["POST"]),
                Route("/data/$metadata", self.get_metadata),
                Route("/data/FuelReceipts", self.collection),
            ]
        )

    async def get_metadata(self, request: Request) -> Response:
        return self.refused(request) or Response(self.metadata, media_type="application/xml")

    def refused(self, request: Request) -> Response | None:
        if self.fault == "login_page":
            return Response("<html><title>Sign in to your account</title></html>", media_type="text/html")
        return self.issuer.refused(request)

    async def collection(self, request: Request) -> Response:
        refusal = self.refused(request)
        if refusal:
            return refusal
        prefer = request.headers.get("prefer", "")
        self.preferences.append(prefer)
        params = request.query_params
        if "$deltatoken" in params:
            return self.page({"value": [*self.changed, *self.removed],
                              "@odata.deltaLink": f"{self.url}/data/FuelReceipts?$deltatoken=2"})  # fmt: skip
        low, high = (datetime.fromisoformat(v) for v in _bounds(params["$filter"]))
        rows = [r for r in self.rows if low <= r["PostingDate"] < high]
        size = min(int(prefer.split("odata.maxpagesize=")[1].split(",")[0]), 5) if "maxpagesize" in prefer else 1000
        skip = int(params.get("$skiptoken", 0))
        body: dict = {"@odata.context": f"{self.url}/data/$metadata#FuelReceipts", "value": rows[skip : skip + size]}
        if params.get("$count") == "true":
            body["@odata.count"] = len(rows)
        if skip + size < len(rows):
            body["@odata.nextLink"] = (
                f"{self.url}/data/FuelReceipts?{_without_skiptoken(request)}&$skiptoken={skip + size}"
            )
        elif "odata.track-changes" in prefer:
            body["@odata.deltaLink"] = f"{self.url}/data/FuelReceipts?$deltatoken=1"
        if self.fault == "malformed":
            body = {"value": {"not": "a list"}}
        return self.page(body)

    def page(self, body: dict) -> Response:
        return Response(json.dumps(body, default=_wire), media_type="application/json;odata.metadata=minimal")


def _wire(value: object) -> object:
    """F&O's JSON: instants in UTC with Z, decimals as JSON numbers whatever IEEE754Compatible asks."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return float(value)


def _bounds(filter_text: str) -> tuple[str, str]:
    parts = filter_text.split(" ")
    return parts[2], parts[6]


def _without_skiptoken(request: Request) -> str:
    return "&".join(f"{k}={v}" for k, v in request.query_params.items() if k != "$skiptoken")


@pytest.fixture
def dynamics():
    service = Dynamics()
    with HttpServerThread(service.app(), name="dynamics-like") as server:
        service.url = server.url
        yield service


def entra_resource(service: Dynamics, **kw) -> ODataV4Resource:
    """Dataverse style: no $skip windows, server pages only; Entra ID client credentials in the form."""
    options = {
        "base_url": f"{service.url}/data/",
        "source_name": "d365-test",
        "auth_mode": "oauth2",
        "token_url": f"{service.url}/{TENANT}/oauth2/v2.0/token",
        "token_client_auth": "post",
        "scope": SCOPE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "page_size": None,
        "max_page_size": 5000,
        "max_attempts": 1,
    }
    return ODataV4Resource(**(options | kw))


DAY = (FIRST, FIRST + timedelta(days=1))


def test_server_pages_are_followed_by_next_link_with_an_entra_token(dynamics):
    extract = entra_resource(dynamics).read(QUERY, DAY)
    assert list(extract.frame["document"]) == [f"R{k:05d}" for k in range(24)]
    assert extract.pages == 5 and extract.server_count == 24  # 24 rows at the server's 5 per page
    assert extract.frame["quantity"].iloc[3] == Decimal("3.125")  # a JSON number, read exactly
    assert dynamics.preferences[0] == "odata.maxpagesize=5000"
    assert dynamics.issuer.forms == [{"grant_type": "client_credentials", "scope": SCOPE, "client_id": CLIENT_ID}]


def test_an_sap_xsuaa_token_endpoint_takes_the_client_as_basic_auth(dynamics):
    api = entra_resource(dynamics, token_url=f"{dynamics.url}/oauth/token", token_client_auth="basic", scope=None)
    assert len(api.read(QUERY, DAY).frame) == 24
    assert dynamics.issuer.forms == [{"grant_type": "client_credentials"}]


def test_delta_returns_changes_and_removed_keys(dynamics):
    api = entra_resource(dynamics, track_changes=True)
    full = api.read(QUERY, DAY)
    assert full.delta_link.endswith("$deltatoken=1") and "odata.track-changes" in dynamics.preferences[0]
    dynamics.changed = [_row(3, Decimal("99.5"))]
    dynamics.removed = [
        {"@odata.context": "$metadata#FuelReceipts/$deletedEntity",
         "id": "FuelReceipts(dataAreaId='usmf',ReceiptId='R00005')", "reason": "deleted"},
        {"@removed": {"reason": "deleted"}, "@id": "FuelReceipts(dataAreaId='usmf',ReceiptId='R00007')"},
    ]  # fmt: skip
    delta = api.read(QUERY, delta_link=full.delta_link)
    assert delta.mode == "delta" and list(delta.frame["document"]) == ["R00003"]
    assert delta.removed_keys == (
        {"dataAreaId": "usmf", "ReceiptId": "R00005"},
        {"dataAreaId": "usmf", "ReceiptId": "R00007"},
    )
    kept = drop_removed(full.frame, delta.removed_keys, {"company": "dataAreaId", "document": "ReceiptId"})
    assert len(kept) == 22 and not {"R00005", "R00007"} & set(kept["document"])


def test_track_changes_refuses_client_windows(dynamics):
    with pytest.raises(ValueError, match="d365-test: track_changes needs page_size: null"):
        entra_resource(dynamics, track_changes=True, page_size=1000)


def test_a_removed_id_with_a_single_key_and_a_quote():
    entity = entra_resource(Dynamics(url="http://x")).parse_metadata(METADATA, "t")["FuelReceipts"]
    one_key = type(entity)("Plants", "t.Plant", ("Plant",), {})
    assert removed_key({"id": "Plants('O''Hare')"}, one_key, source="t") == {"Plant": "O'Hare"}
    with pytest.raises(ODataError, match="t: removed entity id .* does not match the keys dataAreaId, ReceiptId"):
        removed_key({"id": "FuelReceipts('R1')"}, entity, source="t")


def test_an_expired_token_is_replaced_once(dynamics):
    api = entra_resource(dynamics)
    api.metadata()
    dynamics.issuer.revoke()  # as after a key rotation: every token issued so far answers 401
    assert len(api.read(QUERY, DAY).frame) == 24
    assert dynamics.issuer.fetches == 2


def test_a_refused_client_secret_names_the_instance_and_the_entra_error(dynamics):
    api = entra_resource(dynamics, client_secret="not-the-secret-at-all")
    with pytest.raises(HttpSourceError) as caught:
        api.read(QUERY, DAY)
    message = str(caught.value)
    assert message.startswith(f"d365-test: POST /{TENANT}/oauth2/v2.0/token -> HTTP 401: token request refused")
    assert "AADSTS7000215" in message and "not-the-secret-at-all" not in message


def test_an_html_sign_in_page_is_refused_naming_the_instance(dynamics):
    api = entra_resource(dynamics)
    api.metadata()
    dynamics.fault = "login_page"
    with pytest.raises(HttpResponseFormatError, match="d365-test: GET /data/FuelReceipts -> HTTP 200: expected a JSON "
                       "content type, got 'text/html; charset=utf-8'.*Sign in to your account"):  # fmt: skip
        api.read(QUERY, DAY)
    with pytest.raises(ODataError, match="d365-test: .*\\$metadata: not an EDMX document \\(root element <html>\\)"):
        entra_resource(dynamics).metadata()


def test_a_malformed_page_and_a_v2_metadata_are_refused(dynamics):
    dynamics.fault = "malformed"
    with pytest.raises(ODataError, match=r"d365-test: FuelReceipts: not an OData v4 collection"):
        entra_resource(dynamics).read(QUERY, DAY)
    dynamics.metadata = V2_METADATA
    with pytest.raises(ODataError, match="d365-test: .*EDMX Version '1.0' is not OData v4"):
        entra_resource(dynamics).metadata()


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_a_bad_answer_leaves_the_stored_day_untouched(dynamics, tmp_path, monkeypatch):
    monkeypatch.setenv("GL_TEST_D365_SECRET", CLIENT_SECRET)
    fields = {"document": "ReceiptId", "item": "LineNumber", "posting_date": "PostingDate", "plant": "InventSiteId",
              "material": "ItemId", "quantity": "Quantity", "unit": "Unit", "amount": "LineAmount",
              "currency": "CurrencyCode", "changed_at": "ModifiedDateTime"}  # fmt: skip
    source = ODataV4Source(
        service_url=f"{dynamics.url}/data/",
        source_name="d365-test",
        token_url=f"/{TENANT}/oauth2/v2.0/token",
        token_client_auth="post",
        scope=SCOPE,
        units={"m3": "m**3"},
        fuel_receipts={"entity_set": "FuelReceipts", "fields": fields},
        # Declared for the section's sake; this test materializes only the receipts.
        production={"entity_set": "ProductionOrders", "fields": {"confirmation": "ProdId", "counter": "LineNumber",
                    "posting_date": "PostingDate", "plant": "InventSiteId", "product": "ItemId", "quantity": "QtyGood",
                    "unit": "Unit", "changed_at": "ModifiedDateTime"}},
        materials={"entity_set": "ReleasedProductsV2", "fields": {"material": "ItemNumber",
                   "description": "ProductName", "material_type": "ProductType", "base_unit": "InventoryUnitSymbol"}},
        plants={"entity_set": "OperationalSites", "fields": {"plant": "SiteId", "name": "SiteName",
                "country": "Country", "timezone": "SiteTimezone"}},
    )  # fmt: skip
    resources = {
        "erp": odata_v4_from_source(
            source, "America/Chicago", client_id=CLIENT_ID, client_secret=EnvVar("GL_TEST_D365_SECRET")
        ),
        "warehouse": warehouse_io_manager(str(tmp_path / "w.duckdb")),
    }  # fmt: skip
    assets = build_erp_assets(source, "America/Chicago")
    day = "2026-11-01"

    def stored():
        with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
            return con.execute("select count(*), sum(quantity) from plant.erp_fuel_receipts").fetchall()

    assert materialize(assets, resources=resources, selection=["erp_fuel_receipts"], partition_key=day).success
    before = stored()
    assert before[0][0] == 24
    dynamics.fault = "malformed"
    failed = materialize(
        assets, resources=resources, selection=["erp_fuel_receipts"], partition_key=day, raise_on_error=False
    )
    assert not failed.success
    assert stored() == before
