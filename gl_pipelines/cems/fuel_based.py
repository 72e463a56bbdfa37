"""40 CFR Part 75 Appendix G (CO2 from fuel) and Appendix D (heat input and SO2 from fuel flow).

EPA computes the CO2 of most gas- and oil-fired units this way, not from a CO2 monitor: Eq. G-4 turns
the hour's heat input into CO2 with the fuel's carbon F-factor. Appendix D units have no flow or SO2
monitor: a fuel flowmeter and the fuel's gross calorific value (GCV) give heat input, and the fuel's
sulfur content (or, for pipeline natural gas, a default rate) gives SO2. Each function is vectorized
(scalars or arrays in, same shape out); each constant names its paragraph of the regulation.

Citations, as far as the regulation's text could be read here (stored copies of law.cornell.edu's
App. D, the 1999 Federal Register rule text, 40 CFR 98.43; searched 2026-12-03):
- read: App. D's scope (§1.1: §2.1 fuel flowmeters, §2.2 oil sulfur and GCV sampling, §2.3 sulfur and
  GCV of gaseous fuels); §2.4.2 is the missing-data procedure for fuel flowmeters (its first sentence);
  Table D-6's missing-data values for sulfur, density and GCV (64 FR 28663, May 26, 1999); and
  "section 2.3 of appendix G" as the CO2 mass procedure of §75.13 (40 CFR 98.43(a)), where Eq. G-4 is.
- not found (cited as remembered, marked "[not verified]" below): the paragraph of each equation
  (G-1 §2.1, D-2 §3.1, D-4 §3.2, D-5 §3.3, D-6 §3.4.1, D-8 §3.4.2), the 0.0006 default at §2.3.1.4, and
  G-4's constants as printed. G-4's product of constants is confirmed by EPA's own data instead: it
  reproduces EPA's published CO2 of every Idaho gas-unit hour 2017-2018 within 0.05 ton.
"""

from __future__ import annotations

import numpy as np

from gl_pipelines.config import AppendixD

MW_CO2 = 44.0
"""App. G Eq. G-1 and G-4 (§2.3 read; G-1 §2.1 [not verified]): molecular weight of CO2, 44.0 lb/lb-mole."""
MW_CARBON = 12.0
"""App. G Eq. G-1 (§2.1 [not verified]): molecular weight of carbon, 12.0 lb/lb-mole."""
U_F_LBMOLE_PER_SCF = 1.0 / 385.0
"""App. G §2.3, Eq. G-4: U_f = 1/385 lb-mole per scf of CO2 at 14.7 psia and 68 °F [value not verified in the
text; EPA's hourly CO2 confirms the product Fc x U_f x MW_CO2 / 2,000]."""
FC_G4_SCF_PER_MMBTU = {"natural_gas": 1_040.0, "oil": 1_420.0}
"""App. G §2.3, Eq. G-4: carbon-based F-factor Fc, scf CO2/mmBtu: 1,040 for natural gas, 1,420 for
crude, residual or distillate oil (the same values as App. F Table 1) [not verified in App. G's text]."""
LB_PER_TON = 2_000.0
"""Eq. G-1 and G-4 divide by 2,000 lb per short ton."""

SO2_DEFAULT_PIPELINE_GAS_LB_MMBTU = 0.0006
"""Default SO2 emission rate for pipeline natural gas, 0.0006 lb/mmBtu, used in Eq. D-5 (App. D §2.3.1.4
[not verified]; EPA's published SO2 of the Idaho gas units is 0.0006 x heat input every hour)."""
SO2_PER_S = 2.0
"""App. D Eq. D-2 and D-4: 2.0 lb SO2 per lb of sulfur (64.0 / 32.0)."""
GRAINS_PER_LB = 7_000.0
"""App. D Eq. D-4: 7,000 grains per lb (gas sulfur content is in grain/100 scf)."""
BTU_PER_MMBTU = 1.0e6
"""App. D Eq. D-6 and D-8: 10^6 Btu per mmBtu."""


def _f(values) -> np.ndarray:
    return np.asarray(values, dtype="float64")


def co2_tons_from_carbon(carbon_lb):
    """Eq. G-1 (App. G §2.1 [not verified]): W_CO2 = (MW_CO2 / MW_C) x W_C / 2,000; tons CO2 from lb of carbon."""
    return _f(carbon_lb) * (MW_CO2 / MW_CARBON) / LB_PER_TON


def co2_tons_g4(heat_input_mmbtu, fc_scf_per_mmbtu):
    """Eq. G-4 (App. G §2.3): W_CO2 = Fc x H x U_f x MW_CO2 / 2,000; short tons CO2 for heat input H (mmBtu).

    For natural gas (Fc 1,040) this is 0.0594286 tons/mmBtu; App. F's F-11 constant 5.7e-7 (rounded)
    gives 0.25 % less, which is why EPA's published CO2 of gas units differs from an F-11 computation.
    """
    return _f(fc_scf_per_mmbtu) * _f(heat_input_mmbtu) * U_F_LBMOLE_PER_SCF * MW_CO2 / LB_PER_TON


def heat_input_gas_d6(gas_flow_100scf_hr, gcv_btu_per_100scf):
    """Eq. D-6 (App. D §3.4.1 [not verified]): HI = Q_g x GCV_g / 10^6; mmBtu/hr; gas 100 scf/hr, GCV Btu/100 scf."""
    return _f(gas_flow_100scf_hr) * _f(gcv_btu_per_100scf) / BTU_PER_MMBTU


def heat_input_oil_d8(oil_flow_lb_hr, gcv_btu_per_lb):
    """Eq. D-8 (App. D §3.4.2 [not verified]): HI = Q_o x GCV_o / 10^6; mmBtu/hr, oil mass flow lb/hr, GCV Btu/lb."""
    return _f(oil_flow_lb_hr) * _f(gcv_btu_per_lb) / BTU_PER_MMBTU


def so2_lb_hr_oil_d2(oil_flow_lb_hr, sulfur_weight_pct):
    """Eq. D-2 (App. D §3.1 [not verified]): SO2 = 2.0 x Q_o x %S / 100; lb/hr, oil mass flow and sulfur wt %."""
    return SO2_PER_S * _f(oil_flow_lb_hr) * _f(sulfur_weight_pct) / 100.0


def so2_lb_hr_gas_d4(gas_flow_100scf_hr, sulfur_grain_per_100scf):
    """Eq. D-4 (App. D §3.2 [not verified]): SO2 = (2.0 / 7,000) x Q_g x S_g; lb/hr, gas flow 100 scf/hr, grain S."""
    return SO2_PER_S / GRAINS_PER_LB * _f(gas_flow_100scf_hr) * _f(sulfur_grain_per_100scf)


def so2_lb_hr_default_d5(heat_input_mmbtu_hr, rate_lb_mmbtu=SO2_DEFAULT_PIPELINE_GAS_LB_MMBTU):
    """Eq. D-5 (App. D §3.3 [not verified]): SO2 = ER x HI; lb/hr from heat input and the default rate (0.0006)."""
    return _f(rate_lb_mmbtu) * _f(heat_input_mmbtu_hr)


def appendix_d_rates(fuel_flow, monitoring: AppendixD) -> dict[str, np.ndarray]:
    """Hourly rates of an Appendix D unit from its metered fuel flow (gas: 100 scf/hr; oil: lb/hr).

    Heat input by D-6 (gas) or D-8 (oil); SO2 by D-5 with 0.0006 lb/mmBtu (pipeline natural gas) or
    from sulfur content (D-4 gas, D-2 oil); CO2 by G-4 with the fuel's Fc. Rates are per operating
    hour; mass for the clock hour is rate x operating time, as for the CEMS path.
    """
    gas = monitoring.fuel != "oil"
    heat_input = heat_input_gas_d6(fuel_flow, monitoring.gcv) if gas else heat_input_oil_d8(fuel_flow, monitoring.gcv)
    if monitoring.so2_from == "default_rate":
        so2 = so2_lb_hr_default_d5(heat_input)
    elif gas:
        so2 = so2_lb_hr_gas_d4(fuel_flow, monitoring.sulfur)
    else:
        so2 = so2_lb_hr_oil_d2(fuel_flow, monitoring.sulfur)
    fc = FC_G4_SCF_PER_MMBTU["natural_gas" if gas else "oil"]
    return {"heat_input_mmbtu_hr": heat_input, "so2_lb_hr": so2, "co2_tons_hr": co2_tons_g4(heat_input, fc)}
