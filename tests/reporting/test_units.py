"""Units: the plant's gas-industry units convert right, and a bad unit fails the config at load."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from gl_pipelines.config import DEMO_SITE_CONFIG, SiteConfigError, parse_site_config
from gl_pipelines.reporting.units import UnitConfigError, parse_quantity, parse_unit, to_report_unit

FT3_PER_M3 = 1 / 0.3048**3
J_PER_BTU = 1055.056  # International Table Btu, pint's definition


def test_plant_units_parse():
    for unit in ("scf", "Mscf", "MSCF", "mmBtu", "MMBtu", "klb", "short_ton", "MWh", "therm", "%", "percent"):
        parse_unit(unit)


def test_vectorized_conversions_by_hand():
    series = pd.Series([1.0, 2.5], index=[10, 11])
    converted = to_report_unit(series, "Mscf", "m**3")
    assert list(converted.index) == [10, 11]
    np.testing.assert_allclose(converted, [1000 / FT3_PER_M3, 2500 / FT3_PER_M3])
    np.testing.assert_allclose(to_report_unit(np.array([1.0]), "mmBtu", "GJ"), [J_PER_BTU * 1e6 / 1e9])
    np.testing.assert_allclose(to_report_unit(np.array([3.0]), "klb", "lb"), [3000.0])
    np.testing.assert_allclose(to_report_unit(np.array([1.0]), "short_ton", "kg"), [907.18474])
    np.testing.assert_allclose(to_report_unit(np.array([1.0]), "MWh", "mmBtu"), [3.6e9 / (J_PER_BTU * 1e6)])
    np.testing.assert_allclose(to_report_unit(np.array([1.0]), "therm", "mmBtu"), [0.1], rtol=1e-3)
    np.testing.assert_allclose(to_report_unit(pd.Series([0.0, 100.0]), "degC", "degF"), [32.0, 212.0])


def test_hhv_in_other_units():
    hhv = parse_quantity("1.026e-3 mmBtu/scf")
    assert hhv.to("MJ/m**3").magnitude == pytest.approx(1.026e-3 * J_PER_BTU * FT3_PER_M3)


def test_incompatible_and_unknown_units_are_named():
    with pytest.raises(UnitConfigError, match=r"'t/h'.*not convertible to 'm\*\*3/h'"):
        to_report_unit(np.array([1.0]), "t/h", "m**3/h")
    with pytest.raises(UnitConfigError, match="unknown unit 'blorb'"):
        parse_unit("blorb")


def test_demo_site_units_all_parse():
    site = parse_site_config(yaml.safe_load(DEMO_SITE_CONFIG.read_text()), str(DEMO_SITE_CONFIG))
    units = [tag.unit for tag in site.opcua.tags] + [p.unit for d in site.modbus.devices for p in d.points]
    for unit in units:
        parse_unit(unit)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("opcua", "tags", 0, "unit"), "opcua.tags.0.unit"),
        (("modbus", "devices", 0, "points", 0, "unit"), "modbus.devices.0.points.0.unit"),
    ],
)
def test_unknown_tag_unit_fails_config_load(path, field):
    raw = yaml.safe_load(DEMO_SITE_CONFIG.read_text())
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "tons_per_fortnight"
    with pytest.raises(SiteConfigError, match=rf"site.yaml: .*field '{field}' = 'tons_per_fortnight'.*unknown unit"):
        parse_site_config(copy.deepcopy(raw), "site.yaml")


def test_reporting_quantities_checked_for_dimension():
    raw = yaml.safe_load(DEMO_SITE_CONFIG.read_text())
    raw["reporting"] = {"energy_balance": {"fuel_hhv": "1.026e-3 mmBtu/kg"}}
    with pytest.raises(SiteConfigError, match=r"reporting.energy_balance.fuel_hhv.*not convertible to 'mmBtu/scf'"):
        parse_site_config(raw, "site.yaml")
    raw["reporting"] = {"erp_units": {"M3": "cubic_furlong"}}
    with pytest.raises(SiteConfigError, match=r"reporting.erp_units.M3.*unknown unit 'cubic_furlong'"):
        parse_site_config(raw, "site.yaml")
    raw["reporting"] = {"erp_materials": {"GAS-01": "moon_dust"}}
    with pytest.raises(
        SiteConfigError, match=r"reporting.erp_materials.*'moon_dust' is not in the Part 98 factor file"
    ):
        parse_site_config(raw, "site.yaml")
