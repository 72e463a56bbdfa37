"""Appendix D units through the DAHS chain: a DAHS file with fuel flow -> cems_hourly_raw -> hourly
emissions -> daily totals, every figure worked by hand below."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from gl_pipelines.cems.aggregate import daily_totals
from gl_pipelines.cems.dahs import DAHS_COLUMNS, FUEL_FLOW_COLUMNS, DahsFormatError, parse_dahs_csv
from gl_pipelines.cems.emissions import compute_hourly_emissions
from gl_pipelines.cems.schema import CemsSchemaError
from gl_pipelines.config import CemsUnit

LST = -6
HEADER = ",".join(DAHS_COLUMNS + FUEL_FLOW_COLUMNS)
# An App. D unit has no flow, SO2 or diluent monitor: those are M and blank; its NOx-diluent CEMS reports lb/mmBtu.
NO_MONITORS = ",,M,,M,,M,,M"
GAS_SETTINGS = dict(
    unit_id="GT2",
    fuel="natural_gas",
    moisture_default_pct=8.0,
    so2_method="appendix_d",
    co2_method="appendix_g",
    nox_method="rate",
    appendix_d={"fuel": "pipeline_natural_gas", "gcv": 102_000.0},  # Btu/100 scf
    co2_mpc_pct=6.0,
    nox_mer_lb_mmbtu=0.3,
    max_load_mw=250.0,
)
GAS = CemsUnit(**GAS_SETTINGS)
OIL = CemsUnit(
    **GAS_SETTINGS
    | {
        "unit_id": "D3",
        "fuel": "oil",
        "appendix_d": {"fuel": "oil", "gcv": 19_500.0, "sulfur": 0.3, "so2_from": "sulfur"},  # Btu/lb, weight %
    }
)
UNITS = {"GT2": GAS, "D3": OIL}


def row(unit: str, hour: int, op_time: str, nox_rate: str, fuel_flow: str, code: str) -> str:
    """One DAHS record of LST day 2026-11-01 (UTC-6) for an App. D unit."""
    utc = datetime(2026, 11, 1, hour, tzinfo=UTC) - timedelta(hours=LST)  # the LST wall clock, shifted
    nox_code = "V" if nox_rate else "M"
    values = f"{op_time},150{NO_MONITORS},,{nox_rate},{nox_code},,M,{fuel_flow},{code}"
    return f"{unit},2026-11-01,{hour},{utc:%Y-%m-%dT%H:%M:%SZ},{values}"


def parse(*rows: str):
    return parse_dahs_csv(("\n".join([HEADER, *rows]) + "\n").encode(), "GLDAHS_D.csv", LST, set(UNITS))


def test_appendix_d_units_get_heat_input_so2_and_co2_from_fuel_flow():
    raw = parse(
        row("GT2", 0, "1.00", "0.050", "20000", "V"),  # 2,000,000 scf/hr
        row("GT2", 1, "0.50", "0.050", "10000", "V"),
        row("GT2", 2, "0.00", "", "", "M"),  # not operating: no fuel flow needed
        row("D3", 0, "1.00", "0.200", "5000", "V"),  # lb/hr
    )
    out = compute_hourly_emissions(raw, UNITS)
    gt2, d3 = out[out["unit_id"] == "GT2"], out[out["unit_id"] == "D3"]
    # D-6: HI = Qg x GCVg / 10^6 = 20,000 x 102,000 / 1e6 = 2,040 mmBtu/hr; 1,020 the half-flow hour, run 0.5 h.
    assert gt2["heat_input_mmbtu_hr"].iloc[:2].tolist() == pytest.approx([2_040.0, 1_020.0])
    assert gt2["heat_input_mmbtu"].tolist() == pytest.approx([2_040.0, 510.0, 0.0])
    # D-5 with the 0.0006 lb/mmBtu pipeline-gas default: 1.224 lb, then 0.0006 x 1,020 x 0.5 = 0.306 lb.
    assert gt2["so2_mass_lb"].tolist() == pytest.approx([1.224, 0.306, 0.0])
    # G-4: 1,040 scf/mmBtu x 2,040 mmBtu / 385 scf/lb-mole x 44 lb/lb-mole / 2,000 = 121.234286 tons.
    assert gt2["co2_mass_tons"].tolist() == pytest.approx([121.234286, 30.308571, 0.0], abs=1e-6)
    assert gt2["nox_mass_lb"].tolist() == pytest.approx([102.0, 25.5, 0.0])  # 0.05 lb/mmBtu x heat input
    # D-8: 5,000 lb/hr x 19,500 Btu/lb / 1e6 = 97.5 mmBtu; D-2: 2.0 x 5,000 x 0.3 / 100 = 30 lb SO2;
    # G-4 with oil's Fc 1,420: 1,420 x 97.5 / 385 x 44 / 2,000 = 7.911429 tons; NOx 0.2 x 97.5 = 19.5 lb.
    assert d3[["heat_input_mmbtu", "so2_mass_lb", "nox_mass_lb"]].iloc[0].tolist() == pytest.approx([97.5, 30.0, 19.5])
    assert d3["co2_mass_tons"].iloc[0] == pytest.approx(7.911429, abs=1e-6)
    operating = out[out["op_time"] > 0]
    assert set(operating["so2_method"]) == {"appendix_d"}
    assert set(operating["flow_method"]) == set(operating["co2_method"]) == {"not_used"}
    assert operating["pma_flow"].isna().all() and (operating["pma_nox"] == 100.0).all()
    # The daily report is the sum of those hours.
    daily = daily_totals(out).set_index("unit_id")
    assert daily.loc["GT2", "heat_input_mmbtu"] == pytest.approx(2_550.0)
    assert daily.loc["GT2", "so2_mass_lb"] == pytest.approx(1.53)
    assert daily.loc["GT2", "co2_mass_tons"] == pytest.approx(151.542857, abs=1e-6)
    assert daily.loc["GT2", "op_hours"] == pytest.approx(1.5)
    assert daily.loc["D3", "so2_mass_tons"] == pytest.approx(0.015)


@pytest.mark.parametrize("code", ["M", "C", "O"])
def test_operating_hour_without_quality_assured_fuel_flow_is_refused_by_name(code):
    """A failed-calibration reading is not used even when the DAHS wrote a number beside it."""
    raw = parse(row("GT2", 0, "1.00", "0.050", "20000", "V"), row("GT2", 1, "1.00", "0.050", "19000", code))
    assert math.isnan(raw["fuel_flow"].iloc[1])
    with pytest.raises(CemsSchemaError) as error:
        compute_hourly_emissions(raw, UNITS)
    message = str(error.value)
    assert "Appendix D unit GT2" in message and "2026-11-01 01:00 LST (GLDAHS_D.csv:3)" in message
    assert "App. D §2.4.2" in message and "'fuel_flow'" in message


@pytest.mark.parametrize(
    ("fuel_flow", "code", "column", "problem"),
    [
        ("", "V", "FUEL_FLOW", "value required"),
        ("n/a", "V", "FUEL_FLOW", "not a number"),
        ("20000", "X", "FUEL_FLOW_MDC", "unknown monitor data code"),
        ("-5", "V", None, "outside [0.0, inf]"),
    ],
)
def test_bad_fuel_flow_in_a_dahs_file_is_named(fuel_flow, code, column, problem):
    with pytest.raises(DahsFormatError) as error:
        parse(row("GT2", 0, "1.00", "0.050", fuel_flow, code))
    assert error.value.line == 2 and error.value.column == column and problem in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"so2_method": "default_rate", "so2_default_rate_lb_mmbtu": 0.0006}, "set so2_method 'appendix_d'"),
        ({"co2_method": "cems"}, "co2_method 'appendix_g'"),
        ({"appendix_d": None, "flow_mpf_scfh": 1.0e7}, "so2_method 'appendix_d' needs appendix_d"),
        ({"appendix_d": None, "so2_method": "default_rate", "so2_default_rate_lb_mmbtu": 0.0006}, "flow_mpf_scfh"),
    ],
)
def test_appendix_d_unit_config_must_be_consistent(change, message):
    with pytest.raises(ValueError, match=message):
        CemsUnit(**GAS_SETTINGS | change)
