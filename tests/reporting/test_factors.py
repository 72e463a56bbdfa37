"""Factor files: spot checks against 40 CFR 98 Tables C-1, C-2 and Table A-1 / IPCC GWPs."""

import pytest

from gl_pipelines.reporting.factors import FactorError, factor_table, fuel_factors, gwp


@pytest.mark.parametrize(
    ("fuel", "hhv", "unit", "co2", "ch4", "n2o"),
    [
        ("natural_gas", 1.026e-3, "scf", 53.06, 1.0e-3, 1.0e-4),
        ("distillate_oil_2", 0.138, "gallon", 73.96, 3.0e-3, 6.0e-4),
        ("residual_oil_6", 0.150, "gallon", 75.10, 3.0e-3, 6.0e-4),
        ("propane", 0.091, "gallon", 62.87, 3.0e-3, 6.0e-4),
        ("bituminous", 24.93, "short_ton", 93.28, 1.1e-2, 1.6e-3),
        ("subbituminous", 17.25, "short_ton", 97.17, 1.1e-2, 1.6e-3),
        ("propane_gas", 2.516e-3, "scf", 61.46, 3.0e-3, 6.0e-4),
    ],
)
def test_table_values(fuel, hhv, unit, co2, ch4, n2o):
    factors = fuel_factors(fuel)
    assert (factors.hhv_mmbtu_per_unit, factors.fuel_unit) == (pytest.approx(hhv), unit)
    assert factors.co2_kg_per_mmbtu == co2
    assert (factors.ch4_kg_per_mmbtu, factors.n2o_kg_per_mmbtu) == (ch4, n2o)


def test_every_row_is_complete_and_positive():
    table = factor_table()
    assert table.notna().all().all()
    assert (table[["hhv", "co2_kg_per_mmbtu", "ch4_kg_per_mmbtu", "n2o_kg_per_mmbtu"]] > 0).all().all()
    for fuel in table.index:
        fuel_factors(fuel)  # every HHV unit parses


def test_gwp_sets():
    assert gwp("AR5") == {"CO2": 1.0, "CH4": 28.0, "N2O": 265.0}
    assert gwp("AR4") == {"CO2": 1.0, "CH4": 25.0, "N2O": 298.0}
    assert gwp("AR6") == {"CO2": 1.0, "CH4": 27.9, "N2O": 273.0}


def test_unknown_keys_named():
    with pytest.raises(FactorError, match="fuel type 'whale_oil' is not in part98_table_c1_c2.csv"):
        fuel_factors("whale_oil")
    with pytest.raises(FactorError, match="GWP set 'AR9'"):
        gwp("AR9")


def test_heat_input_of_a_fuel_in_another_unit():
    assert fuel_factors("natural_gas").mmbtu(1.0, "Mscf") == pytest.approx(1.026)
    assert fuel_factors("bituminous").mmbtu(1.0, "short_ton") == pytest.approx(24.93)
