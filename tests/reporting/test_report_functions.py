"""Each report function on small constructed frames, against numbers worked by hand."""

import pandas as pd
import pytest

from gl_pipelines.reporting.energy_balance import day_hours, energy_balance
from gl_pipelines.reporting.ghg import InventoryInputError, fuel_sums, ghg_inventory, month_start
from gl_pipelines.reporting.intensity import emissions_intensity
from gl_pipelines.reporting.reconciliation import reconcile
from gl_pipelines.reporting.settings import DEFAULT_ERP_UNITS, EnergyBalanceSettings, ReportingUnit

TZ = "America/Chicago"
FT3_PER_M3 = 1 / 0.3048**3
MMBTU_GJ = 1.055056  # GJ per mmBtu (International Table Btu)
BOILER = ReportingUnit(
    name="Boiler1", erp_plant="1000", cems_unit_id="BLR1", fuel_flow_tag="Fuel", steam_flow_tag="Steam"
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def summary_rows(day: str, fuel_mean: float, steam_mean: float, fuel_good=100, steam_good=100) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [utc(day), utc(day)],
            "tag": ["Fuel", "Steam"],
            "unit": ["m**3/h", "t/h"],
            "count": [100, 100],
            "count_good": [fuel_good, steam_good],
            "pct_good": [fuel_good, steam_good],
            "min": [0.0, 0.0],
            "mean": [fuel_mean, steam_mean],
            "max": [0.0, 0.0],
        }
    )


def test_day_hours_across_dst():
    days = pd.Series([utc("2026-06-10 05:00"), utc("2026-11-01 05:00"), utc("2026-03-08 06:00")])
    assert list(day_hours(days, TZ)) == [24.0, 25.0, 23.0]


def test_energy_balance_by_hand():
    summary = pd.concat(
        [summary_rows("2026-06-10 05:00", 1000.0, 10.0), summary_rows("2026-11-01 05:00", 1000.0, 10.0, fuel_good=80)],
        ignore_index=True,
    )
    result = energy_balance(summary, [BOILER], EnergyBalanceSettings(), TZ)
    june, fall_back = result.iloc[0], result.iloc[1]
    # June 10: 24 h x 1000 m3/h = 24,000 m3 = 847,552 scf; x 1.026e-3 mmBtu/scf.
    scf = 24_000 * FT3_PER_M3
    assert june.fuel_volume_scf == pytest.approx(scf)
    assert june.fuel_energy_mmbtu == pytest.approx(scf * 1.026e-3)
    # 240 t of steam x 2.75 GJ/t = 660 GJ.
    assert june.steam_t == pytest.approx(240.0)
    assert june.steam_energy_mmbtu == pytest.approx(660.0 / MMBTU_GJ)
    assert june.efficiency == pytest.approx((660.0 / MMBTU_GJ) / (scf * 1.026e-3))
    assert bool(june.closes)
    # The fall-back day has 25 hours; only 80 % of its fuel samples were good -> does not close.
    assert fall_back.steam_t == pytest.approx(250.0)
    assert fall_back.fuel_good_share == pytest.approx(0.8)
    assert not bool(fall_back.closes)


def test_energy_balance_out_of_range_efficiency_does_not_close():
    result = energy_balance(summary_rows("2026-06-10 05:00", 100.0, 10.0), [BOILER], EnergyBalanceSettings(), TZ)
    assert result.iloc[0].efficiency > 1 and not bool(result.iloc[0].closes)


def test_month_start_in_plant_zone():
    # 2026-07-01 03:00 UTC is still June 30 in Chicago.
    starts = month_start(pd.Series([utc("2026-07-01 03:00"), utc("2026-07-01 06:00")]), TZ)
    assert list(starts) == [utc("2026-06-01 05:00"), utc("2026-07-01 05:00")]


RECEIPTS = pd.DataFrame(
    {
        "document": ["5000000001", "5000000002", "5000000003", "5000000004"],
        "posting_date": [
            utc("2026-06-02 15:00"),
            utc("2026-06-20 15:00"),
            utc("2026-06-21 15:00"),
            utc("2026-06-22 15:00"),
        ],
        "plant": ["1000", "1000", "1000", "1000"],
        "material": ["NG", "NG", "FO2", "SPARE-PART"],
        "quantity": [600.0, 400.0, 1000.0, 3.0],
        "unit": ["MSCF", "MSCF", "GAL", "EA"],
    }
)
MATERIALS = {"NG": "natural_gas", "FO2": "distillate_oil_2"}


def test_ghg_inventory_by_hand():
    result = ghg_inventory(fuel_sums(RECEIPTS), MATERIALS, DEFAULT_ERP_UNITS, "AR5", TZ).set_index("fuel_type")
    gas, oil = result.loc["natural_gas"], result.loc["distillate_oil_2"]
    # 1,000 Mscf = 1e6 scf x 1.026e-3 = 1,026 mmBtu; x 53.06 kg/mmBtu = 54.43956 t CO2.
    assert gas.fuel_quantity == pytest.approx(1e6) and gas.documents == 2
    assert gas.heat_input_mmbtu == pytest.approx(1026.0)
    assert gas.co2_t == pytest.approx(54.43956)
    assert gas.ch4_t == pytest.approx(1026 * 1.0e-3 / 1000)
    assert gas.n2o_t == pytest.approx(1026 * 1.0e-4 / 1000)
    assert gas.co2e_t == pytest.approx(54.43956 + 0.001026 * 28 + 0.0001026 * 265)
    # 1,000 gal No. 2 oil x 0.138 mmBtu/gal = 138 mmBtu; x 73.96 = 10.20648 t CO2.
    assert oil.co2_t == pytest.approx(10.20648)
    assert oil.co2e_t == pytest.approx(10.20648 + 0.138 * 3.0e-3 * 28 + 0.138 * 6.0e-4 * 265)
    assert set(result["month"]) == {utc("2026-06-01 05:00")}
    ar4 = ghg_inventory(fuel_sums(RECEIPTS), MATERIALS, DEFAULT_ERP_UNITS, "AR4", TZ).set_index("fuel_type")
    assert ar4.loc["natural_gas"].co2e_t == pytest.approx(54.43956 + 0.001026 * 25 + 0.0001026 * 298)


def test_ghg_inventory_refuses_unknown_or_wrong_units():
    bad = RECEIPTS.assign(unit=["MSCF", "BARRELZ", "GAL", "EA"])
    with pytest.raises(InventoryInputError, match=r"unit 'BARRELZ' of material 'NG' \(document 5000000002\)"):
        ghg_inventory(fuel_sums(bad), MATERIALS, DEFAULT_ERP_UNITS, "AR5", TZ)
    wrong = RECEIPTS.assign(unit=["KG", "KG", "GAL", "EA"])
    with pytest.raises(InventoryInputError, match=r"material 'NG' is mapped to natural_gas, measured in scf"):
        ghg_inventory(fuel_sums(wrong), MATERIALS, DEFAULT_ERP_UNITS, "AR5", TZ)


def test_reconciliation_flags_beyond_tolerance():
    hours = pd.date_range("2026-06-01 05:00", periods=720, freq="h", tz="UTC")
    cems = pd.DataFrame({"unit_id": "BLR1", "hour_start_utc": hours, "op_time": 1.0, "co2_mass_tons": 1.0})
    days = pd.date_range("2026-06-01 05:00", periods=30, freq="D", tz="UTC")
    balance = pd.DataFrame({"day": days, "unit_name": "Boiler1", "fuel_energy_mmbtu": 500.0})
    result = reconcile(cems, balance, [BOILER], 10.0, TZ).iloc[0]
    cems_t = 720 * 0.90718474
    fuel_t = 30 * 500.0 * 53.06 / 1000
    assert result.cems_co2_t == pytest.approx(cems_t) and result.cems_hours == 720
    assert result.fuel_co2_t == pytest.approx(fuel_t) and result.fuel_days == 30
    assert result.difference_pct == pytest.approx(100 * (cems_t - fuel_t) / fuel_t)  # -17.9 %
    assert not bool(result.within_tolerance)
    close = reconcile(cems, balance.assign(fuel_energy_mmbtu=410.0), [BOILER], 10.0, TZ).iloc[0]
    assert abs(close.difference_pct) < 10 and bool(close.within_tolerance)


def test_reconciliation_keeps_a_month_with_one_side_missing():
    cems = pd.DataFrame(
        {"unit_id": ["BLR1"], "hour_start_utc": [utc("2026-06-02 00:00")], "op_time": [1.0], "co2_mass_tons": [2.0]}
    )
    balance = pd.DataFrame(
        {"day": pd.Series([], dtype="datetime64[ns, UTC]"), "unit_name": [], "fuel_energy_mmbtu": []}
    )
    row = reconcile(cems, balance, [BOILER], 10.0, TZ).iloc[0]
    assert pd.isna(row.fuel_co2_t) and not bool(row.within_tolerance)


def test_intensity_by_hand():
    inventory = ghg_inventory(fuel_sums(RECEIPTS), MATERIALS, DEFAULT_ERP_UNITS, "AR5", TZ)
    production = pd.DataFrame(
        {
            "plant": ["1000", "1000"],
            "product": ["P1", "P1"],
            "quantity": [300.0, 200.0],
            "unit": ["t", "t"],
            "date": [utc("2026-06-05 12:00"), utc("2026-06-25 12:00")],
        }
    )
    row = emissions_intensity(inventory, production, TZ).iloc[0]
    assert row.production_quantity == 500.0 and row.production_unit == "t"
    assert row.intensity_t_per_unit == pytest.approx(inventory["co2e_t"].sum() / 500.0)
