"""Review-67: a rewritten DAHS file re-runs the hours it drops; App. F Table 1 pinned and cross-checked."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import build_sensor_context, instance_for_test

from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.config import CEMS_F_FACTORS, load_site_config
from gl_pipelines.reporting.factors import fuel_factors
from gl_pipelines.sensors.cems_files import build_cems_file_sensor
from gl_pipelines.simulators import cems_model
from gl_pipelines.simulators.cems_dahs import lst_day_window, write_day

DAY, LST = date(2026, 11, 1), -6


@pytest.fixture
def source(tmp_path):
    cems = load_site_config().cems
    return cems.model_copy(
        update={
            "dahs_drop_folder": tmp_path / "drop",
            "quarantine_folder": tmp_path / "quarantine",
            "accepted_folder": tmp_path / "accepted",
        }
    )


def test_a_rewrite_that_drops_hours_reruns_the_hours_of_the_version_it_replaces(source):
    """Before: the run covered only the new version's hours (00..11), so hours 12..23 kept the old
    version's rows in the warehouse although that version no longer counts."""
    sensor = build_cems_file_sensor(source, "cems_raw_job")
    start, end = lst_day_window(DAY, LST)
    hours = cems_model.hour_starts(start, end)
    with instance_for_test() as instance:
        write_day(source.dahs_drop_folder, "B1", DAY, LST)
        first = sensor(build_sensor_context(instance=instance))
        write_day(
            source.dahs_drop_folder, "B1", DAY, LST, faults=cems_model.CemsFaults(dropped_hours=frozenset(hours[12:]))
        )
        second = sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    (request,) = second.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-01-00:00", "2026-11-01-23:00")


# App. F Table 1 (Fd dscf/mmBtu, Fc scf CO2/mmBtu) as the cems-domain notes list it; Fc is checked below
# against Part 98 Table C-1, an independent table of the same physics.
TABLE_1 = {
    "coal_anthracite": (10_100.0, 1_970.0),
    "coal_bituminous": (9_780.0, 1_800.0),
    "coal_subbituminous": (9_820.0, 1_840.0),
    "coal_lignite": (9_860.0, 1_910.0),
    "oil": (9_190.0, 1_420.0),
    "natural_gas": (8_710.0, 1_040.0),
    "propane": (8_710.0, 1_190.0),
    "butane": (8_710.0, 1_250.0),
    "wood_bark": (9_600.0, 1_920.0),
    "wood_residue": (9_240.0, 1_830.0),
}
PART98_FUEL = {
    "coal_anthracite": "anthracite",  # Table C-1 103.69 kg/mmBtu
    "coal_bituminous": "bituminous",  # 93.28
    "coal_subbituminous": "subbituminous",  # 97.17
    "coal_lignite": "lignite",  # 97.72
    "oil": "distillate_oil_2",  # 73.96
    "natural_gas": "natural_gas",  # 53.06
    "propane": "propane_gas",  # 61.46
    "butane": "butane",  # 64.77
}


def test_f_factor_table_is_pinned():
    assert CEMS_F_FACTORS == TABLE_1


@pytest.mark.parametrize("fuel", sorted(PART98_FUEL))
def test_fc_agrees_with_part98_table_c1_within_2_5_percent(fuel):
    """Fc x 44.01/385.3 lb CO2 per scf (the K of Eq. F-11 x 2000 x 100) is the CO2 per mmBtu of the fuel;
    e.g. natural gas 1,040 x 0.114223 = 118.79 lb = 53.88 kg/mmBtu vs Table C-1 53.06 (+1.5 %);
    bituminous 1,800 -> 93.26 vs 93.28. A digit slip in either table moves it far beyond 2.5 %."""
    kg_per_mmbtu = CEMS_F_FACTORS[fuel][1] * 44.01 / 385.3 * 0.45359237
    part98 = fuel_factors(PART98_FUEL[fuel]).co2_kg_per_mmbtu
    assert abs(kg_per_mmbtu / part98 - 1) < 0.025
