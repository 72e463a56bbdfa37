"""The demo SAP OData service: documents consistent with the plant process, and Gateway behaviour."""

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from gl_demo_plant.erp_model import ErpModel
from gl_demo_plant.plant_model import PROCESS_TAGS
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SERVICE_PATH, TOKEN_PATH

TAGS = {tag.name: tag for tag in PROCESS_TAGS}


def process_integral(tag: str, start: datetime, end: datetime) -> float:
    """The tag's noiseless shape integrated over [start, end) in 10 s steps, per hour of flow."""
    t = np.arange(start.timestamp(), end.timestamp(), 10.0) + 5.0
    return float(TAGS[tag].shape(t).sum() * 10.0 / 3600.0)


def test_gas_receipts_and_steam_confirmations_follow_the_boiler():
    model = ErpModel()
    start, end = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)
    receipts = model.tables["GoodsReceiptSet"].columns
    chosen = (receipts["ChangedAt"] - 5400_000 >= start.timestamp() * 1000) & (
        receipts["ChangedAt"] - 5400_000 < end.timestamp() * 1000
    )
    assert chosen.sum() == 24
    gas_m3 = receipts["Quantity"][chosen].sum() / 1000
    assert gas_m3 == pytest.approx(process_integral("Boiler1.FuelGasFlow", start, end), rel=1e-3)
    steam = model.tables["ProductionConfirmationSet"].columns
    shifts = (steam["ChangedAt"] - (8 * 3600 + 600) * 1000 >= start.timestamp() * 1000) & (
        steam["ChangedAt"] - (8 * 3600 + 600) * 1000 < end.timestamp() * 1000
    )
    assert steam["Quantity"][shifts].sum() / 1000 == pytest.approx(
        process_integral("Boiler1.SteamFlow", start, end), rel=1e-3
    )
    # Amounts are exact cents of quantity x price, never negative.
    assert (receipts["Amount"] > 0).all()


def test_year_of_200k_receipts_is_built_vectorized():
    model = ErpModel(
        receipt_interval_s=157.68, start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC)
    )
    documents = model.tables["GoodsReceiptSet"].columns["MaterialDocument"]
    assert len(documents) == 200_000 and len(set(documents)) == 200_000


def test_gateway_behaviour(erp_service):
    with httpx.Client(base_url=erp_service.url) as client:
        assert client.get(SERVICE_PATH + "GoodsReceiptSet", params={"$format": "json"}).status_code == 401
        token = client.post(
            TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        ).json()["access_token"]
        assert (
            client.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, "x")).status_code
            == 401
        )
        headers = {"Authorization": f"Bearer {token}"}
        page = client.get(
            SERVICE_PATH + "GoodsReceiptSet",
            params={
                "$format": "json",
                "$select": "MaterialDocument,Quantity,ChangedAt",
                "$filter": "PostingDate ge datetime'2026-11-01T00:00:00' and PostingDate lt datetime'2026-11-02T00:00'",
                "$inlinecount": "allpages",
            },
            headers=headers,
        ).json()["d"]
        assert page["__count"] == "25" and len(page["results"]) == 7
        assert page["__next"].startswith(erp_service.url) and "$skiptoken=7" in page["__next"]
        row = page["results"][0]
        assert set(row) == {"__metadata", "MaterialDocument", "Quantity", "ChangedAt"}
        assert isinstance(row["Quantity"], str) and row["ChangedAt"].endswith("-0300)/")  # CDT, minutes
        refused = client.get(
            SERVICE_PATH + "GoodsReceiptSet", params={"$format": "json", "$expand": "x"}, headers=headers
        )
        assert refused.status_code == 400 and "$expand" in refused.json()["error"]["message"]["value"]
        metadata = client.get(SERVICE_PATH + "$metadata", headers=headers)
        assert metadata.headers["content-type"].startswith("application/xml")
        assert 'sap:display-format="Date"' in metadata.text


def test_orderby_sorts_and_an_unknown_property_is_refused(erp_service):
    with httpx.Client(base_url=erp_service.url) as client:
        token = client.post(
            TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        params = {"$format": "json", "$select": "MaterialDocument", "$top": "5"}

        def documents(orderby: str) -> list[str]:
            response = client.get(
                SERVICE_PATH + "GoodsReceiptSet", params={**params, "$orderby": orderby}, headers=headers
            )
            return [row["MaterialDocument"] for row in response.json()["d"]["results"]]

        newest = documents("MaterialDocument desc")
        assert newest == sorted(newest, reverse=True) and newest[0] == max(
            erp_service.model.tables["GoodsReceiptSet"].columns["MaterialDocument"]
        )
        assert documents("MaterialDocument,DocumentItem") == sorted(documents("MaterialDocument asc"))
        refused = client.get(SERVICE_PATH + "GoodsReceiptSet", params={**params, "$orderby": "Nope"}, headers=headers)
        assert refused.status_code == 400 and "$orderby" in refused.json()["error"]["message"]["value"]
