"""Report assets materialized in process into a tmp DuckDB warehouse.

The daily energy balance runs on the real chain: the demo plant's OPC UA server ->
scada_readings -> scada_daily_summary -> plant_energy_balance. The monthly reports are fed by
small stand-in upstream assets defined here (erp_fuel_receipts, erp_production,
cems_hourly_emissions, plant_energy_balance): real Dagster assets with a blocking check each,
returning constructed rows, because a month of the real sources is too slow for a unit test.
The stand-in CEMS is on the plant's clock; tests/assets/test_reconciliation_cems.py runs the
reconciliation on the real CEMS chain (local standard time).
"""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Definitions,
    Output,
    asset,
    instance_for_test,
)

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SERVICE_PATH, DemoSapODataService
from gl_pipelines.assets.partitions import backfill_policy, site_daily_partitions, utc_window
from gl_pipelines.assets.reports import build_report_assets
from gl_pipelines.checks.reports import ENERGY_BALANCE_CLOSES, ENERGY_NON_NEGATIVE, energy_balance_checks
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import load_site_config
from gl_pipelines.reporting.energy_balance import energy_balance
from gl_pipelines.reporting.exports import read_parquet
from gl_pipelines.reporting.html_report import format_value
from gl_pipelines.resources.warehouse import warehouse_io_manager
from gl_pipelines.resources.warehouse_reader import WarehouseReader
from tests.expected import expected_readings
from tests.runs import run

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
TZ = "America/Chicago"
FT3_PER_M3 = 1 / 0.3048**3
MMBTU_GJ = 1.055056


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def report_site(site, tmp_path):
    """The demo site (pointing at the demo plant) with its reports written under tmp_path."""
    reporting = site.reporting.model_copy(update={"reports_dir": str(tmp_path / "reports")})
    return site.model_copy(update={"reporting": reporting})


def table(path, name: str, order: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f"select * from plant.{name} order by {order}").df()


def step_failure_message(result) -> str:
    failures = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    return failures[0].event_specific_data.error.to_string()


def materialization(result, key: str):
    return next(m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key)


def scada_day(defs, instance, day: str):
    return run(defs, instance, ["scada_readings"], tags={RANGE_START: f"{day}-00:00", RANGE_END: f"{day}-23:00"})


def test_energy_balance_on_the_demo_plant_and_blocked_by_a_failed_scada_check(report_site, tmp_path, instance, plant):
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(report_site, warehouse)
    assert scada_day(defs, instance, "2026-11-01").success
    assert run(defs, instance, ["scada_daily_summary"], partition_key="2026-11-01").success
    result = run(defs, instance, ["plant_energy_balance"], partition_key="2026-11-01")
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())

    stored = table(warehouse, "plant_energy_balance", "day")
    assert len(stored) == 1
    row = stored.iloc[0]
    # The fall-back day has 25 hours; totals are the good samples' mean flow x 25 h.
    day = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))
    model = expected_readings(["Boiler1.FuelGasFlow", "Boiler1.SteamFlow"], *day)
    good = model[model["status_code"] == 0].groupby("tag")["value"].mean()
    fuel_m3 = good["Boiler1.FuelGasFlow"] * 25
    steam_t = good["Boiler1.SteamFlow"] * 25
    assert row.fuel_volume_scf == pytest.approx(fuel_m3 * FT3_PER_M3, rel=1e-9)
    assert row.fuel_energy_mmbtu == pytest.approx(fuel_m3 * 0.0378 / MMBTU_GJ, rel=1e-9)
    assert row.steam_energy_mmbtu == pytest.approx(steam_t * 2.75 / MMBTU_GJ, rel=1e-9)
    # The plant model is built with efficiency 0.85 (plant_model.GAS_M3_PER_T_STEAM).
    assert row.efficiency == pytest.approx(0.85, abs=0.005)
    assert row.fuel_good_share > 0.99 and bool(row.closes)

    meta = materialization(result, "plant_energy_balance").materialization.metadata
    schema = meta["dagster/column_schema"].value
    assert [c.name for c in schema.columns][:3] == ["day", "unit_name", "fuel_tag"]
    assert "data:image/svg+xml;base64," in meta["chart"].value
    assert "efficiency **0.85" in meta["summary"].value
    exported = read_parquet(meta["export_parquet"].value)
    pd.testing.assert_frame_equal(exported.drop(columns="day"), stored.drop(columns="day"), check_dtype=False)
    assert (pd.to_datetime(exported["day"], utc=True) == pd.to_datetime(stored["day"], utc=True)).all()

    # One hour of that day re-read with a value out of range fails its blocking check: a re-run of the
    # report is refused, naming the check and the hour, and the stored row stays as it was.
    plant.faults.out_of_range["Boiler1.SteamFlow"] = 99.0  # above the configured 0..60 t/h
    bad = run(defs, instance, ["scada_readings"], partition_key="2026-11-01-07:00")
    assert not {c.check_name: c.passed for c in bad.get_asset_check_evaluations()}["scada_readings_expectations"]
    blocked = run(defs, instance, ["plant_energy_balance"], partition_key="2026-11-01")
    assert not blocked.success
    message = step_failure_message(blocked)
    assert "scada_readings_expectations[2026-11-01-07:00]: failed" in message
    pd.testing.assert_frame_equal(table(warehouse, "plant_energy_balance", "day"), stored)
    assert len(instance.fetch_materializations(AssetKey("plant_energy_balance"), limit=10).records) == 1
    export = Path(meta["export_parquet"].value)
    assert read_parquet(export).equals(exported)  # the blocked run wrote no file either

    # The export is the plant month's file: the next day's run rewrites it with both stored days.
    assert export.name == "plant_energy_balance_2026-11.parquet"
    plant.faults.out_of_range.clear()
    assert scada_day(defs, instance, "2026-11-02").success
    assert run(defs, instance, ["scada_daily_summary", "plant_energy_balance"], partition_key="2026-11-02").success
    month = read_parquet(export)
    both = table(warehouse, "plant_energy_balance", "day")
    assert len(both) == 2 and len(month) == 2
    assert list(pd.to_datetime(month["day"], utc=True)) == list(pd.to_datetime(both["day"], utc=True))
    np.testing.assert_allclose(month["efficiency"], both["efficiency"])


# ---- monthly reports on stand-in upstream assets -------------------------------------------------

FAILING_DAYS: set[str] = set()
"""Plant days whose stand-in upstream check fails (set by a test)."""
DAILY = site_daily_partitions(TZ)
FUEL_M3_H, STEAM_T_H = 300.0, 3.5
RECEIPT_M3, PRODUCTION_T, CEMS_SHORT_TONS_H = 10_000.0, 100.0, 0.6


def plant_days(context) -> list[tuple[str, pd.Timestamp]]:
    keys = DAILY.get_partition_keys_in_time_window(context.partition_time_window)
    return [(key, pd.Timestamp(utc_window(DAILY.time_window_for_partition_key(key))[0])) for key in keys]


def stand_in(name: str, partition_expr: str, rows):
    """A daily upstream asset returning `rows(key, day_start_utc)` per plant day, with one blocking check."""
    check = f"{name}_stand_in_ok"

    @asset(
        name=name,
        partitions_def=DAILY,
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        metadata={"partition_expr": partition_expr},
        check_specs=[AssetCheckSpec(check, asset=name, blocking=True)],
    )
    def _stand_in(context: AssetExecutionContext):
        days = plant_days(context)
        yield Output(pd.concat([rows(key, start) for key, start in days], ignore_index=True))
        failing = sorted(key for key, _ in days if key in FAILING_DAYS)
        yield AssetCheckResult(check_name=check, passed=not failing, description=f"failing days: {failing}")

    return _stand_in


def receipts(key, start):
    return pd.DataFrame(
        {
            "document": [f"49{key.replace('-', '')}", f"50{key.replace('-', '')}"],
            "item": ["0001", "0001"],
            "posting_date": [start, start],
            "plant": ["1000", "1000"],
            "material": ["NATGAS", "ELEC"],
            "quantity": [RECEIPT_M3, 5.0],
            "unit": ["M3", "MWH"],
            "amount": [1250.0, 400.0],
            "currency": ["USD", "USD"],
        }
    )


def production(key, start):
    return pd.DataFrame(
        {
            "confirmation": [key],
            "counter": ["1"],
            "posting_date": [start],
            "plant": ["1000"],
            "product": ["STEAM"],
            "quantity": [PRODUCTION_T],
            "unit": ["TO"],
        }
    )


def cems_hours(key, start):
    hours = pd.date_range(start, periods=24, freq="h")
    return pd.DataFrame({"unit_id": "B1", "hour_start_utc": hours, "op_time": 1.0, "co2_mass_tons": CEMS_SHORT_TONS_H})


@pytest.fixture
def monthly_defs(tmp_path):
    """Report assets on stand-ins for erp_fuel_receipts, erp_production, cems_hourly_emissions and
    plant_energy_balance (the real energy balance needs a month of SCADA: tested above on one day)."""
    demo = load_site_config()
    settings = demo.reporting.model_copy(update={"reports_dir": str(tmp_path / "reports")})
    report_site = demo.model_copy(update={"reporting": settings})

    @asset(
        name="plant_energy_balance",
        partitions_def=DAILY,
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        metadata={"partition_expr": "day"},
        check_specs=[
            AssetCheckSpec(n, asset="plant_energy_balance", blocking=True)
            for n in (ENERGY_BALANCE_CLOSES, ENERGY_NON_NEGATIVE)
        ],
    )
    def balance_stand_in(context: AssetExecutionContext):
        summary = pd.concat(
            [
                pd.DataFrame(
                    {
                        "day": [start, start],
                        "tag": ["Boiler1.FuelGasFlow", "Boiler1.SteamFlow"],
                        "unit": ["m**3/h", "t/h"],
                        "count": 8640,
                        "count_good": 8640,
                        "mean": [FUEL_M3_H, STEAM_T_H],
                    }
                )
                for _, start in plant_days(context)
            ],
            ignore_index=True,
        )
        frame = energy_balance(summary, settings.units, settings.energy_balance, TZ)
        yield Output(frame)
        yield from energy_balance_checks(frame)

    FAILING_DAYS.clear()
    upstream = [
        stand_in("erp_fuel_receipts", "posting_date", receipts),
        stand_in("erp_production", "posting_date", production),
        stand_in("cems_hourly_emissions", "hour_start_utc", cems_hours),
        balance_stand_in,
    ]
    warehouse = tmp_path / "w.duckdb"
    defs = Definitions(
        assets=[*upstream, *build_report_assets(report_site, upstream)],
        resources={
            "warehouse": warehouse_io_manager(str(warehouse)),
            "warehouse_reader": WarehouseReader(database=str(warehouse)),
        },
    )
    yield defs, warehouse, tmp_path / "reports"
    FAILING_DAYS.clear()


ALL_STAND_INS = ["erp_fuel_receipts", "erp_production", "cems_hourly_emissions", "plant_energy_balance"]


def upstream_month(defs, instance, first: str, last: str, names=ALL_STAND_INS):
    return run(defs, instance, names, tags={RANGE_START: first, RANGE_END: last})


def test_monthly_reports_html_and_exports(monthly_defs, instance):
    defs, warehouse, reports = monthly_defs
    assert upstream_month(defs, instance, "2026-10-01", "2026-10-31").success
    result = run(
        defs,
        instance,
        ["ghg_inventory", "cems_fuel_reconciliation", "emissions_intensity", "monthly_report"],
        partition_key="2026-10-01",
    )
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())

    # GHG: 31 days x 10,000 m3 of gas (the ELEC receipts are not fuel).
    inventory = table(warehouse, "ghg_inventory", "plant").iloc[0]
    mmbtu = 31 * RECEIPT_M3 * FT3_PER_M3 * 1.026e-3
    assert inventory.documents == 31 and inventory.fuel_type == "natural_gas"
    assert inventory.heat_input_mmbtu == pytest.approx(mmbtu)
    assert inventory.co2_t == pytest.approx(mmbtu * 53.06e-3)
    co2e = mmbtu * (53.06e-3 + 1.0e-6 * 28 + 1.0e-7 * 265)
    assert inventory.co2e_t == pytest.approx(co2e)
    assert pd.Timestamp(inventory.month).tz_convert(TZ) == pd.Timestamp("2026-10-01", tz=TZ)

    # Reconciliation: CEMS 744 h x 0.6 short tons vs 31 days of 300 m3/h x 0.0378 GJ/m3 x 53.06 kg/mmBtu.
    rec = table(warehouse, "cems_fuel_reconciliation", "unit_name").iloc[0]
    cems_t = 744 * CEMS_SHORT_TONS_H * 0.90718474
    fuel_t = 31 * 24 * FUEL_M3_H * 0.0378 / MMBTU_GJ * 53.06e-3
    assert rec.cems_co2_t == pytest.approx(cems_t) and rec.fuel_co2_t == pytest.approx(fuel_t)
    assert rec.difference_pct == pytest.approx(100 * (cems_t - fuel_t) / fuel_t)
    assert rec.cems_hours == 744 and rec.fuel_days == 31 and bool(rec.within_tolerance)  # -4.6 % within 5 %

    intensity = table(warehouse, "emissions_intensity", "plant").iloc[0]
    assert intensity.production_quantity == 31 * PRODUCTION_T and intensity.production_unit == "TO"
    assert intensity.intensity_t_per_unit == pytest.approx(co2e / (31 * PRODUCTION_T))

    # Exports hold the warehouse rows; the HTML report prints every number of every table.
    html = (reports / "monthly" / "report_2026-10-01.html").read_text()
    assert "<script" not in html and html.count("<svg") == 3  # balance, inventory, reconciliation charts
    assert f"{rec.unit_name} CEMS: {rec.cems_co2_t:.6g} t CO2</title>" in html  # the bar's tooltip is the number
    for name, order in [
        ("ghg_inventory", "plant"),
        ("cems_fuel_reconciliation", "unit_name"),
        ("emissions_intensity", "plant"),
        ("plant_energy_balance", "day"),
    ]:
        stored = table(warehouse, name, order)
        if name == "plant_energy_balance":  # a stand-in here: its exports are tested on the demo plant
            continue
        exported = read_parquet(reports / name / f"{name}_2026-10.parquet")
        numeric = stored.select_dtypes("number").columns
        assert len(exported) == len(stored) and list(exported.columns) == list(stored.columns)
        np.testing.assert_allclose(exported[numeric].to_numpy(float), stored[numeric].to_numpy(float))
        assert (reports / name / f"{name}_2026-10.csv").exists()
        for value in stored.select_dtypes("number").to_numpy().ravel():
            assert format_value(float(value)) in html, (name, value)

    meta = materialization(result, "monthly_report").materialization.metadata
    assert meta["report_html"].value == str(reports / "monthly" / "report_2026-10-01.html")
    checks_page = (reports / "monthly" / "checks_2026-10-01.html").read_text()
    assert meta["check_results_html"].value.endswith("checks_2026-10-01.html")
    for check in ["erp_fuel_receipts_stand_in_ok", "cems_hourly_emissions_stand_in_ok", "ghg_no_negative_emissions"]:
        assert check in checks_page
    assert "FAILED" not in checks_page and meta["check_failures"].value == 0


def test_failed_upstream_check_leaves_the_previous_month_and_blocks_the_new(monthly_defs, instance):
    defs, warehouse, reports = monthly_defs
    receipts_only = ["erp_fuel_receipts"]
    assert upstream_month(defs, instance, "2026-09-01", "2026-09-30", receipts_only).success
    assert run(defs, instance, ["ghg_inventory"], partition_key="2026-09-01").success
    september = table(warehouse, "ghg_inventory", "month")

    FAILING_DAYS.add("2026-10-05")
    october = upstream_month(defs, instance, "2026-10-01", "2026-10-31", receipts_only)
    assert not october.success
    assert not {c.check_name: c.passed for c in october.get_asset_check_evaluations()}["erp_fuel_receipts_stand_in_ok"]
    blocked = run(defs, instance, ["ghg_inventory"], partition_key="2026-10-01")
    assert not blocked.success
    message = step_failure_message(blocked)
    assert "blocked" in message and "erp_fuel_receipts_stand_in_ok" in message and "failed" in message
    pd.testing.assert_frame_equal(table(warehouse, "ghg_inventory", "month"), september)
    assert not (reports / "ghg_inventory" / "ghg_inventory_2026-10.parquet").exists()
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("ghg_inventory"), asset_partitions=["2026-10-01"]), limit=1
    )
    assert records.records == []


def test_a_failed_warehouse_write_leaves_the_export_files(monthly_defs, instance):
    defs, warehouse, reports = monthly_defs
    assert upstream_month(defs, instance, "2026-10-01", "2026-10-31", ["erp_fuel_receipts"]).success
    assert run(defs, instance, ["ghg_inventory"], partition_key="2026-10-01").success
    export = reports / "ghg_inventory" / "ghg_inventory_2026-10.parquet"
    export.write_bytes(b"the file of the stored month")  # recognisable if it were rewritten
    # A column the report does not have: the IO manager's insert fails and rolls back.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table plant.ghg_inventory add column audit_note varchar default 'kept'")
    stored = table(warehouse, "ghg_inventory", "month")

    failed = run(defs, instance, ["ghg_inventory"], partition_key="2026-10-01")
    assert not failed.success and not failed.get_asset_materialization_events()
    assert "column" in step_failure_message(failed).lower()
    pd.testing.assert_frame_equal(table(warehouse, "ghg_inventory", "month"), stored)
    assert export.read_bytes() == b"the file of the stored month"


# ---- GHG inventory and intensity on the real ERP assets and the demo SAP service ----------------


@pytest.fixture
def erp_report_defs(tmp_path, monkeypatch):
    """The demo site with its ERP at a fresh demo SAP OData service (server pages of 1,000)."""
    monkeypatch.setenv("GL_ERP_CLIENT_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GL_ERP_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    service = DemoSapODataService()
    with HttpServerThread(service.app, name="demo-sap-odata-reports") as server:
        site = load_site_config()
        site = site.model_copy(
            update={
                "erp": site.erp.model_copy(update={"service_url": server.url + SERVICE_PATH}),
                "reporting": site.reporting.model_copy(update={"reports_dir": str(tmp_path / "reports")}),
            }
        )
        with instance_for_test() as instance:
            yield build_definitions(site, tmp_path / "w.duckdb"), instance, tmp_path / "w.duckdb", service


def test_ghg_inventory_and_intensity_from_the_demo_erp(erp_report_defs):
    defs, instance, warehouse, service = erp_report_defs
    erp = run(
        defs,
        instance,
        ["erp_fuel_receipts", "erp_production"],
        tags={RANGE_START: "2026-10-01", RANGE_END: "2026-10-31"},
    )
    assert erp.success and all(c.passed for c in erp.get_asset_check_evaluations())
    assert run(defs, instance, ["ghg_inventory", "emissions_intensity"], partition_key="2026-10-01").success

    # Expected from the ERP model's own documents: October plant days (posting dates) in plant 1000.
    october = [int(datetime(2026, 10, d, tzinfo=UTC).timestamp() * 1000) for d in range(1, 32)]
    receipts = service.model.tables["GoodsReceiptSet"].columns
    in_month = (
        np.isin(receipts["PostingDate"], october) & (receipts["Plant"] == "1000") & (receipts["Material"] == "NATGAS")
    )
    gas_m3 = receipts["Quantity"][in_month].sum() / 1000
    confirmations = service.model.tables["ProductionConfirmationSet"].columns
    made = np.isin(confirmations["PostingDate"], october) & (confirmations["Plant"] == "1000")
    steam_t = confirmations["Quantity"][made].sum() / 1000

    inventory = table(warehouse, "ghg_inventory", "plant").iloc[0]
    mmbtu = gas_m3 * FT3_PER_M3 * 1.026e-3
    assert inventory.documents == int(in_month.sum())
    assert inventory.co2_t == pytest.approx(mmbtu * 53.06e-3, rel=1e-9)
    co2e = mmbtu * (53.06e-3 + 1.0e-6 * 28 + 1.0e-7 * 265)
    assert inventory.co2e_t == pytest.approx(co2e, rel=1e-9)
    intensity = table(warehouse, "emissions_intensity", "plant").iloc[0]
    assert intensity.production_quantity == pytest.approx(steam_t)
    assert intensity.intensity_t_per_unit == pytest.approx(co2e / steam_t, rel=1e-9)


def test_energy_balance_from_the_demo_historian(historian_site, tmp_path, instance):
    """The same plant day from the PI Web API demo (recorded values summarized per day) closes the
    same balance as from SCADA: both serve the plant model."""
    settings = historian_site.reporting
    energy = settings.energy_balance.model_copy(update={"source": "historian"})
    site = historian_site.model_copy(
        update={
            "reporting": settings.model_copy(
                update={"energy_balance": energy, "reports_dir": str(tmp_path / "reports")}
            )
        }
    )
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    assert run(defs, instance, ["historian_recorded"], partition_key="2026-11-01").success
    result = run(defs, instance, ["plant_energy_balance"], partition_key="2026-11-01")
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    row = table(warehouse, "plant_energy_balance", "day").iloc[0]
    assert row.efficiency == pytest.approx(0.85, abs=0.005) and bool(row.closes)
    assert (
        "historian_recorded"
        in materialization(result, "plant_energy_balance").materialization.metadata["summary"].value
    )
