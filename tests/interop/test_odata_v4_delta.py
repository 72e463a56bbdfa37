"""Removed entities of an OData v4 delta reach the warehouse: against SAP's own mock server.

fe-mockserver serves the receipts with its own $metadata, $filter, $select and JSON, and updates (PATCH) or
removes (DELETE) an entity with its own code; it has no change tracking of its own, so change_tracking.js
adds delta links that answer changed rows and 4.01 `@removed` entries, through the server's mock-data hooks. The
instance is tests/interop/dialect_site/s4_cloud (track_changes, server pages only).
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import httpx
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.sensors.erp_changes import CHANGE_TAG, removed_rows
from tests.interop.node_opcua import node_missing_reason
from tests.interop.odata_v4_mock import odata_v4_mock_server, receipt
from tests.interop.test_dialect_instances import SITE, load_site

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
KEY = AssetKey([SITE, "s4_cloud", "erp_fuel_receipts"])
SENSOR = "dialects__s4_cloud__erp_document_changes"
JOB = "dialects__s4_cloud__erp_daily_job"
DAYS = ["2026-11-01", "2026-11-02"]


@pytest.fixture
def tracked_service(monkeypatch):
    reason = node_missing_reason()
    if reason:
        pytest.skip(reason)
    with odata_v4_mock_server(track_changes=True) as service:
        monkeypatch.setenv("GL_TEST_S4_URL", service.url)
        yield service


def documents(warehouse, day: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"select document from plant.{table_name(KEY)} where strftime(posting_date at time zone "
            f"'America/Chicago', '%Y-%m-%d') = ? order by document",
            [day],
        ).fetchall()
    return [row[0] for row in rows]


def test_a_removed_receipt_is_deleted_with_the_re_read_of_its_day(tracked_service, tmp_path):
    defs = load_site(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        result = materialize([defs.resolve_assets_def(KEY)], instance=instance, partition_key=day)
        assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    per_day = tracked_service.per_day
    expected = {day: [receipt(k, per_day)["MaterialDocument"] for k in range(i * per_day, (i + 1) * per_day)]
                for i, day in enumerate(DAYS)}  # fmt: skip
    assert {day: documents(warehouse, day) for day in DAYS} == expected

    sensor = defs.resolve_sensor_def(SENSOR)
    resources = {key: defs.resources[key] for key in ("odata_v4__dialects__s4_cloud", "warehouse_reader")}

    def tick(cursor):
        repository = defs.get_repository_def()
        with build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, repository_def=repository
        ) as context:
            data = sensor.evaluate_tick(context)
        return data.run_requests, data.cursor

    # First look: a full read of the look-back window agrees with the warehouse and brings a delta link.
    requests, cursor = tick(None)
    assert requests == [] and '"delta_links": {"fuel_receipts": "MaterialDocumentItem?' in cursor

    # A receipt of 2026-11-02 is deleted in the ERP (fe-mockserver's own DELETE).
    gone = receipt(30, per_day)
    entity = f"MaterialDocumentItem(MaterialDocument='{gone['MaterialDocument']}',MaterialDocumentItem='0001')"
    assert httpx.delete(tracked_service.url + entity).status_code == 204

    requests, cursor = tick(cursor)
    assert [(r.partition_key, r.tags[CHANGE_TAG]) for r in requests] == [("2026-11-02", "fuel_receipts")]
    # Before the run, the row is still stored: the sensor only asks for the re-read.
    assert gone["MaterialDocument"] in documents(warehouse, "2026-11-02")

    run = defs.resolve_job_def(JOB).execute_in_process(
        instance=instance, partition_key=requests[0].partition_key, tags=requests[0].tags
    )
    assert run.success
    assert documents(warehouse, "2026-11-02") == [d for d in expected["2026-11-02"] if d != gone["MaterialDocument"]]
    assert documents(warehouse, "2026-11-01") == expected["2026-11-01"]  # the other day untouched

    # The removal was applied: the next delta is empty and asks for nothing.
    requests, cursor = tick(cursor)
    assert requests == []

    # A receipt of 2026-11-01 corrected in place (fe-mockserver's own PATCH): the delta sends the row.
    fixed = receipt(5, per_day)
    entity = f"MaterialDocumentItem(MaterialDocument='{fixed['MaterialDocument']}',MaterialDocumentItem='0001')"
    assert httpx.patch(tracked_service.url + entity, json={"QuantityInEntryUnit": "99.5"}).status_code == 200
    requests, cursor = tick(cursor)
    assert [r.partition_key for r in requests] == ["2026-11-01"]
    assert defs.resolve_job_def(JOB).execute_in_process(instance=instance, partition_key="2026-11-01").success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quantity = con.execute(
            f"select quantity from plant.{table_name(KEY)} where document = ?", [fixed["MaterialDocument"]]
        ).fetchall()
    assert quantity == [(Decimal("99.500"),)]


def test_removed_keys_are_matched_on_our_key_columns_or_force_a_full_compare():
    stored = pd.DataFrame({"document": ["4900000030", "4900000031"], "item": ["0001", "0001"], "quantity": [1.0, 2.0]})
    key_properties = {"document": "MaterialDocument", "item": "MaterialDocumentItem"}
    gone = removed_rows(stored, [{"MaterialDocument": "4900000031", "MaterialDocumentItem": "0001"}], key_properties)
    assert list(gone["document"]) == ["4900000031"]
    assert removed_rows(stored, [], key_properties).empty
    # A service whose entity key is not our key (e.g. a GUID): the sensor drops its delta link instead.
    assert removed_rows(stored, [{"MaterialDocumentUUID": "6f1c"}], key_properties) is None
