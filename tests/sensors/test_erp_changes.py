"""The ERP change sensor against the demo SAP OData service and a real warehouse: documents changed
or moved after their day was stored re-run exactly the stored days they touch, by delta link, with
the full comparison as the fallback and as the daily catch for deletions."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from dagster import AssetSelection, build_sensor_context, instance_for_test

from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.sensors.erp_changes import CHANGE_TAG, build_erp_change_sensor
from tests.runs import run

TZ = "America/Chicago"
DAYS = ["2026-11-01", "2026-11-02"]
NOW = datetime(2026, 11, 5, 12, tzinfo=UTC)
DOCUMENTS = AssetSelection.assets("erp_fuel_receipts", "erp_production")
RECEIPTS = "GoodsReceiptSet"


@pytest.fixture
def stored(erp_site, tmp_path):
    """Two plant days of ERP documents materialized into a tmp warehouse."""
    site = erp_site.model_copy(update={"erp": erp_site.erp.model_copy(update={"page_size": 500})})
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    with instance_for_test() as instance:
        for day in DAYS:
            assert run_day(defs, instance, day)
        yield site, defs, instance, warehouse


def run_day(defs, instance, day) -> bool:
    """One erp_daily_job-like run of the plant day (both document assets and their checks)."""
    return run(defs, instance, DOCUMENTS, day).success


def tick(site, defs, instance, cursor, now=NOW):
    sensor = build_erp_change_sensor(site.erp, TZ, "erp_daily_job", clock=lambda: now)
    resources = {"erp": defs.resources["erp"], "warehouse_reader": defs.resources["warehouse_reader"]}
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, repository_def=defs.get_repository_def()
    )
    data = sensor.evaluate_tick(context)
    return {r.partition_key: r for r in data.run_requests}, data.cursor


def receipts(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_changes_rerun_the_stored_days_they_touch(stored, erp_service):
    site, defs, instance, warehouse = stored
    model = erp_service.model

    # First look: a full read of the look-back window agrees with what is stored.
    requests, cursor = tick(site, defs, instance, None)
    assert requests == {}
    state = json.loads(cursor)
    assert state["full_read_at"] == NOW.isoformat() and all(state["delta_links"].values())

    # Move one document to the next day, correct the quantity of another, and change one on a day
    # never stored (the schedule will read that day; the sensor leaves it alone).
    moved, corrected = receipts(warehouse, "select document from plant.erp_fuel_receipts order by document limit 2")
    unstored = receipts(
        warehouse, "select max(document) from plant.erp_fuel_receipts where posting_date < '2026-11-03T06:00:00Z'"
    )[0][0]
    next_day = datetime(2026, 11, 2, tzinfo=UTC)  # an Edm.DateTime calendar date
    model.update(RECEIPTS, {"MaterialDocument": moved[0], "DocumentItem": "0001"}, PostingDate=next_day)
    model.update(RECEIPTS, {"MaterialDocument": corrected[0], "DocumentItem": "0001"}, Quantity=Decimal("1.500"))
    later = f"{int(unstored) + 60:010d}"  # a receipt two days on, 2026-11-03 or -04
    model.update(RECEIPTS, {"MaterialDocument": later, "DocumentItem": "0001"}, Quantity=Decimal("2.000"))

    requests, cursor = tick(site, defs, instance, cursor)
    assert sorted(requests) == DAYS  # the day it left and the day it entered; not 11-03
    assert requests["2026-11-01"].tags[CHANGE_TAG] == "fuel_receipts"
    assert json.loads(cursor)["full_read_at"] == NOW.isoformat()  # delta ticks keep the last full time
    assert all(run_day(defs, instance, day) for day in requests)
    assert receipts(warehouse, f"select count(*) from plant.erp_fuel_receipts where document = '{moved[0]}'") == [(1,)]
    assert receipts(warehouse, f"select quantity from plant.erp_fuel_receipts where document = '{corrected[0]}'") == [
        (Decimal("1.500"),)
    ]
    dup = "select count(*) - count(distinct document) from plant.erp_fuel_receipts"
    assert receipts(warehouse, dup) == [(0,)]

    # Nothing new: the delta is empty and nothing is asked for.
    requests, cursor = tick(site, defs, instance, cursor)
    assert requests == {}

    # The same change seen again (a retried tick with the old cursor) asks with the same run keys.
    model.update(RECEIPTS, {"MaterialDocument": corrected[0], "DocumentItem": "0001"}, Quantity=Decimal("3.000"))
    first, _ = tick(site, defs, instance, cursor)
    again, cursor = tick(site, defs, instance, cursor)
    assert list(first) == ["2026-11-01"] and first["2026-11-01"].run_key == again["2026-11-01"].run_key
    assert run_day(defs, instance, "2026-11-01")


def test_refused_token_and_the_daily_full_comparison(stored, erp_service):
    site, defs, instance, warehouse = stored
    model = erp_service.model
    _, cursor = tick(site, defs, instance, None)
    first, second = receipts(warehouse, "select document from plant.erp_fuel_receipts order by document limit 2")

    # The service dropped its change log: the sensor reads the window in full and still finds the change.
    erp_service.expire_delta_tokens()
    model.update(RECEIPTS, {"MaterialDocument": first[0], "DocumentItem": "0001"}, Quantity=Decimal("7.000"))
    later = NOW + timedelta(hours=1)
    requests, cursor = tick(site, defs, instance, cursor, later)
    assert list(requests) == ["2026-11-01"]
    assert json.loads(cursor)["full_read_at"] == later.isoformat()
    assert run_day(defs, instance, "2026-11-01")

    # A document moved to another plant leaves the filter (Plant eq '1000'): a delta cannot show it,
    # the next full comparison (after full_compare_hours) does.
    model.update(RECEIPTS, {"MaterialDocument": second[0], "DocumentItem": "0001"}, Plant="2000")
    requests, cursor = tick(site, defs, instance, cursor, later + timedelta(hours=1))
    assert requests == {}
    requests, cursor = tick(site, defs, instance, cursor, later + timedelta(hours=site.erp.full_compare_hours))
    assert list(requests) == ["2026-11-01"]
    assert run_day(defs, instance, "2026-11-01")
    assert receipts(warehouse, f"select count(*) from plant.erp_fuel_receipts where document = '{second[0]}'") == [(0,)]


def test_a_bad_answer_fails_the_tick_naming_the_service_and_keeps_the_cursor(stored, erp_service):
    site, defs, instance, warehouse = stored
    _, cursor = tick(site, defs, instance, None)
    (document,) = receipts(warehouse, "select min(document) from plant.erp_fuel_receipts")[0]
    erp_service.model.update(RECEIPTS, {"MaterialDocument": document, "DocumentItem": "0001"}, Quantity=Decimal("9"))
    erp_service.faults.malformed_json = 1
    with pytest.raises(Exception, match="malformed JSON") as failed:
        tick(site, defs, instance, cursor)
    assert site.erp.source_name in str(failed.value)
    # Nothing moved: the next tick, with the same cursor, still finds the change.
    requests, _ = tick(site, defs, instance, cursor)
    assert list(requests) == ["2026-11-01"]
