"""compute_hourly_emissions end to end on small units whose numbers are worked by hand."""

import numpy as np
import pandas as pd
import pytest

from gl_pipelines.cems.aggregate import daily_totals, quarterly_totals
from gl_pipelines.cems.emissions import compute_hourly_emissions
from gl_pipelines.cems.schema import EMISSIONS_COLUMNS, EMISSIONS_DTYPES, CemsSchemaError, validate_raw_frame
from gl_pipelines.config import CemsUnit

GAS_CT = CemsUnit(
    unit_id="CT1",
    fuel="natural_gas",
    moisture_default_pct=10.0,
    so2_method="default_rate",
    so2_default_rate_lb_mmbtu=0.0006,
    co2_mpc_pct=6.0,
    nox_mpc_ppm=100.0,
    nox_mer_lb_mmbtu=0.3,
    flow_mpf_scfh=2.0e7,
    max_load_mw=200.0,
)
COAL = CemsUnit(
    unit_id="B2",
    fuel="coal_bituminous",
    moisture_method="measured",
    so2_basis="dry",
    so2_mpc_ppm=2000.0,
    co2_basis="wet",
    co2_mpc_pct=14.0,
    heat_input_method="o2",
    o2_basis="dry",
    nox_method="rate",
    nox_mer_lb_mmbtu=1.2,
    flow_mpf_scfh=5.0e7,
    max_load_mw=400.0,
)


def raw_hours(unit_id: str, start: str, hours: int, **columns) -> pd.DataFrame:
    utc = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    base = {
        "unit_id": unit_id,
        "hour_start_utc": utc,
        "hour_start_lst": utc.tz_localize(None) - pd.Timedelta(hours=6),
        "op_time": 1.0,
        "gross_load_mw": 150.0,
        "stack_flow_scfh": 1.0e7,
        "co2_pct": 10.0,
        "o2_pct": 6.0,
        "so2_ppm": np.nan,
        "nox_ppm": 50.0,
        "nox_rate_lb_mmbtu": np.nan,
        "moisture_pct": np.nan,
        "so2_status": "missing",
        "co2_status": "valid",
        "o2_status": "missing",
        "nox_status": "valid",
        "flow_status": "valid",
        "moisture_status": "missing",
        "source": "dahs",
        "source_ref": [f"{unit_id}.csv:{i + 2}" for i in range(hours)],
    }
    base.update(columns)
    return validate_raw_frame(pd.DataFrame(base), f"{unit_id}.csv")


def test_gas_unit_by_hand():
    raw = raw_hours("CT1", "2024-01-01 06:00", 4, op_time=[1.0, 0.5, 0.0, 1.0])
    out = compute_hourly_emissions(raw, {"CT1": GAS_CT})
    assert list(out.columns) == EMISSIONS_COLUMNS and len(out) == 4
    assert {c: str(t) for c, t in out.dtypes.items()} == EMISSIONS_DTYPES
    first = out.iloc[0]
    # F-15: 1.0e7 x 10/100 / 1,040 = 961.5385 mmBtu/hr
    assert first["heat_input_mmbtu_hr"] == pytest.approx(961.5385, rel=1e-6)
    # F-11: 5.7e-7 x 10 x 1.0e7 = 57.0 tons/hr
    assert first["co2_tons_hr"] == pytest.approx(57.0)
    # App. D default: 0.0006 x 961.5385 = 0.576923 lb/hr
    assert first["so2_lb_hr"] == pytest.approx(0.576923, rel=1e-6)
    # NOx 50 ppm dry -> 45 ppm wet (10 % H2O) to match the wet CO2; F-7b: 1.194e-7 x 45 x 1,040 x 100/10 = 0.0558792
    assert first["nox_rate_lb_mmbtu"] == pytest.approx(0.0558792, rel=1e-6)
    # NOx mass: 0.0558792 x 961.5385 = 53.73 lb; half an hour of operation halves every mass
    assert first["nox_mass_lb"] == pytest.approx(53.7300, rel=1e-5)
    second = out.iloc[1]
    assert second["co2_mass_tons"] == pytest.approx(28.5)
    assert second["heat_input_mmbtu"] == pytest.approx(480.7692, rel=1e-6)
    off = out.iloc[2]
    assert off["so2_mass_lb"] == off["nox_mass_lb"] == off["co2_mass_tons"] == off["heat_input_mmbtu"] == 0.0
    assert np.isnan(off["heat_input_mmbtu_hr"]) and off["co2_method"] == "not_operating"
    assert first["so2_method"] == "default_rate" and first["moisture_method"] == "default_value"
    assert first["co2_method"] == "measured" and first["o2_method"] == "not_used"
    assert first["pma_co2"] == 100.0 and np.isnan(first["pma_so2"])


def test_coal_unit_o2_heat_input_dry_so2_measured_moisture_and_substitution():
    raw = raw_hours(
        "B2",
        "2024-01-01 06:00",
        3,
        so2_ppm=[100.0, np.nan, 300.0],
        so2_status=["valid", "out_of_control", "valid"],
        o2_status="valid",
        moisture_pct=10.0,
        moisture_status="valid",
        nox_rate_lb_mmbtu=0.25,
        nox_ppm=np.nan,
        nox_status="valid",
    )
    out = compute_hourly_emissions(raw, {"B2": COAL})
    # F-17: 1.0e7 x 0.9 / 9,780 x (20.9 - 6)/20.9 = 656.0601 mmBtu/hr
    assert out["heat_input_mmbtu_hr"].tolist() == pytest.approx([656.0601] * 3, rel=1e-6)
    # F-2: 1.660e-7 x 100 x 1.0e7 x 0.9 = 149.4 lb/hr; hour 2 initial procedure: (100 + 300)/2 = 200 ppm -> 298.8
    assert out["so2_lb_hr"].tolist() == pytest.approx([149.4, 298.8, 448.2])
    assert out["so2_method"].tolist() == ["measured", "sub_initial_avg_before_after", "measured"]
    assert out["pma_so2"].iloc[1] == pytest.approx(50.0)
    # NOx mass from the reported rate: 0.25 x 656.0601 = 164.015 lb
    assert out["nox_mass_lb"].iloc[0] == pytest.approx(164.015, rel=1e-5)


def test_history_feeds_the_lookback_but_is_not_returned():
    history = raw_hours("CT1", "2024-01-01 00:00", 800, co2_pct=np.tile([9.0, 11.0], 400))
    raw = raw_hours("CT1", "2024-02-03 08:00", 30, co2_pct=np.nan, co2_status="missing")
    raw = pd.concat([raw, raw_hours("CT1", "2024-02-04 14:00", 1, co2_pct=9.0)], ignore_index=True)
    out = compute_hourly_emissions(raw, {"CT1": GAS_CT}, history=history)
    assert len(out) == 31 and out["hour_start_utc"].min() == pd.Timestamp("2024-02-03 08:00", tz="UTC")
    # 800 QA hours of history: standard procedure; 30 h gap at PMA 800/830 = 96.4 %: greater of the
    # 90th percentile of 9/11 (= 11) and the average of the hour before (11) and after (9) = 10 -> 11
    assert set(out["co2_method"].iloc[:30]) == {"sub_p90_lookback"}
    assert out["co2_pct"].iloc[:30].eq(11.0).all()
    assert out["pma_co2"].iloc[29] == pytest.approx(100 * 800 / 830)
    # without history the same gap only has the initial procedure
    alone = compute_hourly_emissions(raw, {"CT1": GAS_CT})
    assert set(alone["co2_method"].iloc[:30]) == {"sub_max_potential"}


def test_raw_hour_replaces_the_same_hour_in_history():
    history = raw_hours("CT1", "2024-01-01 06:00", 2, co2_pct=5.0)
    raw = raw_hours("CT1", "2024-01-01 07:00", 1, co2_pct=8.0)
    out = compute_hourly_emissions(raw, {"CT1": GAS_CT}, history=history)
    assert out["co2_pct"].tolist() == [8.0]


def test_unknown_unit_is_named():
    with pytest.raises(CemsSchemaError, match="column 'unit_id' value 'X9': no CemsUnit configured"):
        compute_hourly_emissions(raw_hours("X9", "2024-01-01", 1), {"CT1": GAS_CT})


def test_daily_and_quarterly_totals_equal_the_sum_of_hours():
    # 2024-03-31 18:00 LST .. 2024-04-02: spans a quarter boundary in local standard time
    raw = raw_hours("CT1", "2024-04-01 00:00", 54, op_time=np.tile([1.0, 0.25, 0.0], 18))
    raw.loc[10:12, "co2_status"] = "missing"
    raw.loc[10:12, "co2_pct"] = np.nan
    out = compute_hourly_emissions(raw, {"CT1": GAS_CT})
    days, quarters = daily_totals(out), quarterly_totals(out)
    for totals in (days, quarters):
        for column in ("heat_input_mmbtu", "so2_mass_lb", "nox_mass_lb", "co2_mass_tons", "op_hours"):
            assert totals[column].sum() == pytest.approx(out[column.replace("op_hours", "op_time")].sum(), rel=1e-12)
    assert list(quarters["period_start_lst"]) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-01")]
    # LST = UTC - 6 h: the first 6 hours are 31 March; 18:00-23:00 = op 1, .25, 0, 1, .25, 0
    assert quarters["op_hours"].iloc[0] == pytest.approx(2.5)
    assert quarters["operating_hours_count"].iloc[0] == 4
    assert days["co2_substituted_hours"].sum() == 2  # hour 11 is not operating (op_time 0)
    assert days["so2_mass_tons"].sum() == pytest.approx(out["so2_mass_lb"].sum() / 2000)
    assert days["operating_days"].tolist() == [1, 1, 1]
    assert days["pma_co2"].iloc[-1] == out["pma_co2"].iloc[-1]


def test_units_are_independent_whatever_the_row_order():
    gas = raw_hours("CT1", "2024-01-01 06:00", 40, co2_pct=np.tile([9.0, 11.0], 20))
    gas.loc[5:9, ["co2_status", "co2_pct"]] = ["missing", np.nan]
    coal = raw_hours(
        "B2",
        "2024-01-01 06:00",
        40,
        o2_status="valid",
        nox_rate_lb_mmbtu=0.25,
        so2_ppm=100.0,
        so2_status="valid",
        moisture_pct=10.0,
        moisture_status="valid",
    )
    coal.loc[0:3, ["so2_status", "so2_ppm"]] = ["calibration_failed", np.nan]  # a gap at the unit's first hours
    units = {"CT1": GAS_CT, "B2": COAL}
    alone = pd.concat([compute_hourly_emissions(gas, units), compute_hourly_emissions(coal, units)])
    mixed = compute_hourly_emissions(pd.concat([coal, gas]).sample(frac=1.0, random_state=7), units)
    key = ["unit_id", "hour_start_utc"]
    pd.testing.assert_frame_equal(
        mixed.sort_values(key).reset_index(drop=True), alone.sort_values(key).reset_index(drop=True)
    )
    # the coal unit's opening gap is not bridged from the gas unit's hours: no prior data -> potential
    assert set(mixed.loc[mixed["unit_id"].eq("B2")].sort_values("hour_start_utc")["so2_method"].iloc[:4]) == {
        "sub_max_potential"
    }


def test_warehouse_dtypes_come_back_as_the_contract():
    # DuckDB returns microsecond timestamps and may return pandas string columns
    raw = raw_hours("CT1", "2024-01-01 06:00", 3).astype(
        {
            "hour_start_utc": "datetime64[us, UTC]",
            "hour_start_lst": "datetime64[us]",
            "unit_id": "string",
            "co2_status": "string",
            "source_ref": "string",
        }
    )
    out = compute_hourly_emissions(raw, {"CT1": GAS_CT})
    assert {c: str(t) for c, t in out.dtypes.items()} == EMISSIONS_DTYPES
    assert out["co2_method"].tolist() == ["measured"] * 3
