"""Appendix F equations against hand-worked values (arithmetic in the comments)."""

import numpy as np
import pytest

from gl_pipelines.cems import equations as eq


def test_constants_are_the_regulations():
    assert eq.K_SO2_LB_PER_SCF_PPM == 1.660e-7
    assert eq.K_CO2_TONS_PER_SCF_PCT == 5.7e-7
    assert eq.K_NOX_LB_PER_SCF_PPM == 1.194e-7
    # Each K is molecular weight / molar volume at 68 F, 29.92 inHg (385.3 scf/lbmol), rounded by the rule.
    assert pytest.approx(64.06 / 385.3 * 1e-6, rel=2e-3) == eq.K_SO2_LB_PER_SCF_PPM
    assert pytest.approx(44.01 / 385.3 / 2000 / 100, rel=2e-3) == eq.K_CO2_TONS_PER_SCF_PCT
    assert pytest.approx(46.01 / 385.3 * 1e-6, rel=1e-3) == eq.K_NOX_LB_PER_SCF_PPM


def test_so2_f1_wet():
    # 1.660e-7 x 100 ppm x 1.0e7 scfh = 166.0 lb/hr
    assert eq.so2_lb_hr_wet(100.0, 1.0e7) == pytest.approx(166.0)


def test_so2_f2_dry_concentration_wet_flow():
    # 166.0 lb/hr x (100 - 10)/100 = 149.4 lb/hr
    assert eq.so2_lb_hr_dry(100.0, 1.0e7, 10.0) == pytest.approx(149.4)


def test_co2_f11_wet_and_dry_form():
    # 5.7e-7 x 10 % x 1.0e7 scfh = 57.0 tons/hr; dry CO2 at 10 % moisture: 57.0 x 0.9 = 51.3
    assert eq.co2_tons_hr_wet(10.0, 1.0e7) == pytest.approx(57.0)
    assert eq.co2_tons_hr_dry(10.0, 1.0e7, 10.0) == pytest.approx(51.3)


def test_heat_input_f15_co2():
    # 1.0e7 scfh x (10/100) / 1,800 scf CO2/mmBtu = 555.5556 mmBtu/hr
    assert eq.heat_input_co2_wet(1.0e7, 10.0, 1800.0) == pytest.approx(555.5556, rel=1e-6)


def test_heat_input_f17_o2_dry():
    # 1.0e7 x 0.9 / 9,780 = 920.2454 dscf-based mmBtu; x (20.9 - 6.0)/20.9 = 0.7129187 -> 656.0601 mmBtu/hr
    assert eq.heat_input_o2_dry(1.0e7, 6.0, 10.0, 9780.0) == pytest.approx(656.0601, rel=1e-6)


def test_heat_input_f18_o2_wet_matches_f17_for_the_same_gas():
    # O2 wet = 6.0 x 0.9 = 5.4 %: (20.9 x 0.9 - 5.4)/20.9 = 13.41/20.9 = 0.6416268;
    # 1.0e7/9,780 = 1022.4949; x 0.6416268 = 656.0601 mmBtu/hr
    assert eq.heat_input_o2_wet(1.0e7, 5.4, 10.0, 9780.0) == pytest.approx(656.0601, rel=1e-6)


def test_nox_f5_dry_o2():
    # 1.194e-7 x 50 ppm x 8,710 x 20.9/(20.9 - 6.0) = 0.0519987 x 1.402685 = 0.0729378 lb/mmBtu
    assert eq.nox_rate_o2_dry(50.0, 6.0, 8710.0) == pytest.approx(0.0729378, rel=1e-6)


def test_nox_f6_wet_o2_matches_f5_for_the_same_gas():
    # wet NOx 45 ppm, wet O2 5.4 %, 10 % H2O: 1.194e-7 x 45 x 8,710 x 20.9/(18.81 - 5.4) = 0.0729378
    assert eq.nox_rate_o2_wet(45.0, 5.4, 10.0, 8710.0) == pytest.approx(0.0729378, rel=1e-6)


def test_nox_f7a_co2_diluent():
    # 1.194e-7 x 50 ppm x 1,040 x 100/10 % = 0.062088 lb/mmBtu; wet form identical when both are wet
    assert eq.nox_rate_co2_dry(50.0, 10.0, 1040.0) == pytest.approx(0.062088)
    assert eq.nox_rate_co2_wet(45.0, 9.0, 1040.0) == pytest.approx(0.062088)


def test_nox_mass_and_hourly_mass():
    # 0.0729378 lb/mmBtu x 500 mmBtu/hr = 36.4689 lb/hr; x 0.5 h operating = 18.23445 lb
    lb_hr = eq.nox_lb_hr(0.0729378, 500.0)
    assert lb_hr == pytest.approx(36.4689)
    assert eq.hourly_mass(lb_hr, 0.5) == pytest.approx(18.23445)


def test_published_epa_hour_reproduces():
    # Langley Gulch CT1, 01-01-2018 hour 0 (EPA file): NOx rate .007, heat input 2001.8, NOx mass 14.013;
    # SO2 mass 1.201 from the App. D pipeline-gas default 0.0006 lb/mmBtu: 0.0006 x 2001.8 = 1.20108
    assert round(float(eq.nox_lb_hr(0.007, 2001.8)), 3) == 14.013
    assert round(float(eq.so2_lb_hr_default_rate(0.0006, 2001.8)), 3) == 1.201


def test_wet_dry_round_trip_and_vectorized():
    dry = np.array([100.0, 50.0, 0.0])
    moisture = np.array([10.0, 20.0, 5.0])
    assert np.allclose(eq.dry_from_wet(eq.wet_from_dry(dry, moisture), moisture), dry)
    # 100 x 0.9 = 90, 50 x 0.8 = 40
    assert np.allclose(eq.wet_from_dry(dry, moisture), [90.0, 40.0, 0.0])
