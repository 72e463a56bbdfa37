"""Oracle Fusion REST and Workday (RaaS, REST) resources against Starlette services shaped from vendor references.

Oracle (docs.oracle.com/en/cloud/saas/human-resources/farws/Navigate_a_Collection.html and the ADF
REST `describe`, error body `application/vnd.oracle.adf.error+json` with `o:errorDetails`): `items`,
`hasMore`, `totalResults`, `limit`/`offset`, `q=` on a `date` attribute, `onlyData`, `fields`.
Workday (apis.io/apis/workday/raas-api, the RaaS OpenAPI; apis.io/examples/workday-integrations/
workday-integrations-list-workers-example): `Report_Entry` with dates like `2026-11-01-06:00`, the
report schema at `?xsd`, REST `{"total", "data"}` at limit 100.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import EnvVar, materialize
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gl_demo_plant.http_server import HttpServerThread
from gl_pipelines.assets.erp import build_erp_assets
from gl_pipelines.assets.workday import build_workday_assets
from gl_pipelines.resources.erp import EntityQuery
from gl_pipelines.resources.http import HttpResponseFormatError, HttpSourceError
from gl_pipelines.resources.odata import ODataSchemaError
from gl_pipelines.resources.oracle_fusion import OracleFusionResource, OracleFusionSource, oracle_fusion_from_source
from gl_pipelines.resources.rest_tables import VendorError
from gl_pipelines.resources.warehouse import warehouse_io_manager
from gl_pipelines.resources.workday import WorkdayResource, WorkdaySource, workday_date, workday_from_source

CHICAGO = ZoneInfo("America/Chicago")
USER, PASSWORD = "GL_INTEGRATION", "fusion-Pa55-never-logged-31f7"
DAY = (datetime(2026, 11, 2, tzinfo=CHICAGO), datetime(2026, 11, 3, tzinfo=CHICAGO))
ORACLE_ROOT = "/fscmRestApi/resources/11.13.18.05/"
ORACLE_ATTRIBUTES = {"TransactionId": "integer", "ReceiptNumber": "string", "ReceiptLineNumber": "string",
                     "TransactionDate": "date", "OrganizationCode": "string", "ItemNumber": "string",
                     "Quantity": "number", "UnitOfMeasure": "string", "Amount": "number", "CurrencyCode": "string",
                     "LastUpdateDate": "datetime"}  # fmt: skip
RECEIPTS = EntityQuery(
    "receivingReceiptTransactions",
    {
        "transaction": "TransactionId",
        "document": "ReceiptNumber",
        "posting_date": "TransactionDate",
        "plant": "OrganizationCode",
        "material": "ItemNumber",
        "quantity": "Quantity",
        "unit": "UnitOfMeasure",
        "changed_at": "LastUpdateDate",
    },  # fmt: skip
    ("transaction",),
    "posting_date",
    "OrganizationCode = 'P1'",
)


def _basic_ok(request: Request) -> bool:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return request.headers.get("authorization") == expected


@dataclass
class Fusion:
    """30 receipts, three per plant day from 2026-11-01; pages of at most 4 items (as a busy pod caps `limit`)."""

    rows: list[dict] = field(
        default_factory=lambda: [
            {"TransactionId": 300100 + k, "ReceiptNumber": f"RCV{k:04d}",
             "TransactionDate": (date(2026, 11, 1) + timedelta(days=k // 3)).isoformat(), "OrganizationCode": "P1",
             "ItemNumber": "NATGAS", "Quantity": float(Decimal(k) + Decimal("0.5")), "UnitOfMeasure": "MMBtu",
             "LastUpdateDate": "2026-11-05T09:12:42.001+00:00", "ReceiptLineNumber": "1", "Amount": k * 3.25,
             "CurrencyCode": "USD"}
            for k in range(30)
        ]
    )  # fmt: skip
    fault: str | None = None
    queries: list[dict] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(ORACLE_ROOT + "receivingReceiptTransactions/describe", self.describe),
                Route(ORACLE_ROOT + "receivingReceiptTransactions", self.collection),
            ]
        )

    def refused(self, request: Request) -> Response | None:
        if self.fault == "login_page":
            return Response("<html><body>Oracle Cloud sign in</body></html>", media_type="text/html")
        if not _basic_ok(request):
            return Response("", status_code=401, headers={"WWW-Authenticate": 'Basic realm="fusion"'})
        return None

    async def describe(self, request: Request) -> Response:
        attributes = [{"name": name, "type": kind, "updatable": False} for name, kind in ORACLE_ATTRIBUTES.items()]
        body = {"Resources": {"receivingReceiptTransactions": {"attributes": attributes, "links": []}}}
        return self.refused(request) or JSONResponse(body, media_type="application/vnd.oracle.adf.description+json")

    async def collection(self, request: Request) -> Response:
        refusal = self.refused(request)
        if refusal:
            return refusal
        params = dict(request.query_params)
        self.queries.append(params)
        if "Bogus" in params.get("q", ""):
            return JSONResponse(
                {"title": "Bad Request", "status": "400",
                 "o:errorDetails": [{"detail": "URL request parameter q with value Bogus = 1 is not valid.",
                                     "o:errorCode": "27501"}]},
                status_code=400,
                media_type="application/vnd.oracle.adf.error+json",
            )  # fmt: skip
        q = params["q"].split("'")
        low, high = q[3], q[5]
        rows = [r for r in self.rows if low <= r["TransactionDate"] < high]
        offset, limit = int(params["offset"]), min(int(params["limit"]), 4)
        page = rows[offset : offset + limit]
        body = {"items": page, "count": len(page), "hasMore": offset + limit < len(rows), "limit": limit,
                "offset": offset, "totalResults": len(rows)}  # fmt: skip
        if self.fault == "malformed" and offset:
            body["hasMore"] = "yes"
        return Response(json.dumps(body), media_type="application/vnd.oracle.adf.resourcecollection+json")


@pytest.fixture
def fusion():
    service = Fusion()
    with HttpServerThread(service.app(), name="fusion-like") as server:
        service.url = server.url
        yield service


def fusion_source(service) -> OracleFusionSource:
    """Fusion as the site's ERP: receipts from receivingReceiptTransactions; the other sections are declared
    for the section's sake (these tests read only receipts)."""
    receipts = {"document": "ReceiptNumber", "item": "ReceiptLineNumber", "posting_date": "TransactionDate",
                "plant": "OrganizationCode", "material": "ItemNumber", "quantity": "Quantity", "unit": "UnitOfMeasure",
                "amount": "Amount", "currency": "CurrencyCode", "changed_at": "LastUpdateDate"}  # fmt: skip
    return OracleFusionSource(
        service_url=service.url + ORACLE_ROOT,
        source_name="fusion-test",
        units={"MMBtu": "MMBtu"},
        fuel_receipts={"entity_set": RECEIPTS.entity_set, "fields": receipts, "filter": "OrganizationCode = 'P1'"},
        production={"entity_set": "workOrderOperationTransactions", "fields": {"confirmation": "TransactionId",
                    "counter": "OperationSequenceNumber", "posting_date": "TransactionDate",
                    "plant": "OrganizationCode", "product": "ItemNumber", "quantity": "TransactionQuantity",
                    "unit": "UnitOfMeasure", "changed_at": "LastUpdateDate"}},
        materials={"entity_set": "itemsV2", "fields": {"material": "ItemNumber", "description": "ItemDescription",
                   "material_type": "UserItemTypeValue", "base_unit": "PrimaryUOMValue"}},
        plants={"entity_set": "inventoryOrganizations", "fields": {"plant": "OrganizationCode",
                "name": "OrganizationName", "country": "Country", "timezone": "TimezoneCode"}},
    )  # fmt: skip


def fusion_resource(service, password: str = PASSWORD) -> OracleFusionResource:
    return oracle_fusion_from_source(fusion_source(service), "America/Chicago", username=USER, password=password)


def test_oracle_pages_by_offset_until_has_more_is_false(fusion):
    extract = fusion_resource(fusion).read(RECEIPTS, DAY)
    assert list(extract.frame["document"]) == ["RCV0003", "RCV0004", "RCV0005"]
    assert list(extract.frame["quantity"]) == [Decimal("3.5"), Decimal("4.5"), Decimal("5.5")]
    assert extract.frame["posting_date"].iloc[0] == datetime(2026, 11, 2, tzinfo=CHICAGO)
    assert extract.frame["changed_at"].iloc[0] == datetime.fromisoformat("2026-11-05T09:12:42.001+00:00")
    first = fusion.queries[0]
    assert (
        first["q"] == "OrganizationCode = 'P1' and TransactionDate >= '2026-11-02' and TransactionDate < '2026-11-03'"
    )
    assert first["onlyData"] == "true" and first["orderBy"] == "TransactionId:asc" and first["totalResults"] == "true"


def test_oracle_a_longer_window_spans_several_pages(fusion):
    extract = fusion_resource(fusion).read(RECEIPTS, (DAY[0], DAY[0] + timedelta(days=5)))
    assert len(extract.frame) == 15 and extract.pages == 4 and extract.server_count == 15


def test_oracle_an_error_body_is_quoted_with_the_instance(fusion):
    query = EntityQuery(RECEIPTS.entity_set, RECEIPTS.fields, RECEIPTS.keys, "posting_date", "Bogus = 1")
    with pytest.raises(VendorError, match=r"fusion-test: receivingReceiptTransactions: HTTP 400 from the server: URL "
                       r"request parameter q with value Bogus = 1 is not valid. \(o:errorCode 27501\)"):  # fmt: skip
        fusion_resource(fusion).read(query, DAY)


def test_oracle_bad_answers_name_the_instance_and_field(fusion):
    wrong = EntityQuery(RECEIPTS.entity_set, {**RECEIPTS.fields, "lot": "LotNumber"}, RECEIPTS.keys)
    with pytest.raises(ODataSchemaError, match="fusion-test: resource 'receivingReceiptTransactions' has no property "
                       "'LotNumber'"):  # fmt: skip
        fusion_resource(fusion).read(wrong)
    with pytest.raises(HttpSourceError, match=r"fusion-test: GET .*/describe -> HTTP 401: request refused") as caught:
        fusion_resource(fusion, password="expired-Pa55-of-last-quarter").read(RECEIPTS, DAY)
    assert "expired-Pa55" not in str(caught.value)
    fusion.fault = "malformed"
    with pytest.raises(VendorError, match="fusion-test: receivingReceiptTransactions: hasMore is 'yes'"):
        fusion_resource(fusion).read(RECEIPTS, (DAY[0], DAY[0] + timedelta(days=5)))
    fusion.fault = "login_page"
    with pytest.raises(HttpResponseFormatError, match="fusion-test: GET .*/describe -> HTTP 200: expected a JSON"):
        fusion_resource(fusion).read(RECEIPTS, DAY)


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_oracle_as_the_site_erp_stores_a_day_and_a_bad_answer_changes_nothing(fusion, tmp_path, monkeypatch):
    monkeypatch.setenv("GL_TEST_FUSION_PASSWORD", PASSWORD)
    source = fusion_source(fusion)
    warehouse = str(tmp_path / "w.duckdb")
    resources = {
        "erp": oracle_fusion_from_source(
            source, "America/Chicago", username=USER, password=EnvVar("GL_TEST_FUSION_PASSWORD")
        ),
        "warehouse": warehouse_io_manager(warehouse),
    }
    assets = build_erp_assets(source, "America/Chicago")

    def day() -> object:
        result = materialize(assets, resources=resources, selection=["erp_fuel_receipts"], partition_key="2026-11-02",
                             raise_on_error=False)  # fmt: skip
        with duckdb.connect(warehouse, read_only=True) as con:
            stored = con.execute("select count(*), sum(quantity), min(source) from plant.erp_fuel_receipts").fetchall()
        return result, stored

    result, stored = day()
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert stored == [(3, Decimal("13.5"), "fusion-test")]
    fusion.fault = "login_page"
    result, after = day()
    assert not result.success and after == stored


# -- Workday ---------------------------------------------------------------------------------------

TENANT = "plantco"
REPORT = "GL_Plant_Hours_Worked"
REPORT_PATH = f"/ccx/service/customreport2/{TENANT}/ISU_GL/{REPORT}"
XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wd="urn:com.workday.report/GL_Plant_Hours_Worked"
            targetNamespace="urn:com.workday.report/GL_Plant_Hours_Worked" elementFormDefault="qualified">
  <xsd:element name="Report_Data"><xsd:complexType><xsd:sequence>
    <xsd:element name="Report_Entry" minOccurs="0" maxOccurs="unbounded"><xsd:complexType><xsd:sequence>
      <xsd:element name="Time_Block_ID" type="xsd:string"/>
      <xsd:element name="Worker_ID" type="xsd:string"/>
      <xsd:element name="Location" type="xsd:string"/>
      <xsd:element name="Reported_Date" type="xsd:date"/>
      <xsd:element name="Hours" type="xsd:decimal"/>
    </xsd:sequence></xsd:complexType></xsd:element>
  </xsd:sequence></xsd:complexType></xsd:element>
</xsd:schema>"""
HOURS = EntityQuery(
    REPORT,
    {
        "block": "Time_Block_ID",
        "worker": "Worker_ID",
        "plant": "Location",
        "work_date": "Reported_Date",
        "hours": "Hours",
    },  # fmt: skip
    ("block",),
    "work_date",
)
PROMPTS = {"start": "Start_Date", "end": "End_Date"}


@dataclass
class Workday:
    """A RaaS report whose prompts are inclusive at both ends and which adds one row of the day after
    (a report's filter is the report author's), plus a REST collection of workers."""

    fault: str | None = None
    prompts: list[dict] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(REPORT_PATH, self.report),
                Route(f"/ccx/api/staffing/v6/{TENANT}/workers", self.workers),
            ]
        )

    async def report(self, request: Request) -> Response:
        if not _basic_ok(request):
            return JSONResponse({"error": "invalid username or password"}, status_code=401)
        if "xsd" in request.query_params:
            return Response(XSD, media_type="application/xml")
        self.prompts.append(dict(request.query_params))
        if self.fault == "html":
            return Response("<html>Workday: sign in</html>", media_type="text/html")
        if self.fault == "prompt":
            errors = [{"error": "Invalid date", "field": "Start_Date"}]
            return JSONResponse({"error": "Validation error occurred. Invalid prompt value", "errors": errors}, 400)
        entries = [
            {"Time_Block_ID": f"TB{k}", "Worker_ID": f"W{k % 3}", "Location": "P1",
             "Reported_Date": f"2026-11-0{2 + k // 4}-06:00", "Hours": f"{7 + k}.25"}
            for k in range(5)
        ]  # fmt: skip
        if self.fault == "malformed":
            return JSONResponse({"Report_Entry": {"Time_Block_ID": "TB0"}})
        return JSONResponse({"Report_Entry": entries})

    async def workers(self, request: Request) -> Response:
        if not _basic_ok(request):
            return JSONResponse({"error": "invalid username or password"}, status_code=401)
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        data = [{"id": f"w{k:03d}", "descriptor": f"Worker {k}", "hireDate": "2022-03-15", "fte": "1.0"}
                for k in range(230)][offset : offset + limit]  # fmt: skip
        return JSONResponse({"total": 230, "data": data})


@pytest.fixture
def workday():
    service = Workday()
    with HttpServerThread(service.app(), name="workday-like") as server:
        service.url = server.url
        yield service


def workday_resource(service, **kw) -> WorkdayResource:
    options = {"base_url": service.url + "/ccx/", "tenant": TENANT, "source_name": "workday-test",
               "auth_mode": "basic", "username": USER, "password": PASSWORD, "timezone": "America/Chicago",
               "max_attempts": 1}  # fmt: skip
    return WorkdayResource(**(options | kw))


def test_workday_report_rows_of_the_plant_day_typed_from_its_xsd(workday):
    extract = workday_resource(workday).read_report("ISU_GL", HOURS, DAY, PROMPTS)
    assert workday.prompts == [{"format": "json", "Start_Date": "2026-11-02-06:00", "End_Date": "2026-11-02-06:00"}]
    assert list(extract.frame["block"]) == ["TB0", "TB1", "TB2", "TB3"]
    assert list(extract.frame["hours"]) == [Decimal("7.25"), Decimal("8.25"), Decimal("9.25"), Decimal("10.25")]
    assert set(extract.frame["work_date"]) == {datetime(2026, 11, 2, tzinfo=CHICAGO)}
    assert extract.mode == "full (1 rows outside the window not kept)"


def test_workday_date_prompts_carry_the_plant_offset():
    assert workday_date(date(2026, 7, 1), CHICAGO) == "2026-07-01-05:00"
    assert workday_date(date(2026, 12, 1), CHICAGO) == "2026-12-01-06:00"


def test_workday_rest_collection_pages_by_100(workday):
    query = EntityQuery(
        "workers", {"worker": "id", "name": "descriptor", "hired": "hireDate", "fte": "fte"}, ("worker",)
    )
    extract = workday_resource(workday).read_collection(
        "staffing/v6", query, {"worker": "string", "name": "string", "hired": "date", "fte": "decimal"}
    )
    assert len(extract.frame) == 230 and extract.pages == 3
    assert extract.frame["fte"].iloc[0] == Decimal("1.0")
    missing = EntityQuery("workers", {"worker": "id", "site": "businessSite"}, ("worker",))
    with pytest.raises(VendorError, match="workday-test: workers: field 'businessSite' is in no row the API returned"):
        workday_resource(workday).read_collection("staffing/v6", missing, {"worker": "string", "site": "string"})


def test_workday_bad_answers_name_the_instance(workday):
    unknown = EntityQuery(REPORT, {**HOURS.fields, "cost": "Cost_Center"}, ("block",))
    with pytest.raises(ODataSchemaError, match=f"workday-test: resource '{REPORT}' has no property 'Cost_Center'"):
        workday_resource(workday).read_report("ISU_GL", unknown)
    expired = "workday-test: report ISU_GL/GL_Plant_Hours_Worked: HTTP 401 from the server: invalid username"
    with pytest.raises(VendorError, match=expired) as caught:
        workday_resource(workday, password="last-quarters-Pa55").read_report("ISU_GL", HOURS, DAY, PROMPTS)
    assert "last-quarters-Pa55" not in str(caught.value)
    workday.fault = "prompt"
    refused = "workday-test: report ISU_GL/GL_Plant_Hours_Worked: HTTP 400 from the server: Validation error"
    with pytest.raises(VendorError, match=refused + " occurred. Invalid prompt value; Start_Date: Invalid date"):
        workday_resource(workday).read_report("ISU_GL", HOURS, DAY, PROMPTS)
    workday.fault = "html"
    with pytest.raises(HttpResponseFormatError, match="workday-test: .* expected a JSON content type"):
        workday_resource(workday).read_report("ISU_GL", HOURS, DAY, PROMPTS)
    workday.fault = "malformed"
    with pytest.raises(VendorError, match="workday-test: report ISU_GL/GL_Plant_Hours_Worked: not a RaaS JSON"):
        workday_resource(workday).read_report("ISU_GL", HOURS, DAY, PROMPTS)


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_a_workday_report_is_stored_per_plant_day_with_its_checks(workday, tmp_path, monkeypatch):
    monkeypatch.setenv("GL_TEST_WORKDAY_PASSWORD", PASSWORD)
    source = WorkdaySource(
        base_url=workday.url + "/ccx/",
        tenant=TENANT,
        source_name="workday-test",
        username=USER,
        reports={"hours": {"owner": "ISU_GL", "report": REPORT, "fields": HOURS.fields, "keys": ["block"],
                           "date_column": "work_date"}},
    )  # fmt: skip
    warehouse = str(tmp_path / "w.duckdb")
    result = materialize(
        build_workday_assets(source, "America/Chicago"),
        resources={
            "workday": workday_from_source(source, "America/Chicago", password=EnvVar("GL_TEST_WORKDAY_PASSWORD")),
            "warehouse": warehouse_io_manager(warehouse),
        },
        partition_key="2026-11-02",
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"workday_hours_keys_unique": True, "workday_hours_in_window": True}
    with duckdb.connect(warehouse, read_only=True) as con:
        stored = con.execute("select count(*), sum(hours), min(source) from plant.workday_hours").fetchall()
    assert stored == [(4, Decimal("35.000"), "workday-test")]  # 7.25 + 8.25 + 9.25 + 10.25
