"""ERP assets materialized in process against the demo SAP OData service, with a tmp warehouse."""

import logging
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pytest
from dagster import AssetSelection, instance_for_test

from gl_demo_plant.sap_odata import DEMO_CLIENT_SECRET
from gl_pipelines.components.site_file import build_definitions
from tests.runs import run

DAY = "2026-11-01"  # plant day in America/Chicago: 25 hours, 25 hourly gas receipts
RECEIPTS = AssetSelection.assets("erp_fuel_receipts")


@pytest.fixture
def erp_defs(erp_site, tmp_path):
    """Definitions whose ERP points at the demo service; credentials only in the environment."""
    warehouse = tmp_path / "w.duckdb"
    with instance_for_test() as instance:
        yield build_definitions(erp_site, warehouse), instance, warehouse


def query(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def checks_of(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_day_of_receipts_stored_exact_and_rerun_replaces(erp_defs, erp_service):
    defs, instance, warehouse = erp_defs
    first = run(defs, instance, RECEIPTS, DAY)
    assert first.success
    assert checks_of(first) and all(checks_of(first).values()), checks_of(first)
    assert query(warehouse, "select count(*), count(distinct document) from plant.erp_fuel_receipts") == [(25, 25)]
    types = dict(
        query(
            warehouse,
            "select column_name, data_type from information_schema.columns where table_name = 'erp_fuel_receipts'",
        )
    )
    assert types["quantity"] == "DECIMAL(18,3)" and types["amount"] == "DECIMAL(18,3)"
    assert types["posting_date"] == "TIMESTAMP WITH TIME ZONE"
    model = erp_service.model.tables["GoodsReceiptSet"].columns
    posted = model["PostingDate"] == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    expected_total = Decimal(int(model["Quantity"][posted].sum())) / 1000
    assert query(warehouse, "select sum(quantity) from plant.erp_fuel_receipts") == [(expected_total,)]

    # A document moved to the next plant day: the re-run replaces the partition, nothing duplicated.
    moved = query(warehouse, "select min(document) from plant.erp_fuel_receipts")[0][0]
    erp_service.model.update(
        "GoodsReceiptSet",
        {"MaterialDocument": moved, "DocumentItem": "0001"},
        PostingDate=datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert run(defs, instance, RECEIPTS, DAY).success
    assert query(warehouse, "select count(*), count(distinct document) from plant.erp_fuel_receipts") == [(24, 24)]
    assert query(warehouse, f"select count(*) from plant.erp_fuel_receipts where document = '{moved}'") == [(0,)]


def test_bad_documents_from_the_server_fail_the_blocking_checks(erp_defs, erp_service):
    defs, instance, _ = erp_defs
    receipts = "GoodsReceiptSet"
    erp_service.model.update(
        receipts, {"MaterialDocument": "5000016070", "DocumentItem": "0001"}, Quantity=Decimal("-5")
    )
    erp_service.model.update(
        receipts, {"MaterialDocument": "5000016065", "DocumentItem": "0001"}, Unit="KG", Currency=""
    )
    result = run(defs, instance, RECEIPTS, DAY)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {name: e.passed for name, e in evaluations.items()} == {
        "erp_fuel_receipts_keys_unique": True,
        "erp_fuel_receipts_in_window": True,
        "erp_fuel_receipts_quantity_non_negative": False,
        "erp_fuel_receipts_units_known": False,
        "erp_fuel_receipts_currency_present": False,
    }
    assert "5000016070/0001: quantity -5" in evaluations["erp_fuel_receipts_quantity_non_negative"].description
    assert "5000016065/0001: unit 'KG'" in evaluations["erp_fuel_receipts_units_known"].description


def test_production_and_master_data(erp_defs, erp_service):
    defs, instance, warehouse = erp_defs
    result = run(defs, instance, AssetSelection.assets("erp_production"), DAY)
    assert result.success and all(checks_of(result).values())
    # 8-hour shifts starting 00:00/08:00/16:00 UTC whose local date is 2026-11-01.
    assert query(warehouse, "select count(*), min(unit) from plant.erp_production") == [(3, "TO")]
    master = AssetSelection.assets("erp_materials", "erp_plants")
    for _ in range(2):  # replaced whole, never appended
        result = run(defs, instance, master)
        assert result.success and all(checks_of(result).values())
    assert query(warehouse, "select count(*) from plant.erp_materials") == [(3,)]
    assert erp_service.stats.requests["metadata"] == 3  # once per run (three runs), not once per asset
    assert query(warehouse, "select plant, timezone from plant.erp_plants") == [("1000", "America/Chicago")]


def test_client_secret_never_in_logs_or_event_log(erp_defs, erp_service, caplog, capsys):
    defs, instance, _ = erp_defs
    caplog.set_level(logging.DEBUG)
    erp_service.faults.statuses = [503]  # a retry warning is logged: it must not carry the secret either
    erp_service.revoke_tokens()
    assert run(defs, instance, RECEIPTS, DAY).success
    erp_service.faults.statuses = [401, 401]  # a refused request: its error travels into the event log
    run(defs, instance, RECEIPTS, DAY)
    captured = capsys.readouterr()
    texts = [caplog.text, captured.out, captured.err]
    runs = instance.get_runs()
    assert len(runs) == 2
    entries = [entry for run_ in runs for entry in instance.all_logs(run_.run_id)]
    assert len(entries) > 20
    texts += [entry.to_json() for entry in entries]
    assert all(DEMO_CLIENT_SECRET not in text for text in texts)
    assert any("HTTP 401" in text for text in texts)  # the failure itself was recorded


def test_erp_wiring_and_environment(monkeypatch, tmp_path):
    from gl_pipelines.components.site_file import site_from_environment

    monkeypatch.setenv("GL_ERP_URL", "http://127.0.0.1:1/sap/opu/odata/sap/ZGL_PLANT_SRV/")
    monkeypatch.delenv("GL_ERP_CLIENT_SECRET", raising=False)
    site = site_from_environment()
    assert site.erp.service_url == "http://127.0.0.1:1/sap/opu/odata/sap/ZGL_PLANT_SRV/"
    defs = build_definitions(site, tmp_path / "w.duckdb")
    erp = defs.resources["erp"]
    assert erp.client_secret is None and erp.token_url == "http://127.0.0.1:1/oauth/token"
    with pytest.raises(ValueError, match=r"demo-erp: auth_mode='oauth2' needs `client_(id|secret)`"):
        erp.client_settings()  # what a run does first: no credentials, no request
    graph = defs.resolve_asset_graph()
    erp_checks = [key for key in graph.asset_check_keys if key.asset_key.to_user_string().startswith("erp_")]
    assert "erp_fuel_receipts_currency_present" in {key.name for key in erp_checks} and len(erp_checks) == 12
    assert all(graph.get_check_spec(key).blocking for key in erp_checks)
    for name in ("erp_fuel_receipts", "erp_production", "erp_materials", "erp_plants"):
        assert defs.resolve_assets_def(name).op.pool == "duckdb_warehouse"
    assert {"erp_daily_job_schedule", "erp_master_data_job_schedule"} <= {s.name for s in defs.schedules}
    assert defs.resolve_job_def("erp_daily_job").tags["gl/erp-service"] == "127.0.0.1:1"
    without = build_definitions(site.model_copy(update={"erp": None}), tmp_path / "w.duckdb")
    assert "erp" not in without.resources


def test_document_without_posting_date_is_refused_not_stored_outside_every_partition(erp_defs, erp_service):
    # Stored, a row with a NULL posting date would sit outside every partition window: no re-run
    # would ever replace it and the window-loaded blocking checks would never see it.
    defs, instance, warehouse = erp_defs
    assert run(defs, instance, RECEIPTS, DAY).success
    erp_service.faults.drop_property = ("GoodsReceiptSet", "PostingDate")
    result = run(defs, instance, RECEIPTS, DAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "posting_date NaT" in str(failure.event_specific_data.error)
    assert query(warehouse, "select count(*), count(posting_date) from plant.erp_fuel_receipts") == [(25, 25)]
