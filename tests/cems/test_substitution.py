"""§75.32 PMA and §75.31/§75.33 substitution on small constructed cases, one per band and gap length."""

import numpy as np
import pytest

from gl_pipelines.cems.substitution import (
    ParameterRule,
    load_ranges,
    percent_monitor_data_availability,
    substitute_parameter,
)

SO2 = ParameterRule("so2", 720, load_based=False, high_is_conservative=True, potential_value=500.0)
O2 = ParameterRule("o2", 720, load_based=False, high_is_conservative=False, potential_value=0.0)
NOX = ParameterRule("nox", 2_160, load_based=True, high_is_conservative=True, potential_value=0.5)


def table1_case(history_values, earlier_missing, gap, after_value):
    """Hours: QA history (values as given, some earlier hours missing), a gap, one hour after."""
    values = np.concatenate([history_values, np.full(gap, np.nan), [after_value]])
    status = np.array(["valid"] * len(values), dtype=object)
    status[earlier_missing] = "missing"
    status[len(history_values) : len(history_values) + gap] = "calibration_failed"
    op_time = np.ones(len(values))
    return values, status, op_time, np.ones(len(values), dtype=np.int64)


def fill(case, rule=SO2):
    return substitute_parameter(*case, rule)


def gap_slice(history_len, gap):
    return slice(history_len, history_len + gap)


def test_pma_eq8_then_eq9_window():
    operating = np.ones(8_762, dtype=bool)
    qa = np.ones(8_762, dtype=bool)
    qa[0] = False
    pma = percent_monitor_data_availability(operating, qa)
    assert pma[0] == 0.0
    assert pma[9] == pytest.approx(90.0)  # Eq. 8: 9 QA of 10 operating hours
    assert pma[8_759] == pytest.approx(100.0 * 8_759 / 8_760)  # still counts hour 0
    assert pma[8_760] == 100.0  # Eq. 9: the last 8,760 operating hours no longer include hour 0


def test_pma_skips_non_operating_hours():
    operating = np.array([True, False, False, True])
    qa = np.array([True, False, False, False])
    assert np.allclose(percent_monitor_data_availability(operating, qa), [100.0, 100.0, 100.0, 50.0])


# History 0..999 (1,000 QA hours): the 720-hour look-back is 280..999. Nearest-rank percentiles of it:
# 90th = 648th smallest = 280 + 647 = 927; 95th = 684th = 963; 10th = 72nd = 351; 5th = 36th = 315.
HISTORY = np.arange(1000.0)


def test_band_95_short_gap_average_before_after():
    # PMA at the 5th missing hour: 1000/1005 = 99.5 %. Gap <= 24 h: (999 + 5) / 2 = 502
    values, method, pma = fill(table1_case(HISTORY, [], 5, 5.0))
    assert np.all(values[gap_slice(1000, 5)] == 502.0)
    assert set(method[gap_slice(1000, 5)]) == {"sub_avg_before_after"}
    assert pma[1004] == pytest.approx(100 * 1000 / 1005)


def test_band_95_long_gap_greater_of_p90_and_average():
    # 30 h gap, PMA at the end 1000/1030 = 97.1 %: max(927, (999 + 5)/2 = 502) = 927 (90th percentile)
    values, method, _ = fill(table1_case(HISTORY, [], 30, 5.0))
    assert np.all(values[gap_slice(1000, 30)] == 927.0)
    assert set(method[gap_slice(1000, 30)]) == {"sub_p90_lookback"}
    # with a high hour after, (999 + 2000)/2 = 1499.5 wins over 927
    values, method, _ = fill(table1_case(HISTORY, [], 30, 2000.0))
    assert np.all(values[gap_slice(1000, 30)] == 1499.5)
    assert set(method[gap_slice(1000, 30)]) == {"sub_avg_before_after"}


def test_band_90_to_95_gap_of_8_and_of_10_hours():
    # 70 earlier hours missing (100..169): 930 QA. 8 h gap: PMA 930/1008 = 92.3 % -> average (999 + 5)/2
    earlier = list(range(100, 170))
    values, method, pma = fill(table1_case(HISTORY, earlier, 8, 5.0))
    assert 90 <= pma[1007] < 95
    assert np.all(values[gap_slice(1000, 8)] == 502.0)
    # 10 h gap (> 8): greater of the 95th percentile (look-back still 280..999 -> 963) and 502
    values, method, pma = fill(table1_case(HISTORY, earlier, 10, 5.0))
    assert 90 <= pma[1009] < 95
    assert np.all(values[gap_slice(1000, 10)] == 963.0)
    assert set(method[gap_slice(1000, 10)]) == {"sub_p95_lookback"}


def test_band_80_to_90_lookback_maximum():
    # 150 earlier hours missing: PMA 850/1003 = 84.7 % -> maximum of the look-back, 999
    values, method, pma = fill(table1_case(HISTORY, list(range(100, 250)), 3, 5.0))
    assert 80 <= pma[1002] < 90
    assert np.all(values[gap_slice(1000, 3)] == 999.0)
    assert set(method[gap_slice(1000, 3)]) == {"sub_max_lookback"}


def test_band_below_80_maximum_potential():
    # 250 earlier hours missing: PMA 750/1003 = 74.8 % -> maximum potential concentration 500
    values, method, pma = fill(table1_case(HISTORY, list(range(100, 350)), 3, 5.0))
    assert pma[1002] < 80
    assert np.all(values[gap_slice(1000, 3)] == 500.0)
    assert set(method[gap_slice(1000, 3)]) == {"sub_max_potential"}


def test_band_changes_inside_a_long_gap():
    # 940 QA of 1000, then a 100 h gap: PMA falls from 940/1001 = 93.9 % to 940/1100 = 85.5 %
    values, method, pma = fill(table1_case(HISTORY, list(range(100, 160)), 100, 5.0))
    hours = gap_slice(1000, 100)
    assert method[1000] == "sub_p95_lookback" and values[1000] == 963.0
    assert method[1099] == "sub_max_lookback" and values[1099] == 999.0
    assert np.all(np.diff(pma[hours]) < 0)


def test_low_is_conservative_mirror_for_o2():
    # O2 for heat input: 30 h gap at PMA >= 95 -> lesser of the 10th percentile (351) and (999 + 5)/2
    values, method, _ = fill(table1_case(HISTORY, [], 30, 5.0), O2)
    assert np.all(values[gap_slice(1000, 30)] == 351.0)
    assert set(method[gap_slice(1000, 30)]) == {"sub_p10_lookback"}
    values, method, _ = fill(table1_case(HISTORY, list(range(100, 350)), 3, 5.0), O2)
    assert set(method[gap_slice(1000, 3)]) == {"sub_min_potential"} and np.all(values[gap_slice(1000, 3)] == 0.0)


def test_initial_procedures_and_no_prior_data():
    # 100 QA hours (< 720): average of the hours before and after, (99 + 5)/2 = 52
    values, method, _ = fill(table1_case(np.arange(100.0), [], 3, 5.0))
    assert np.all(values[100:103] == 52.0)
    assert set(method[100:103]) == {"sub_initial_avg_before_after"}
    # a gap before any quality-assured hour: maximum potential
    values, method, _ = fill(table1_case(np.array([]), [], 3, 5.0))
    assert np.all(values[:3] == 500.0) and set(method[:3]) == {"sub_max_potential"}


def test_open_gap_at_the_end_uses_hour_before():
    case = table1_case(np.arange(100.0), [], 3, 5.0)
    values, method, _ = fill(tuple(a[:-1] for a in case))
    assert np.all(values[100:103] == 99.0) and set(method[100:103]) == {"sub_initial_hour_before"}


def test_non_operating_hours_are_skipped_and_statuses_count_as_missing():
    values = np.array([10.0, 12.0, np.nan, np.nan, 99.0, 20.0])
    status = np.array(["valid", "valid", "out_of_control", "missing", "valid", "valid"], dtype=object)
    op_time = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])  # hours 3 and 4 the unit was off
    out, method, pma = substitute_parameter(values, status, op_time, np.ones(6, dtype=np.int64), SO2)
    # gap = hour 2 only; the operating hour after it is hour 5 (20): (12 + 20)/2 = 16
    assert out[2] == 16.0 and method[2] == "sub_initial_avg_before_after"
    assert list(method[3:5]) == ["not_operating", "not_operating"] and np.isnan(out[3:5]).all()
    assert pma[5] == pytest.approx(75.0)  # 3 QA of 4 operating hours


def test_load_ranges():
    # App. C: ten ranges of 10 % of the maximum load; 0 -> range 1, 100 % -> 10, unknown -> 10
    assert list(load_ranges(np.array([0.0, 10.0, 10.1, 55.0, 100.0, 120.0, np.nan]), 100.0)) == [1, 1, 2, 6, 10, 10, 10]


def table2_case(gap, gap_load, earlier_missing=0, history=3_000):
    """3,000 QA hours alternating load range 3 (value 10) and range 7 (values 50, 52, ... 68), then a gap."""
    i = np.arange(history)
    load = np.where(i % 2 == 0, 25.0, 65.0)
    values = np.where(i % 2 == 0, 10.0, 50.0 + 2 * ((i // 2) % 10))
    status = np.array(["valid"] * history, dtype=object)
    status[100 : 100 + earlier_missing] = "missing"
    values = np.concatenate([values, np.full(gap, np.nan), [60.0]])
    load = np.concatenate([load, np.full(gap, gap_load), [65.0]])
    status = np.concatenate([status, ["missing"] * gap, ["valid"]])
    return values, status, np.ones(len(values)), load_ranges(load, 100.0)


# The 2,160-hour look-back holds 1,080 range-7 hours, each of 50, 52, ..., 68 108 times: mean 59,
# 90th percentile = 972nd smallest = 66, 95th = 1,026th = 68, maximum 68.
def test_table2_band_95_average_then_p90_at_load_range():
    values, method, _ = substitute_parameter(*table2_case(5, 65.0), NOX)
    assert np.all(values[3000:3005] == pytest.approx(59.0)) and set(method[3000:3005]) == {"sub_avg_load_range"}
    values, method, _ = substitute_parameter(*table2_case(30, 65.0), NOX)
    assert np.all(values[3000:3030] == 66.0) and set(method[3000:3030]) == {"sub_p90_load_range"}


def test_table2_band_90_to_95_and_80_to_90_and_below_80():
    values, method, pma = substitute_parameter(*table2_case(10, 65.0, earlier_missing=200), NOX)
    assert 90 <= pma[3009] < 95
    assert np.all(values[3000:3010] == 68.0) and set(method[3000:3010]) == {"sub_p95_load_range"}
    values, method, pma = substitute_parameter(*table2_case(3, 65.0, earlier_missing=400), NOX)
    assert 80 <= pma[3002] < 90
    assert np.all(values[3000:3003] == 68.0) and set(method[3000:3003]) == {"sub_max_load_range"}
    values, method, pma = substitute_parameter(*table2_case(3, 65.0, earlier_missing=700), NOX)
    assert pma[3002] < 80
    assert np.all(values[3000:3003] == 0.5) and set(method[3000:3003]) == {"sub_max_potential"}


def test_table2_empty_load_range_falls_back_to_higher_range_then_potential():
    # load 45 -> range 5 has no data: next higher range with data is 7 (mean 59)
    values, method, _ = substitute_parameter(*table2_case(3, 45.0), NOX)
    assert np.all(values[3000:3003] == pytest.approx(59.0))
    # load 85 -> range 9: no range >= 9 has data -> maximum potential NOx rate
    values, method, _ = substitute_parameter(*table2_case(3, 85.0), NOX)
    assert np.all(values[3000:3003] == 0.5) and set(method[3000:3003]) == {"sub_max_potential"}


def test_table2_initial_average_of_all_prior_values_at_load_range():
    values, method, _ = substitute_parameter(*table2_case(3, 25.0, history=100), NOX)
    assert np.all(values[100:103] == 10.0) and set(method[100:103]) == {"sub_initial_avg_load_range"}
