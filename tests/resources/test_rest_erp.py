"""Oracle Fusion REST and Workday (RaaS, REST) resources against Starlette services shaped from vendor references.

Oracle (docs.oracle.com/en/cloud/saas/human-resources/farws/Navigate_a_Collection.html and the ADF
REST `describe`, error body `application/vnd.oracle.adf.error+json` with `o:errorDetails`): `items`,
`hasMore`, `totalResults`, `limit`/`offset`, `q=` on a `date` attribute, `onlyData`, `fields`.
Workday (apis.io/apis/workday/raas-api, the RaaS OpenAPI; apis.io/examples/workday-integrations/
workday-integrations-list-workers-example): `Report_Entry` with dates like `2026-11-01-06:00`, the
report schema at `?xsd`, REST `{"total", "data"}` at limit 100.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import EnvVar, materialize

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
from tests.resources.rest_erp_servers import (
    ORACLE_ROOT,
    PASSWORD,
    REPORT,
    TENANT,
    USER,
    Fusion,
    Workday,
)

CHICAGO = ZoneInfo("America/Chicago")
DAY = (datetime(2026, 11, 2, tzinfo=CHICAGO), datetime(2026, 11, 3, tzinfo=CHICAGO))
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
        reports=[{"name": "workday_hours", "owner": "ISU_GL", "report": REPORT, "fields": HOURS.fields,
                  "key": ["block"], "date_column": "work_date", "required": ["hours"]}],
    )  # fmt: skip
    warehouse = str(tmp_path / "w.duckdb")
    result = materialize(
        build_workday_assets(source, "America/Chicago"),
        resources={
            "workday": workday_from_source(
                source, "America/Chicago", username=USER, password=EnvVar("GL_TEST_WORKDAY_PASSWORD")
            ),
            "warehouse": warehouse_io_manager(warehouse),
        },
        partition_key="2026-11-02",
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "workday_hours_keys_unique": True,
        "workday_hours_required_present": True,
        "workday_hours_in_window": True,
    }
    with duckdb.connect(warehouse, read_only=True) as con:
        stored = con.execute("select count(*), sum(hours), min(source) from plant.workday_hours").fetchall()
    assert stored == [(4, Decimal("35.000"), "workday-test")]  # 7.25 + 8.25 + 9.25 + 10.25
