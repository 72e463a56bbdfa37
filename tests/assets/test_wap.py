"""Write-audit-publish: a re-run whose blocking check fails never replaces the good stored partition.

For each source (OPC UA, historian, ERP, CEMS): a good partition is stored; a re-run with bad data fails
its check and the stored rows stay exactly as they were; the bad rows wait in quarantine with the run id
and the failed checks; a later good run publishes and supersedes the quarantine entry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pandas as pd
import pytest
from dagster import build_sensor_context, instance_for_test

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import lst_day_window, write_day
from gl_demo_plant.pi_web_api import Mark
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.resources.warehouse_settings import WarehouseSettings
from tests.resources.shared_warehouse import read_shared
from tests.runs import run


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def read(warehouse, sql: str) -> pd.DataFrame:
    if isinstance(warehouse, WarehouseSettings):
        return read_shared(warehouse, sql)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchdf()


def entries(warehouse, table: str) -> list[tuple]:
    frame = read(
        warehouse,
        "select run_id, partitions, failed_checks, row_count, superseded_by_run from quarantine.entries "
        f"where table_name = '{table}' order by quarantined_at",
    )
    rows = frame.itertuples()
    return [(r.run_id, r.partitions, list(r.failed_checks), r.row_count, r.superseded_by_run) for r in rows]


def failed_checks(result) -> list[str]:
    # Once run-wide, once per partition: the names that failed.
    return sorted({e.check_name for e in result.get_asset_check_evaluations() if not e.passed})


def wap_status(result) -> str:
    return result.get_asset_materialization_events()[0].materialization.metadata["wap_status"].value


def assert_wap_cycle(warehouse, table, order, good, bad, fix, expected_failed, partitions):
    """good run stored -> bad run quarantined, stored rows unchanged -> fixed run published, entry superseded."""
    assert good().success
    before = read(warehouse, f"select * from plant.{table} order by {order}")
    assert len(before) > 0

    failing = bad()
    assert not failing.success
    assert failed_checks(failing) == expected_failed
    assert wap_status(failing) == "quarantined"
    pd.testing.assert_frame_equal(read(warehouse, f"select * from plant.{table} order by {order}"), before)
    quarantined = read(warehouse, f"select * from quarantine.{table}")
    assert set(quarantined["_wap_run_id"]) == {failing.run_id}
    assert entries(warehouse, table) == [(failing.run_id, partitions, expected_failed, len(quarantined), None)]

    published = fix()
    assert published.success and wap_status(published) == "published"
    assert entries(warehouse, table) == [
        (failing.run_id, partitions, expected_failed, len(quarantined), published.run_id)
    ]
    assert read(warehouse, f"select count(*) as n from quarantine.{table}")["n"].item() == 0
    return before, quarantined


def test_scada_bad_hour_is_quarantined_and_the_stored_hour_stays(site, tmp_path, instance, plant):
    warehouse, hour = tmp_path / "w.duckdb", "2026-11-01-03:00"
    defs = build_definitions(site, warehouse)

    def materialize():
        return run(defs, instance, ["scada_readings"], partition_key=hour)

    def bad():
        plant.faults.out_of_range["Boiler1.SteamFlow"] = 999.0  # above the configured 0..60 t/h
        return materialize()

    def fix():
        plant.faults.out_of_range.clear()
        return materialize()

    before, quarantined = assert_wap_cycle(
        warehouse, "scada_readings", "tag, ts", materialize, bad, fix, ["scada_readings_expectations"], hour
    )
    steam = before[before["tag"] == "Boiler1.SteamFlow"]["value"]
    assert steam.max() < 60 and len(before) == len(quarantined) == 6 * 360
    assert quarantined.loc[quarantined["tag"] == "Boiler1.SteamFlow", "value"].max() == 999.0
    assert read(warehouse, "select max(value) as m from plant.scada_readings where tag = 'Boiler1.SteamFlow'")[
        "m"
    ].item() == pytest.approx(steam.max())


def test_historian_bad_day_is_quarantined_and_the_stored_day_stays(historian_site, tmp_path, instance, pi):
    warehouse, day = tmp_path / "w.duckdb", "2026-11-01"
    defs = build_definitions(historian_site, warehouse)
    outage = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 20, tzinfo=UTC))

    def materialize():
        return run(defs, instance, ["historian_recorded"], partition_key=day)

    def bad():
        pi.faults.marks = [Mark(tag.name, *outage, "I/O Timeout") for tag in historian_site.historian.tags]
        return materialize()

    def fix():
        pi.faults.marks = []
        return materialize()

    before, quarantined = assert_wap_cycle(
        warehouse, "historian_recorded", "tag, ts", materialize, bad, fix, ["historian_recorded_completeness"], day
    )
    assert (before["quality"] == "good").mean() > 0.9
    assert (quarantined["status"] == "I/O Timeout").any()


def test_erp_bad_receipt_is_quarantined_and_the_stored_day_stays(erp_site, erp_service, tmp_path, instance):
    warehouse, day = tmp_path / "w.duckdb", "2026-11-01"
    defs = build_definitions(erp_site, warehouse)
    key = {"MaterialDocument": "5000016070", "DocumentItem": "0001"}

    def materialize():
        return run(defs, instance, ["erp_fuel_receipts"], partition_key=day)

    def set_quantity(quantity):
        erp_service.model.update("GoodsReceiptSet", key, Quantity=quantity)
        return materialize()

    assert materialize().success
    read_quantity = read(warehouse, "select quantity from plant.erp_fuel_receipts where document = '5000016070'")
    good_quantity = Decimal(read_quantity["quantity"].item())

    before, quarantined = assert_wap_cycle(
        warehouse,
        "erp_fuel_receipts",
        "document, item",
        materialize,
        lambda: set_quantity(Decimal("-5")),
        lambda: set_quantity(good_quantity),
        ["erp_fuel_receipts_quantity_non_negative"],
        day,
    )
    assert len(before) == len(quarantined) == 25
    assert quarantined.loc[quarantined["document"] == "5000016070", "quantity"].item() == Decimal("-5.000")


def test_cems_bad_file_is_quarantined_and_the_stored_hours_stay(cems_site, tmp_path, instance):
    warehouse, source = tmp_path / "w.duckdb", cems_site.cems
    defs = build_definitions(cems_site, warehouse)
    day, lst = date(2026, 11, 1), -6
    cursor = {}

    def load(faults):
        write_day(source.dahs_drop_folder, "B1", day, lst, faults=faults)
        sensor = defs.resolve_sensor_def("cems_dahs_files")
        tick = sensor(build_sensor_context(instance=instance, cursor=cursor.get("c"), definitions=defs))
        cursor["c"] = tick.cursor
        (request,) = tick.run_requests
        return run(defs, instance, ["cems_hourly_raw"], tags=dict(request.tags))

    hours = cems_model.hour_starts(*lst_day_window(day, lst))
    dropped = cems_model.CemsFaults(dropped_hours=frozenset(hours[10:12]))
    before, quarantined = assert_wap_cycle(
        warehouse,
        "cems_hourly_raw",
        "unit_id, hour_start_utc",
        lambda: load(None),
        lambda: load(dropped),
        lambda: load(None),
        ["cems_raw_hour_coverage"],
        "2026-11-01-00:00...2026-11-01-23:00",
    )
    assert len(before) == 24 and len(quarantined) == 22
