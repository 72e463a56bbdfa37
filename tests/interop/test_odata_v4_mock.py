"""Our OData v4 client against SAP's own mock server (@sap-ux/fe-mockserver-core), with known rows.

What this server does, and the client must cope with: no server-driven paging (no @odata.nextLink,
so the client's $top/$skip windows are the only paging), `@odata.count` on every collection,
decimals passed through as the JSON data has them (string or number), `$filter` on Edm.Date and
Edm.DateTimeOffset evaluated by SAP's filter parser, and an unknown entity set answered with 500.
"""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from gl_pipelines.assets.erp import build_erp_assets
from gl_pipelines.resources.erp import EntityQuery
from gl_pipelines.resources.http import HttpSourceError
from gl_pipelines.resources.odata import ODataSchemaError
from gl_pipelines.resources.odata_v4 import ODataV4Resource, ODataV4Source
from gl_pipelines.resources.warehouse import table_name, warehouse_io_manager
from tests.components.project import SITE, load_project
from tests.interop.node_opcua import node_missing_reason
from tests.interop.odata_v4_mock import (
    MATERIAL_FIELDS,
    PLANT_FIELDS,
    PRODUCTION_FIELDS,
    RECEIPT_FIELDS,
    confirmation,
    odata_v4_mock_server,
    receipt,
)

CHICAGO = ZoneInfo("America/Chicago")
DAY2 = (datetime(2026, 11, 2, tzinfo=CHICAGO), datetime(2026, 11, 3, tzinfo=CHICAGO))
RECEIPTS = EntityQuery("MaterialDocumentItem", RECEIPT_FIELDS, ("document", "item"), "posting_date")
PRODUCTION = EntityQuery("ProductionConfirmation", PRODUCTION_FIELDS, ("confirmation", "counter"), "posting_date")


@pytest.fixture(scope="module")
def mock_service():
    reason = node_missing_reason()
    if reason:
        pytest.skip(reason)
    with odata_v4_mock_server() as service:
        yield service


def resource(service, **kw) -> ODataV4Resource:
    options = {"source_name": "s4-mock", "timezone": "America/Chicago", "page_size": 7, "max_attempts": 1} | kw
    return ODataV4Resource(base_url=service.url, **options)


def test_metadata_is_read_through_the_schema_alias(mock_service):
    sets = resource(mock_service).metadata()
    assert set(sets) == {"MaterialDocumentItem", "ProductionConfirmation", "Product", "Plant"}
    receipts = sets["MaterialDocumentItem"]
    assert receipts.keys == ("MaterialDocument", "MaterialDocumentItem")
    assert receipts.properties["PostingDate"].date_only
    assert receipts.properties["QuantityInEntryUnit"].edm_type == "Edm.Decimal"


def test_a_plant_day_of_receipts_is_read_exactly_in_top_skip_windows(mock_service):
    extract = resource(mock_service).read(RECEIPTS, tuple(b.astimezone(UTC) for b in DAY2))
    expected = [receipt(k, mock_service.per_day) for k in range(25, 50)]
    frame = extract.frame.sort_values("document", ignore_index=True)
    assert list(frame["document"]) == [row["MaterialDocument"] for row in expected]
    # Strings and JSON numbers alike arrive as exact decimals.
    assert [Decimal(str(q)) for q in frame["quantity"]] == [Decimal(str(r["QuantityInEntryUnit"])) for r in expected]
    assert set(frame["posting_date"]) == {pd.Timestamp("2026-11-02", tz=CHICAGO).tz_convert(UTC)}
    assert extract.server_count == 25 and extract.pages == 4  # no nextLink: four $top=7 windows
    assert "$filter=PostingDate ge 2026-11-02 and PostingDate lt 2026-11-03" in extract.query


def test_a_datetimeoffset_window_keeps_its_start_and_drops_its_end(mock_service):
    start, end = datetime(2026, 11, 1, 6, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC)
    frame = resource(mock_service).read(PRODUCTION, (start, end)).frame
    expected = [confirmation(k)["Confirmation"] for k in range(48)]  # every 30 min, [06:00, 06:00 next day)
    assert sorted(frame["confirmation"]) == expected
    assert frame["posting_date"].min() == pd.Timestamp(start) and frame["posting_date"].max() < pd.Timestamp(end)


def test_a_field_not_in_the_metadata_names_the_instance_set_and_field(mock_service):
    query = EntityQuery("MaterialDocumentItem", {**RECEIPT_FIELDS, "batch": "Batch"}, ("document", "item"))
    with pytest.raises(ODataSchemaError, match=r"s4-mock: entity set 'MaterialDocumentItem' has no property 'Batch'"):
        resource(mock_service).read(query)


def test_an_unknown_entity_set_is_refused_before_any_request(mock_service):
    api = resource(mock_service)
    with pytest.raises(ODataSchemaError, match="s4-mock: entity set 'GoodsMovements' is not in the service"):
        api.read(EntityQuery("GoodsMovements", {"document": "MaterialDocument"}, ("document",)))
    # SAP's server itself answers an unknown set with a 500: the client never relies on that.
    with pytest.raises(HttpSourceError, match="s4-mock: GET .*GoodsMovements -> HTTP 500"):
        _raw_get(api, "GoodsMovements")


def _raw_get(api: ODataV4Resource, path: str) -> None:
    async def get() -> None:
        async with api.http_client() as client:
            await client.get_json(path)

    asyncio.run(get())


# The ERP assets' own Dagster beta/preview options (backfill policy, partitioned check specs) warn.
@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_the_erp_assets_store_a_v4_day_with_their_blocking_checks(mock_service, tmp_path):
    source = ODataV4Source(
        service_url=mock_service.url,
        source_name="s4-mock",
        auth="none",
        page_size=10,
        units={"M3": "m**3", "MWH": "MW*h"},
        currencies=["USD"],
        fuel_receipts={"entity_set": "MaterialDocumentItem", "fields": RECEIPT_FIELDS, "filter": "Plant eq '1000'"},
        production={"entity_set": "ProductionConfirmation", "fields": PRODUCTION_FIELDS},
        materials={"entity_set": "Product", "fields": MATERIAL_FIELDS},
        plants={"entity_set": "Plant", "fields": PLANT_FIELDS},
    )
    warehouse = tmp_path / "w.duckdb"
    result = materialize(
        build_erp_assets(source, "America/Chicago"),
        resources={
            "erp": resource(mock_service, page_size=10),
            "warehouse": warehouse_io_manager(str(warehouse)),
        },
        selection=["erp_fuel_receipts", "erp_production"],
        partition_key="2026-11-02",
    )
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations and all(evaluations.values()), evaluations
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stored = con.execute("select count(*), sum(quantity) from plant.erp_fuel_receipts").fetchall()
        produced = con.execute("select count(*), min(source) from plant.erp_production").fetchall()
    total = sum(Decimal(str(receipt(k, 25)["QuantityInEntryUnit"])) for k in range(25, 50))
    assert stored == [(25, total)]
    assert produced == [(48, "s4-mock")]


S4_INSTANCE = """# An S/4HANA Cloud OData v4 service as a source instance, by YAML alone.
type: gl_pipelines.components.odata_v4.ODataV4Component
attributes:
  service_url: {url}
  source_name: s4-cloud
  auth: none
  page_size: 10
  units: {{M3: "m**3"}}
  fuel_receipts:
    entity_set: MaterialDocumentItem
    filter: "Plant eq '1000'"
    fields: {fields}
"""


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_an_odata_v4_instance_declared_in_yaml_stores_its_day(mock_service, tmp_path):
    fields = "{" + ", ".join(f"{column}: {prop}" for column, prop in RECEIPT_FIELDS.items()) + "}"
    defs = load_project(
        tmp_path / "project",
        {
            "plant_s4/site/defs.yaml": SITE.format(timezone="America/Chicago"),
            "plant_s4/s4/defs.yaml": S4_INSTANCE.format(url=mock_service.url, fields=fields),
        },
    )
    key = AssetKey(["plant_s4", "s4", "erp_fuel_receipts"])
    assert isinstance(defs.resources["odata_v4__plant_s4__s4"], ODataV4Resource)
    result = materialize(
        [defs.resolve_assets_def(key)], instance=DagsterInstance.ephemeral(), partition_key="2026-11-02"
    )
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    with duckdb.connect(str(tmp_path / "project" / "w.duckdb"), read_only=True) as con:
        stored = con.execute(f"select count(*), min(source) from plant.{table_name(key)}").fetchall()
    assert stored == [(25, "s4-cloud")]
