"""40 CFR Part 75 Appendix F conversion equations, one small vectorized function each.

Every function takes scalars or numpy/pandas arrays and returns the same shape. Units follow the
regulation: concentrations in ppm or percent by volume, stack flow in standard cubic feet per hour
(scfh, wet unless named dry), F-factors in dscf/mmBtu (Fd) or scf CO2/mmBtu (Fc), heat input in
mmBtu/hr. Rates are "during unit operation"; hourly mass = rate x operating time (App. F §2.3, §4.2, §8).

Constants (K) are the regulation's; where a value could only be checked indirectly that is said in the
docstring and in the package notes.
"""

from __future__ import annotations

import numpy as np

K_SO2_LB_PER_SCF_PPM = 1.660e-7
"""App. F §2.1/2.2 (Eq. F-1, F-2): K = 1.660 x 10^-7 (lb/scf)/ppm SO2 (= 64.06 lb/lbmol / 385.3 scf/lbmol x 1e-6)."""
K_CO2_TONS_PER_SCF_PCT = 5.7e-7
"""App. F §4.1 (Eq. F-11): K = 5.7 x 10^-7 (tons/scf)/%CO2 (= 44.01 / 385.3 / 2000 / 100 = 5.711e-7)."""
K_NOX_LB_PER_SCF_PPM = 1.194e-7
"""App. F §3.3 (Eq. F-5 to F-7b): K = 1.194 x 10^-7 (lb/dscf)/ppm NOx, as NO2 (= 46.01 / 385.3 x 1e-6)."""
O2_AMBIENT_PCT = 20.9
"""Percent O2 in ambient air, the 20.9 of Eq. F-5, F-6, F-17, F-18."""


def dry_fraction(moisture_pct):
    """(100 - %H2O) / 100: the dry share of the stack gas, used by every wet/dry conversion in App. F."""
    return (100.0 - np.asarray(moisture_pct, dtype="float64")) / 100.0


def wet_from_dry(concentration_dry, moisture_pct):
    """Concentration on a stack-moisture (wet) basis from a dry one: C_w = C_d x (100 - %H2O)/100."""
    return np.asarray(concentration_dry, dtype="float64") * dry_fraction(moisture_pct)


def dry_from_wet(concentration_wet, moisture_pct):
    """Concentration on a dry basis from a wet one: C_d = C_w / ((100 - %H2O)/100)."""
    return np.asarray(concentration_wet, dtype="float64") / dry_fraction(moisture_pct)


def so2_lb_hr_wet(so2_ppm_wet, flow_scfh_wet):
    """Eq. F-1 (App. F §2.1): E_h = K x C_h x Q_h, SO2 and flow both on a wet basis; lb/hr."""
    return K_SO2_LB_PER_SCF_PPM * np.asarray(so2_ppm_wet, dtype="float64") * np.asarray(flow_scfh_wet, "float64")


def so2_lb_hr_dry(so2_ppm_dry, flow_scfh_wet, moisture_pct):
    """Eq. F-2 (App. F §2.2): E_h = K x C_hp x Q_hs x (100 - %H2O)/100, SO2 dry and flow wet; lb/hr."""
    return so2_lb_hr_wet(so2_ppm_dry, flow_scfh_wet) * dry_fraction(moisture_pct)


def so2_lb_hr_default_rate(rate_lb_mmbtu, heat_input_mmbtu_hr):
    """Eq. D-5 form (App. D §3.3 [not verified], see fuel_based): SO2 lb/hr = default SO2 emission rate (e.g.
    0.0006 lb/mmBtu pipeline natural gas) x heat input rate. Used for gas units that do not run an SO2 CEMS."""
    return np.asarray(rate_lb_mmbtu, dtype="float64") * np.asarray(heat_input_mmbtu_hr, dtype="float64")


def co2_tons_hr_wet(co2_pct_wet, flow_scfh_wet):
    """Eq. F-11 (App. F §4.1): E_h = K x C_h x Q_h, CO2 % and flow both wet; short tons/hr."""
    return K_CO2_TONS_PER_SCF_PCT * np.asarray(co2_pct_wet, dtype="float64") * np.asarray(flow_scfh_wet, "float64")


def co2_tons_hr_dry(co2_pct_dry, flow_scfh_wet, moisture_pct):
    """App. F §4.1, Eq. F-2 form for a dry CO2 monitor: K x %CO2d x Q_w x (100 - %H2O)/100; tons/hr."""
    return co2_tons_hr_wet(co2_pct_dry, flow_scfh_wet) * dry_fraction(moisture_pct)


def heat_input_co2_wet(flow_scfh_wet, co2_pct_wet, fc_factor):
    """Eq. F-15 (App. F §5.2.2): HI = Q_h x (1/Fc) x (%CO2w/100); mmBtu/hr, CO2 and flow wet."""
    flow = np.asarray(flow_scfh_wet, dtype="float64")
    return flow * np.asarray(co2_pct_wet, dtype="float64") / 100.0 / np.asarray(fc_factor, dtype="float64")


def heat_input_o2_dry(flow_scfh_wet, o2_pct_dry, moisture_pct, fd_factor):
    """Eq. F-17 (App. F §5.2.1): HI = Q_w x [(100 - %H2O)/100] x (1/Fd) x [(20.9 - %O2d)/20.9]; mmBtu/hr."""
    flow_dry = np.asarray(flow_scfh_wet, dtype="float64") * dry_fraction(moisture_pct)
    diluent = (O2_AMBIENT_PCT - np.asarray(o2_pct_dry, dtype="float64")) / O2_AMBIENT_PCT
    return flow_dry / np.asarray(fd_factor, dtype="float64") * diluent


def heat_input_o2_wet(flow_scfh_wet, o2_pct_wet, moisture_pct, fd_factor):
    """Eq. F-18 (App. F §5.2.1): HI = Q_w x (1/Fd) x [(20.9 x (100 - %H2O)/100 - %O2w)/20.9]; mmBtu/hr."""
    flow = np.asarray(flow_scfh_wet, dtype="float64")
    diluent = (O2_AMBIENT_PCT * dry_fraction(moisture_pct) - np.asarray(o2_pct_wet, "float64")) / O2_AMBIENT_PCT
    return flow / np.asarray(fd_factor, dtype="float64") * diluent


def nox_rate_o2_dry(nox_ppm_dry, o2_pct_dry, fd_factor):
    """Eq. F-5 (App. F §3.3.1): E = K x C_d x F_d x 20.9/(20.9 - %O2d); lb/mmBtu, NOx and O2 dry."""
    nox = np.asarray(nox_ppm_dry, dtype="float64")
    o2 = np.asarray(o2_pct_dry, dtype="float64")
    return K_NOX_LB_PER_SCF_PPM * nox * np.asarray(fd_factor, "float64") * O2_AMBIENT_PCT / (O2_AMBIENT_PCT - o2)


def nox_rate_o2_wet(nox_ppm_wet, o2_pct_wet, moisture_pct, fd_factor):
    """Eq. F-6 (App. F §3.3.2): E = K x C_w x F_d x 20.9/[20.9 x (100 - %H2O)/100 - %O2w]; lb/mmBtu."""
    nox = np.asarray(nox_ppm_wet, dtype="float64")
    denominator = O2_AMBIENT_PCT * dry_fraction(moisture_pct) - np.asarray(o2_pct_wet, dtype="float64")
    return K_NOX_LB_PER_SCF_PPM * nox * np.asarray(fd_factor, "float64") * O2_AMBIENT_PCT / denominator


def nox_rate_co2_dry(nox_ppm_dry, co2_pct_dry, fc_factor):
    """Eq. F-7a (App. F §3.3.3): E = K x C_d x F_c x 100/%CO2d; lb/mmBtu, NOx and CO2 dry."""
    nox = np.asarray(nox_ppm_dry, dtype="float64")
    return K_NOX_LB_PER_SCF_PPM * nox * np.asarray(fc_factor, "float64") * 100.0 / np.asarray(co2_pct_dry, "float64")


def nox_rate_co2_wet(nox_ppm_wet, co2_pct_wet, fc_factor):
    """Eq. F-7b (App. F §3.3.4): E = K x C_w x F_c x 100/%CO2w; lb/mmBtu, NOx and CO2 wet."""
    return nox_rate_co2_dry(nox_ppm_wet, co2_pct_wet, fc_factor)


def nox_lb_hr(nox_rate_lb_mmbtu, heat_input_mmbtu_hr):
    """App. F §8 (Eq. F-24 form): NOx mass rate, lb/hr = NOx emission rate (lb/mmBtu) x heat input rate."""
    return np.asarray(nox_rate_lb_mmbtu, dtype="float64") * np.asarray(heat_input_mmbtu_hr, dtype="float64")


def hourly_mass(rate_per_hour, op_time):
    """Mass (or heat input) for the clock hour: rate during unit operation x operating time (0..1)."""
    return np.asarray(rate_per_hour, dtype="float64") * np.asarray(op_time, dtype="float64")
