"""Start SAP's OData v4 mock server (tests/interop/odata_v4_server) on an S/4HANA Cloud-like service we write.

Shared by the conformance tests and bench/odata_v4.py. The service is a CSDL v4 file (schema alias
`SAP__self`, as S/4HANA Cloud's v4 APIs publish it) and one JSON file per entity set; every value
is a rule of the row number, so the expected rows are computed here, not read back from the server.
Receipts carry an `Edm.Date` posting date (a plant day), production confirmations an
`Edm.DateTimeOffset` one (an instant); decimals alternate between JSON strings and JSON numbers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.interop.node_opcua import ensure_node_modules, free_port, node_process

SERVER_DIR = Path(__file__).parent / "odata_v4_server"
SERVICE_PATH = "/sap/opu/odata4/sap/zgl_plant/srvd_a2x/sap/zgl_plant/0001/"
FIRST_DAY = date(2026, 11, 1)
PLANT = "1000"

METADATA = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="com.sap.gateway.srvd_a2x.zgl_plant.v0001" Alias="SAP__self"
            xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="MaterialDocumentItemType">
        <Key><PropertyRef Name="MaterialDocument"/><PropertyRef Name="MaterialDocumentItem"/></Key>
        <Property Name="MaterialDocument" Type="Edm.String" Nullable="false" MaxLength="10"/>
        <Property Name="MaterialDocumentItem" Type="Edm.String" Nullable="false" MaxLength="4"/>
        <Property Name="PostingDate" Type="Edm.Date"/>
        <Property Name="Plant" Type="Edm.String" MaxLength="4"/>
        <Property Name="Material" Type="Edm.String" MaxLength="40"/>
        <Property Name="QuantityInEntryUnit" Type="Edm.Decimal" Precision="13" Scale="3"/>
        <Property Name="EntryUnit" Type="Edm.String" MaxLength="3"/>
        <Property Name="TotalGoodsMvtAmtInCCCrcy" Type="Edm.Decimal" Precision="14" Scale="3"/>
        <Property Name="CompanyCodeCurrency" Type="Edm.String" MaxLength="5"/>
        <Property Name="LastChangeDateTime" Type="Edm.DateTimeOffset" Precision="7"/>
      </EntityType>
      <EntityType Name="ProductionConfirmationType">
        <Key><PropertyRef Name="Confirmation"/><PropertyRef Name="ConfirmationCounter"/></Key>
        <Property Name="Confirmation" Type="Edm.String" Nullable="false" MaxLength="10"/>
        <Property Name="ConfirmationCounter" Type="Edm.String" Nullable="false" MaxLength="8"/>
        <Property Name="PostingDateTime" Type="Edm.DateTimeOffset" Precision="0"/>
        <Property Name="Plant" Type="Edm.String" MaxLength="4"/>
        <Property Name="Product" Type="Edm.String" MaxLength="40"/>
        <Property Name="ConfirmationYieldQuantity" Type="Edm.Decimal" Precision="13" Scale="3"/>
        <Property Name="ProductionUnit" Type="Edm.String" MaxLength="3"/>
        <Property Name="LastChangeDateTime" Type="Edm.DateTimeOffset" Precision="7"/>
      </EntityType>
      <EntityType Name="ProductType">
        <Key><PropertyRef Name="Product"/></Key>
        <Property Name="Product" Type="Edm.String" Nullable="false" MaxLength="40"/>
        <Property Name="ProductDescription" Type="Edm.String"/>
        <Property Name="ProductType" Type="Edm.String" MaxLength="4"/>
        <Property Name="BaseUnit" Type="Edm.String" MaxLength="3"/>
      </EntityType>
      <EntityType Name="PlantType">
        <Key><PropertyRef Name="Plant"/></Key>
        <Property Name="Plant" Type="Edm.String" Nullable="false" MaxLength="4"/>
        <Property Name="PlantName" Type="Edm.String"/>
        <Property Name="Country" Type="Edm.String" MaxLength="3"/>
        <Property Name="TimeZone" Type="Edm.String"/>
      </EntityType>
      <EntityContainer Name="Container">
        <EntitySet Name="MaterialDocumentItem" EntityType="SAP__self.MaterialDocumentItemType"/>
        <EntitySet Name="ProductionConfirmation" EntityType="SAP__self.ProductionConfirmationType"/>
        <EntitySet Name="Product" EntityType="SAP__self.ProductType"/>
        <EntitySet Name="Plant" EntityType="SAP__self.PlantType"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""

RECEIPT_FIELDS = {
    "document": "MaterialDocument",
    "item": "MaterialDocumentItem",
    "posting_date": "PostingDate",
    "plant": "Plant",
    "material": "Material",
    "quantity": "QuantityInEntryUnit",
    "unit": "EntryUnit",
    "amount": "TotalGoodsMvtAmtInCCCrcy",
    "currency": "CompanyCodeCurrency",
    "changed_at": "LastChangeDateTime",
}
PRODUCTION_FIELDS = {
    "confirmation": "Confirmation",
    "counter": "ConfirmationCounter",
    "posting_date": "PostingDateTime",
    "plant": "Plant",
    "product": "Product",
    "quantity": "ConfirmationYieldQuantity",
    "unit": "ProductionUnit",
    "changed_at": "LastChangeDateTime",
}
MATERIAL_FIELDS = {"material": "Product", "description": "ProductDescription", "material_type": "ProductType",
                   "base_unit": "BaseUnit"}  # fmt: skip
PLANT_FIELDS = {"plant": "Plant", "name": "PlantName", "country": "Country", "timezone": "TimeZone"}


def receipt(k: int, per_day: int) -> dict:
    """Receipt k: posted on FIRST_DAY + k // per_day; quantity k * 1.25 + 0.001 m3 (a string for even k,
    a JSON number for odd k, both exact), amount 2.5 USD per m3 to the tenth of a cent."""
    quantity = Decimal(k) * Decimal("1.25") + Decimal("0.001")
    amount = (quantity * Decimal("2.5")).quantize(Decimal("0.001"))
    return {
        "MaterialDocument": f"49{k:08d}",
        "MaterialDocumentItem": "0001",
        "PostingDate": (FIRST_DAY + timedelta(days=k // per_day)).isoformat(),
        "Plant": PLANT,
        "Material": "NATGAS",
        "QuantityInEntryUnit": str(quantity) if k % 2 == 0 else float(quantity),
        "EntryUnit": "M3",
        "TotalGoodsMvtAmtInCCCrcy": str(amount) if k % 2 == 0 else float(amount),
        "CompanyCodeCurrency": "USD",
        "LastChangeDateTime": f"{FIRST_DAY.isoformat()}T00:00:00.{k % 10_000_000:07d}Z",
    }


def confirmation(k: int) -> dict:
    """Confirmation k: posted at 2026-11-01 06:00 UTC (midnight in Chicago) + k * 30 minutes."""
    posted = datetime(2026, 11, 1, 6, tzinfo=UTC) + timedelta(minutes=30 * k)
    return {
        "Confirmation": f"7{k:09d}",
        "ConfirmationCounter": "00000001",
        "PostingDateTime": posted.isoformat().replace("+00:00", "Z"),
        "Plant": PLANT,
        "Product": "POWER",
        "ConfirmationYieldQuantity": str(Decimal(k) / 8),
        "ProductionUnit": "MWH",
        "LastChangeDateTime": posted.isoformat().replace("+00:00", "Z"),
    }


MATERIALS = [
    {"Product": "NATGAS", "ProductDescription": "Natural gas", "ProductType": "ROH", "BaseUnit": "M3"},
    {"Product": "POWER", "ProductDescription": "Electric power", "ProductType": "FERT", "BaseUnit": "MWH"},
]
PLANTS = [{"Plant": PLANT, "PlantName": "Demo plant", "Country": "US", "TimeZone": "America/Chicago"}]


@dataclass(frozen=True)
class MockService:
    url: str
    receipts: int
    per_day: int
    confirmations: int


def write_service(folder: Path, receipts: int, per_day: int, confirmations: int, track_changes: bool = False) -> None:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.xml").write_text(METADATA)
    tables = {
        "MaterialDocumentItem": [receipt(k, per_day) for k in range(receipts)],
        "ProductionConfirmation": [confirmation(k) for k in range(confirmations)],
        "Product": MATERIALS,
        "Plant": PLANTS,
    }
    for name, rows in tables.items():
        (data / f"{name}.json").write_text(json.dumps(rows))
    if track_changes:  # the receipts answer Prefer: odata.track-changes (see change_tracking.js)
        shutil.copyfile(SERVER_DIR / "change_tracking.js", data / "MaterialDocumentItem.js")


@contextmanager
def odata_v4_mock_server(
    receipts: int = 75, per_day: int = 25, confirmations: int = 96, track_changes: bool = False
) -> Iterator[MockService]:
    """server.js on a free loopback port, serving the service until the block ends; `track_changes`: the
    receipts offer delta links and report removed entities (change_tracking.js)."""
    ensure_node_modules(SERVER_DIR, "@sap-ux/fe-mockserver-core")
    with tempfile.TemporaryDirectory(prefix="fe-mockserver-") as scratch:
        base = Path(scratch)
        write_service(base, receipts, per_day, confirmations, track_changes)
        port = free_port()
        service = {
            "urlPath": SERVICE_PATH.rstrip("/"),
            "metadataPath": str(base / "metadata.xml"),
            "mockdataPath": str(base / "data"),
        }
        with node_process(SERVER_DIR, {"port": port, "services": [service]}, base, f"fe-mockserver on port {port}"):
            yield MockService(f"http://127.0.0.1:{port}{SERVICE_PATH}", receipts, per_day, confirmations)
