"""ErpResource against the demo SAP OData service over loopback: paging, metadata, delta, auth, faults."""

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from gl_demo_plant.erp_model import ENTITY_BY_SET
from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.sap_odata import format_decimal, metadata_xml
from gl_pipelines.resources.erp import EntityQuery, ErpPagingError, ErpResource, merge_delta, to_exact_decimals
from gl_pipelines.resources.http import HttpResponseFormatError, HttpSourceError
from gl_pipelines.resources.odata import ODataError, parse_metadata

RECEIPTS = EntityQuery(
    "GoodsReceiptSet",
    {
        "document": "MaterialDocument",
        "item": "DocumentItem",
        "posting_date": "PostingDate",
        "quantity": "Quantity",
        "unit": "Unit",
        "amount": "Amount",
        "currency": "Currency",
    },
    keys=("document", "item"),
    date_column="posting_date",
    filter="Plant eq '1000'",
)
# Plant day 2026-11-01 in America/Chicago: the fall-back day, 25 hourly receipts.
DAY = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))
DAY_POSTING_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


def expected_receipts(service, posting_ms=DAY_POSTING_MS) -> pd.DataFrame:
    """What the service holds for that posting date, straight from its model's columns."""
    columns = service.model.tables["GoodsReceiptSet"].columns
    rows = np.flatnonzero(columns["PostingDate"] == posting_ms)
    return pd.DataFrame(
        {
            "document": columns["MaterialDocument"][rows],
            "quantity": [Decimal(format_decimal(q, 3)) for q in columns["Quantity"][rows]],
            "amount": [Decimal(format_decimal(a, 2)) for a in columns["Amount"][rows]],
        }
    )


def test_a_plant_day_across_top_windows_and_next_pages_loses_and_duplicates_nothing(erp_service, erp_resource):
    extract = erp_resource.read(RECEIPTS, DAY)
    expected = expected_receipts(erp_service)
    assert len(expected) == 25
    frame = extract.frame
    assert frame["document"].tolist() == expected["document"].tolist()  # order kept, none lost, none twice
    assert [Decimal(str(q)) for q in frame["quantity"]] == expected["quantity"].tolist()
    assert [Decimal(str(a)) for a in frame["amount"]] == expected["amount"].tolist()
    assert extract.server_count == 25 and extract.duplicates_dropped == 0
    # $top windows of 10 (10, 10, 5), each split by the server's pages of 7: 2 + 2 + 1 pages.
    assert extract.pages == 5
    assert (frame["posting_date"] == pd.Timestamp("2026-11-01 05:00", tz="UTC")).all()
    assert str(frame["quantity"].dtype) == "decimal128(18, 3)[pyarrow]"


def test_skip_windows_stay_consistent_when_the_server_has_no_stable_order(erp_service, erp_resource):
    # OData promises no order without $orderby; $skip windows over a shifting order lose and repeat rows.
    erp_service.faults.unstable_order = True
    extract = erp_resource.read(RECEIPTS, DAY)
    assert sorted(extract.frame["document"]) == sorted(expected_receipts(erp_service)["document"])
    assert extract.duplicates_dropped == 0


def test_server_driven_paging_only(erp_service, erp_resource):
    resource = erp_resource.model_copy(update={"page_size": None})
    extract = resource.read(RECEIPTS, DAY)
    assert extract.frame["document"].tolist() == expected_receipts(erp_service)["document"].tolist()
    assert extract.pages == 4  # 25 rows at 7 per page


def test_metadata_read_once_and_unknown_property_named(erp_service, erp_resource):
    erp_resource.read(RECEIPTS, DAY)
    erp_resource.read(RECEIPTS, DAY)
    assert erp_service.stats.requests["metadata"] == 1
    bad = EntityQuery("GoodsReceiptSet", {**RECEIPTS.fields, "quantity": "Quantiy"}, RECEIPTS.keys, "posting_date")
    with pytest.raises(ODataError, match=r"test-erp: entity set 'GoodsReceiptSet' has no property 'Quantiy'"):
        erp_resource.read(bad, DAY)


def test_property_missing_from_a_row_stays_null(erp_service, erp_resource):
    erp_service.faults.drop_property = ("GoodsReceiptSet", "PostingDate")
    frame = erp_resource.read(RECEIPTS, DAY).frame
    # The first row of each of the 5 pages lacks PostingDate: null, not 1753-01-01 or the epoch.
    assert frame["posting_date"].isna().sum() == 5
    assert frame["quantity"].notna().all()


def test_next_link_to_another_origin_is_refused(erp_service, erp_resource):
    erp_service.faults.foreign_next = True
    with pytest.raises(HttpSourceError, match="refusing a link to another origin"):
        erp_resource.read(RECEIPTS, DAY)


def test_delta_token_gives_only_changes_and_an_expired_token_forces_a_full_read(erp_service, erp_resource):
    full = erp_resource.read(RECEIPTS, DAY)
    assert full.mode == "full" and full.delta_link and "!deltatoken=" in full.delta_link
    changed = full.frame["document"].iloc[3]
    erp_service.model.update(
        "GoodsReceiptSet", {"MaterialDocument": changed, "DocumentItem": "0001"}, Quantity=Decimal("1234.567")
    )
    new_row = {
        "MaterialDocument": "5999999999",
        "DocumentItem": "0001",
        "PostingDate": datetime(2026, 11, 1, tzinfo=UTC),
        "Plant": "1000",
        "Material": "NATGAS",
        "Quantity": Decimal("10.5"),
        "Unit": "M3",
        "Amount": Decimal("1.31"),
        "Currency": "USD",
        "ChangedAt": datetime(2026, 11, 2, tzinfo=UTC),
    }
    erp_service.model.add("GoodsReceiptSet", new_row)
    delta = erp_resource.read(RECEIPTS, DAY, delta_link=full.delta_link)
    assert delta.mode == "delta"
    assert sorted(delta.frame["document"]) == sorted([changed, "5999999999"])
    merged = merge_delta(full.frame, delta.frame, RECEIPTS.keys)
    assert len(merged) == 26
    assert merged.set_index("document").loc[changed, "quantity"] == Decimal("1234.567")

    erp_service.expire_delta_tokens()
    fallback = erp_resource.read(RECEIPTS, DAY, delta_link=delta.delta_link)
    assert fallback.mode == "full (delta token refused: HTTP 410)"
    assert len(fallback.frame) == 26


def test_token_renewed_before_expiry_during_a_slow_read(erp_service, erp_resource):
    erp_service.token_ttl_s = 1.0
    erp_service.faults.delay_s = 0.35  # 5 requests (metadata + 4 pages): the read outlives the first token
    extract = erp_resource.model_copy(update={"page_size": None}).read(RECEIPTS, DAY)
    assert len(extract.frame) == 25
    assert erp_service.stats.tokens_issued >= 2
    assert erp_service.stats.unauthorized == 0


def test_token_revoked_mid_read_gets_one_401_one_refresh_one_replay(erp_service, erp_resource):
    original = erp_service._query

    def query_then_revoke(request, table):
        body = original(request, table)
        if erp_service.stats.pages == 2:
            erp_service.revoke_tokens()
        return body

    erp_service._query = query_then_revoke
    extract = erp_resource.model_copy(update={"page_size": None}).read(RECEIPTS, DAY)
    assert len(extract.frame) == 25
    assert erp_service.stats.unauthorized == 1
    assert erp_service.stats.tokens_issued == 2


def test_retry_after_honoured_then_success(erp_service, erp_resource):
    erp_resource.metadata()
    erp_service.faults.statuses = [429, 503]
    erp_service.faults.retry_after_s = 1
    began = time.perf_counter()
    extract = erp_resource.read(RECEIPTS, DAY)
    assert time.perf_counter() - began >= 1.0
    assert len(extract.frame) == 25


def test_bad_request_is_not_retried_and_names_the_source(erp_service, erp_resource):
    bad = EntityQuery("GoodsReceiptSet", RECEIPTS.fields, RECEIPTS.keys, "posting_date", filter="Plant eq 1000")
    with pytest.raises(
        HttpSourceError, match=r"test-erp: GET /sap/opu/odata/sap/ZGL_PLANT_SRV/GoodsReceiptSet -> HTTP 400"
    ):
        erp_resource.read(bad, DAY)
    assert erp_service.stats.requests["entity_set"] == 1


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_content_type"])
def test_malformed_json_and_wrong_content_type_are_clear_errors(erp_service, erp_resource, fault):
    setattr(erp_service.faults, fault, 1)
    with pytest.raises(HttpResponseFormatError, match="malformed JSON|expected a JSON content type, got 'text/html"):
        erp_resource.read(RECEIPTS, DAY)


def test_amount_that_does_not_fit_is_refused_not_rounded():
    entity = parse_metadata(metadata_xml())["GoodsReceiptSet"]
    query = EntityQuery("GoodsReceiptSet", {"document": "MaterialDocument", "quantity": "Quantity"}, ("document",))
    frame = pd.DataFrame({"document": ["1", "2"], "quantity": [Decimal("1.5"), Decimal("0.0001")]})
    with pytest.raises(ODataError, match=r"GoodsReceiptSet.Quantity = 0.0001 for \{'document': '2'\}"):
        to_exact_decimals(frame, entity, query)


def test_master_data_read_whole(erp_resource):
    materials = EntityQuery("MaterialSet", {"material": "Material", "base_unit": "BaseUnit"}, ("material",))
    frame = erp_resource.read(materials).frame
    assert dict(zip(frame["material"], frame["base_unit"], strict=True)) == {
        "ELEC": "MWH",
        "NATGAS": "M3",
        "STEAM": "TO",
    }
    assert ENTITY_BY_SET["MaterialSet"].keys == ("Material",)


def test_document_moving_out_while_paging_is_detected_not_silently_lost(erp_service, erp_resource):
    original = erp_service._query

    def query_then_move(request, table):
        body = original(request, table)
        if erp_service.stats.pages == 1:  # after the first window: row 2 leaves the day, later rows shift left
            key = {"MaterialDocument": body["d"]["results"][1]["MaterialDocument"], "DocumentItem": "0001"}
            erp_service.model.update("GoodsReceiptSet", key, PostingDate=datetime(2026, 11, 5, tzinfo=UTC))
        return body

    erp_service._query = query_then_move
    resource = erp_resource.model_copy(update={"max_in_flight": 1})
    with pytest.raises(ErpPagingError, match=r"GoodsReceiptSet changed while it was paged: the server counted 25 rows"):
        resource.read(RECEIPTS, DAY)
    erp_service._query = original
    assert len(resource.read(RECEIPTS, DAY).frame) == 24  # read again: consistent


def test_decimal_sent_as_a_json_number_stays_exact():
    # Some servers (OData v4, a few v2) send Edm.Decimal as a bare JSON number: it must not pass through float.
    body = '{"d": {"results": [{"MaterialDocument": "1", "DocumentItem": "0001", "Quantity": 123456789012345.678}]}}'
    app = Starlette(
        routes=[
            Route("/srv/$metadata", lambda request: Response(metadata_xml(), media_type="application/xml")),
            Route("/srv/GoodsReceiptSet", lambda request: Response(body, media_type="application/json")),
        ]
    )
    query = EntityQuery(
        "GoodsReceiptSet", {k: RECEIPTS.fields[k] for k in ("document", "item", "quantity")}, ("document",)
    )
    with HttpServerThread(app) as server:
        frame = ErpResource(base_url=server.url + "/srv/", auth_mode="none", page_size=None).read(query).frame
    assert Decimal(str(frame["quantity"].iloc[0])) == Decimal("123456789012345.678")


def test_a_next_link_that_repeats_is_an_error_not_an_endless_loop():
    calls = []

    def page(request):
        calls.append(request.url.query)
        body = {"d": {"results": [{"MaterialDocument": "1", "DocumentItem": "0001"}]}}
        if len(calls) < 50:  # bounded here only so that a client without the guard ends too
            body["d"]["__next"] = str(request.url)
        return Response(json.dumps(body), media_type="application/json")

    app = Starlette(
        routes=[
            Route("/srv/$metadata", lambda request: Response(metadata_xml(), media_type="application/xml")),
            Route("/srv/GoodsReceiptSet", page),
        ]
    )
    query = EntityQuery("GoodsReceiptSet", {k: RECEIPTS.fields[k] for k in ("document", "item")}, ("document", "item"))
    with HttpServerThread(app) as server, pytest.raises(ODataError, match=r"GoodsReceiptSet: __next repeats"):
        ErpResource(base_url=server.url + "/srv/", auth_mode="none", page_size=None).read(query)
    assert len(calls) == 2
