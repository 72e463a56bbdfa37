"""The OData v2 wire rules as plain functions: dates, decimals, $metadata, rows, window filters."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from gl_demo_plant.sap_odata import metadata_xml
from gl_pipelines.resources.odata import (
    ODataError,
    ODataSchemaError,
    Property,
    convert_value,
    entity_rows,
    normalize_rows,
    parse_decimal,
    parse_metadata,
    parse_odata_date,
    validate_fields,
    window_filter,
)

CHICAGO = ZoneInfo("America/Chicago")


def test_dates_plain_and_with_offsets():
    assert parse_odata_date("/Date(1793491200000)/") == datetime(2026, 11, 1, tzinfo=UTC)
    # The milliseconds are local wall clock; the offset (minutes) takes them back to UTC.
    assert parse_odata_date("/Date(1793491200000+0060)/") == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert parse_odata_date("/Date(1793491200000-0300)/") == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert parse_odata_date("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)
    assert parse_odata_date("2026-11-01T05:00:00") == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert parse_odata_date(None) is None
    with pytest.raises(ODataError, match=r"GoodsReceiptSet\.PostingDate: 'yesterday' is not an OData date"):
        parse_odata_date("yesterday", entity_set="GoodsReceiptSet", prop="PostingDate")


def test_decimals_are_exact():
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal("2717.719") == Decimal("2717.719")
    assert parse_decimal("-5.000") == Decimal("-5")
    assert parse_decimal(12) == Decimal(12)
    assert parse_decimal(None) is None
    for bad in ("12,5", True, "NaN"):
        with pytest.raises(ODataError, match=r"S\.Quantity"):
            parse_decimal(bad, entity_set="S", prop="Quantity")


def test_metadata_parsed_to_entity_sets_keys_and_types():
    metadata = parse_metadata(metadata_xml())
    receipts = metadata["GoodsReceiptSet"]
    assert receipts.keys == ("MaterialDocument", "DocumentItem")
    assert receipts.types()["Quantity"] == "Edm.Decimal"
    assert receipts.types()["ChangedAt"] == "Edm.DateTimeOffset"
    assert receipts.properties["PostingDate"].date_only
    assert not receipts.properties["ChangedAt"].date_only
    assert set(metadata) == {
        "GoodsReceiptSet",
        "ProductionConfirmationSet",
        "MaterialSet",
        "PlantSet",
        "MaintenanceOrderSet",
        "ProductionOrderSet",
    }
    assert metadata["MaintenanceOrderSet"].keys == ("MaintenanceOrder",)
    assert metadata["ProductionOrderSet"].properties["ScheduledStart"].date_only
    with pytest.raises(ODataError, match="not an EDMX document"):
        parse_metadata("<html>logon")


def test_validation_names_entity_set_and_missing_property():
    metadata = parse_metadata(metadata_xml())
    with pytest.raises(ODataSchemaError, match=r"entity set 'GoodsReceiptSet' has no property 'PostingDat'"):
        validate_fields(metadata, "GoodsReceiptSet", ["Quantity", "PostingDat"])
    with pytest.raises(ODataSchemaError, match=r"entity set 'FuelSet' is not in the service's \$metadata"):
        validate_fields(metadata, "FuelSet", ["Quantity"])


def test_missing_property_stays_null_never_a_type_default():
    entity = parse_metadata(metadata_xml())["GoodsReceiptSet"]
    mapping = {"document": "MaterialDocument", "posting_date": "PostingDate", "quantity": "Quantity"}
    rows = [
        {"MaterialDocument": "1", "PostingDate": "/Date(1793491200000)/", "Quantity": "1.500"},
        {"MaterialDocument": "2"},
        {"MaterialDocument": "3", "PostingDate": None, "Quantity": None},
    ]
    frame = normalize_rows(rows, entity, mapping, CHICAGO)
    assert frame["posting_date"].iloc[0] == pd.Timestamp("2026-11-01 05:00", tz="UTC")  # local midnight, as UTC
    assert frame["posting_date"].iloc[1:].isna().all()
    assert frame["quantity"].tolist() == [Decimal("1.500"), None, None]
    assert str(frame["posting_date"].dtype) == "datetime64[us, UTC]"


def test_window_filter_date_only_uses_plant_days_and_timestamps_use_utc():
    posting = Property("PostingDate", "Edm.DateTime", date_only=True)
    # Plant day 2026-11-01 (25 hours in Chicago): 05:00Z to 06:00Z next day.
    start, end = datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC)
    assert window_filter(posting, start, end, CHICAGO) == (
        "PostingDate ge datetime'2026-11-01T00:00:00' and PostingDate lt datetime'2026-11-02T00:00:00'"
    )
    changed = Property("ChangedAt", "Edm.DateTimeOffset")
    assert window_filter(changed, start, end, CHICAGO) == (
        "ChangedAt ge datetimeoffset'2026-11-01T05:00:00Z' and ChangedAt lt datetimeoffset'2026-11-02T06:00:00Z'"
    )
    with pytest.raises(ODataSchemaError, match="not a date"):
        window_filter(Property("Plant", "Edm.String"), start, end, CHICAGO)


def test_collection_shape_is_checked():
    rows, next_link, delta, count = entity_rows(
        {"d": {"results": [{"a": 1}], "__next": "n", "__count": "9"}}, source="s"
    )
    assert (rows, next_link, delta, count) == ([{"a": 1}], "n", None, 9)
    with pytest.raises(ODataError, match=r"s: not an OData v2 collection"):
        entity_rows({"value": []}, source="s")


def test_a_binary_float_is_not_an_exact_decimal():
    assert Decimal(repr(123456789012345.678)) != Decimal("123456789012345.678")  # digits already lost
    with pytest.raises(ODataError, match=r"S\.Quantity: .* is not an exact Edm\.Decimal"):
        parse_decimal(123456789012345.678, entity_set="S", prop="Quantity")
    assert parse_decimal(Decimal("123456789012345.678")) == Decimal("123456789012345.678")


def test_a_fraction_is_not_truncated_into_an_integer():
    counter = Property("ConfirmationCounter", "Edm.Int32")
    assert (
        convert_value("12", counter, "S", CHICAGO) == 12 and convert_value(Decimal("12"), counter, "S", CHICAGO) == 12
    )
    for bad in (Decimal("12.7"), 12.7, True):
        with pytest.raises(ODataError, match=r"S\.ConfirmationCounter: .* is not an Edm\.Int32"):
            convert_value(bad, counter, "S", CHICAGO)
