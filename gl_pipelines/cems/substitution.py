"""Percent monitor data availability (§75.32) and standard missing-data substitution (§75.31, §75.33-§75.37).

Works on many units at once: rows sorted by unit, then hour (history first). A parameter's hour is
quality-assured when the unit operated, the status is "valid" and a value is present; any other
operating hour is missing (calibration failures and out-of-control periods included). Non-operating
hours are neither: the regulation counts, looks back over and bridges gaps through unit operating
hours only, and never across units.

Rules implemented (PMA computed hourly, including the hour being filled):
- Table 1 parameters (SO2 §75.33(b), CO2 §75.35, O2 for heat input §75.36, moisture §75.37), look-back 720
  quality-assured monitor operating hours:
  PMA >= 95: gap <= 24 h: average of the hour before and after; longer: the greater of that and the 90th
  percentile of the look-back. 90 <= PMA < 95: gap <= 8 h: average before/after; longer: greater of that
  and the 95th percentile. 80 <= PMA < 90: look-back maximum. PMA < 80: maximum potential value.
  For O2 and moisture, where a lower value is the conservative one, the mirror image (10th/5th percentile,
  minimum, minimum potential, "lesser of").
- Table 2 parameters (NOx, flow; §75.33(c)), look-back 2,160 hours, values taken at the hour's load range
  (App. C: ten ranges of 10 % of the maximum hourly gross load; a range without data falls back to the
  next higher range with data, then to the maximum potential value):
  PMA >= 95: gap <= 24 h: load-range average; longer: load-range 90th percentile. 90 <= PMA < 95: gap
  <= 8 h: load-range average; longer: 95th percentile. 80 <= PMA < 90: load-range maximum. PMA < 80:
  maximum potential.
- Before the first 720 (Table 1) or 2,160 (Table 2) quality-assured hours, the initial procedures of
  §75.31: average of the hour before and after (Table 1) or the average of all prior values at the load
  range (Table 2); with no prior quality-assured value at all, the maximum potential value.
- A gap still open at the end of the data has no hour after: the hour before stands in for the average.
Percentiles are nearest-rank (the smallest value with at least p % of the values at or below it).

Everything is vectorized across units and gaps; the only Python loop is over the ten load ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gl_pipelines.cems.schema import METHOD_MEASURED, PARAMETERS, STATUS_VALID
from gl_pipelines.config import CemsUnit

PMA_WINDOW_HOURS = 8_760
LOAD_RANGES = 10
NOT_OPERATING = "not_operating"
NOT_USED = "not_used"
# Parameters computed without a monitor, named by how they are obtained instead.
_UNMONITORED_LABELS = {
    ("so2", "default_rate"): "default_rate",
    ("so2", "appendix_d"): "appendix_d",
    ("moisture", "default"): "default_value",
}


@dataclass(frozen=True)
class ParameterRule:
    """How one parameter's missing hours are filled (the potential value may differ per unit)."""

    name: str
    lookback_hours: int
    load_based: bool
    high_is_conservative: bool
    potential_value: float = np.nan


RULES = {
    "so2": ParameterRule("so2", 720, False, True),
    "co2": ParameterRule("co2", 720, False, True),
    "o2": ParameterRule("o2", 720, False, False),
    "moisture": ParameterRule("moisture", 720, False, False),
    "nox": ParameterRule("nox", 2_160, True, True),
    "flow": ParameterRule("flow", 2_160, True, True),
}


def potential_values(unit: CemsUnit) -> dict[str, float]:
    """Maximum (minimum for O2 and moisture) potential value of every parameter the unit's equations
    use; a parameter missing here is not used by the unit and is not substituted. An Appendix D unit
    takes heat input, SO2 and CO2 from its fuel flow: its stack flow is not used, and its CO2 or O2 only
    as the diluent of a NOx concentration."""
    values: dict[str, float] = {}
    diluent_needed = unit.appendix_d is None or unit.nox_method == "ppm"
    if unit.appendix_d is None:
        values["flow"] = float(unit.flow_mpf_scfh)
    if diluent_needed and (unit.appendix_d is None or unit.heat_input_method == "co2"):
        values["co2"] = unit.co2_mpc_pct
    if unit.so2_method == "cems":
        values["so2"] = float(unit.so2_mpc_ppm)
    values["nox"] = unit.nox_mer_lb_mmbtu if unit.nox_method == "rate" else float(unit.nox_mpc_ppm)
    if diluent_needed and unit.heat_input_method == "o2":
        values["o2"] = unit.o2_min_pct
    if unit.moisture_method == "measured":
        values["moisture"] = 0.0
    return values


def load_ranges(gross_load_mw: np.ndarray, max_load_mw) -> np.ndarray:
    """App. C load range 1..10 (each 10 % of the maximum hourly gross load); unknown load -> range 10."""
    load = np.asarray(gross_load_mw, dtype="float64")
    ranges = np.ceil(load / np.asarray(max_load_mw, dtype="float64") * LOAD_RANGES)
    ranges = np.where(np.isnan(ranges), LOAD_RANGES, ranges)
    return np.clip(ranges, 1, LOAD_RANGES).astype(np.int64)


def _unit_bounds(unit_code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: is it its unit's first row, its last row, and the index of its unit's first row."""
    index = np.arange(len(unit_code))
    change = unit_code[1:] != unit_code[:-1]
    first = np.concatenate(([True], change))
    last = np.concatenate((change, [True]))
    return first, last, np.maximum.accumulate(np.where(first, index, 0))


def _pma(qa: np.ndarray, unit_start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """§75.32 PMA over operating hours (Eq. 8, then Eq. 9 past 8,760 hours), with the QA counts it used."""
    index = np.arange(len(qa))
    qa_through = np.cumsum(qa)
    qa_before = qa_through - qa
    unit_base = qa_before[unit_start]
    position = index - unit_start
    dropped = np.where(position >= PMA_WINDOW_HOURS, qa_through[np.maximum(index - PMA_WINDOW_HOURS, 0)] - unit_base, 0)
    pma = 100.0 * (qa_through - unit_base - dropped) / np.minimum(position + 1, PMA_WINDOW_HOURS)
    return pma, qa_before, unit_base


def percent_monitor_data_availability(
    operating: np.ndarray, quality_assured: np.ndarray, unit_code: np.ndarray | None = None
) -> np.ndarray:
    """§75.32 PMA for every hour, in percent; non-operating hours carry their unit's last operating
    hour's value, NaN before the unit's first operating hour."""
    operating = np.asarray(operating, dtype=bool)
    unit_code = np.zeros(len(operating), np.int64) if unit_code is None else np.asarray(unit_code)
    rows = np.flatnonzero(operating)
    out = np.full(len(operating), np.nan)
    if len(rows):
        _, _, start = _unit_bounds(unit_code[rows])
        out[rows] = _pma(np.asarray(quality_assured, dtype=bool)[rows], start)[0]
    return _carry_forward(out, operating, unit_code)


def _carry_forward(values: np.ndarray, operating: np.ndarray, unit_code: np.ndarray) -> np.ndarray:
    """Each non-operating row takes its unit's last operating row's value (NaN before the first)."""
    _, _, row_start = _unit_bounds(unit_code)
    last_operating = np.maximum.accumulate(np.where(operating, np.arange(len(operating)), -1))
    carried = (last_operating >= row_start) & (last_operating >= 0)
    return np.where(carried, values[np.maximum(last_operating, 0)], np.nan)


def _labels(operating: np.ndarray, label: str) -> np.ndarray:
    """`label` on operating hours, `not_operating` elsewhere (object array, no string conversion)."""
    return np.array([label, NOT_OPERATING], dtype=object)[(~operating).view(np.int8)]


def _nearest_rank(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, percent: float) -> np.ndarray:
    """Nearest-rank `percent` percentile of each window values[start:start+count] (NaN when empty).

    The wanted element is the m-th from the near end (m small: 10 % of a window for the 90th
    percentile), so each window is partitioned once around the largest m and only that head sorted.
    """
    out = np.full(len(counts), np.nan)
    rows = np.flatnonzero(counts > 0)
    if len(rows) == 0:
        return out
    starts, counts = starts[rows], counts[rows]
    rank = np.maximum(np.ceil(percent * counts / 100.0 - 1e-9).astype(np.int64), 1) - 1
    flip = percent > 50
    if flip:  # a high rank of the values is a low rank of their negatives
        values, rank = -values, counts - 1 - rank
    width = int(counts.max())
    padded = np.concatenate([values, np.full(width, np.inf)])
    matrix = np.lib.stride_tricks.sliding_window_view(padded, width)[starts]
    short = counts < width
    if short.any():
        matrix[short] = np.where(np.arange(width)[None, :] < counts[short, None], matrix[short], np.inf)
    head = int(rank.max()) + 1
    if head < width:
        matrix = np.partition(matrix, head - 1, axis=1)[:, :head]
    picked = np.sort(matrix, axis=1)[np.arange(len(rank)), rank]
    out[rows] = -picked if flip else picked
    return out


@dataclass
class _Gaps:
    """Missing-data periods of one parameter in operating-hour space."""

    hours: np.ndarray  # operating-hour index of each missing hour
    gap: np.ndarray  # gap number of each missing hour
    length: np.ndarray  # per gap
    before: np.ndarray
    after: np.ndarray
    window_end: np.ndarray  # per gap: QA values before the gap (exclusive end in QA space)
    unit_qa_start: np.ndarray  # per gap: first QA value of the gap's unit


def _find_gaps(v, qa, first, last, qa_before, unit_base) -> _Gaps:
    missing = ~qa
    previous_missing = np.concatenate(([False], missing[:-1])) & ~first
    next_missing = np.concatenate((missing[1:], [False])) & ~last
    starts = np.flatnonzero(missing & ~previous_missing)
    ends = np.flatnonzero(missing & ~next_missing)
    hours = np.flatnonzero(missing)
    before = np.where(first[starts], np.nan, v[np.maximum(starts - 1, 0)])
    after = np.where(last[ends], np.nan, v[np.minimum(ends + 1, len(v) - 1)])
    return _Gaps(
        hours=hours,
        gap=np.cumsum(missing & ~previous_missing)[hours] - 1,
        length=ends - starts + 1,
        before=before,
        after=after,
        window_end=qa_before[starts],
        unit_qa_start=unit_base[starts],
    )


def _fill_table1(rule, gaps, qa_values, pma, potential):
    """Values and methods for the missing hours of a Table 1 parameter."""
    high = rule.high_is_conservative
    lookback = rule.lookback_hours
    prior = gaps.window_end - gaps.unit_qa_start
    around = np.where(np.isnan(gaps.after), gaps.before, (gaps.before + gaps.after) / 2.0)
    open_gap = np.isnan(gaps.after)
    around_code = np.where(open_gap, "sub_hour_before", "sub_avg_before_after").astype(object)
    initial_code = np.where(open_gap, "sub_initial_hour_before", "sub_initial_avg_before_after").astype(object)
    standard = prior >= lookback
    g, band_pma, length = gaps.gap, pma[gaps.hours], gaps.length[gaps.gap]
    p1, p2 = (90, 95) if high else (10, 5)
    is_standard = standard[g]
    band1, band2 = band_pma >= 95.0, (band_pma >= 90.0) & (band_pma < 95.0)
    band3 = is_standard & (band_pma >= 80.0) & (band_pma < 90.0)

    def statistic(hour_mask, percent):
        """Look-back percentile for the gaps that have an hour in `hour_mask` (NaN for the others)."""
        wanted = np.zeros(len(prior), dtype=bool)
        wanted[g[hour_mask]] = True
        counts = np.where(wanted, lookback, 0)
        return _nearest_rank(qa_values, gaps.window_end - counts, counts, percent)

    stat1 = statistic(is_standard & band1 & (length > 24), p1)
    stat2 = statistic(is_standard & band2 & (length > 8), p2)
    extreme = statistic(band3, 100 if high else 1e-9)
    value = np.full(len(g), np.nan)
    code = np.empty(len(g), dtype=object)
    initial = ~is_standard & (prior[g] > 0)
    value[initial] = around[g][initial]
    code[initial] = initial_code[g][initial]
    for band, limit, stat, p in ((band1, 24, stat1, p1), (band2, 8, stat2, p2)):
        short = is_standard & band & (length <= limit)
        value[short], code[short] = around[g][short], around_code[g][short]
        long = is_standard & band & (length > limit)
        chosen = stat[g][long]
        other = around[g][long]
        percentile_wins = chosen >= other if high else chosen <= other
        value[long] = np.where(percentile_wins, chosen, other)
        code[long] = np.where(percentile_wins, f"sub_p{p}_lookback", around_code[g][long])
    value[band3], code[band3] = extreme[g][band3], f"sub_{'max' if high else 'min'}_lookback"
    use_potential = (prior[g] == 0) | (is_standard & (band_pma < 80.0))
    value[use_potential], code[use_potential] = potential[use_potential], f"sub_{'max' if high else 'min'}_potential"
    return value, code


def _fill_table2(rule, gaps, qa_values, qa_ranges, hour_ranges, pma, potential):
    """Values and methods for the missing hours of a load-based (Table 2) parameter."""
    lookback = rule.lookback_hours
    prior = gaps.window_end - gaps.unit_qa_start
    standard = prior >= lookback
    window_start = np.where(standard, gaps.window_end - lookback, gaps.unit_qa_start)
    n_gaps = len(gaps.length)
    counts = np.zeros((n_gaps, LOAD_RANGES + 2), dtype=np.int64)
    by_range = {}
    for load_range in range(1, LOAD_RANGES + 1):
        in_range = qa_ranges == load_range
        cumulative = np.concatenate(([0], np.cumsum(in_range)))
        start, end = cumulative[window_start], cumulative[gaps.window_end]
        counts[:, load_range] = end - start
        range_values = qa_values[in_range]
        by_range[load_range] = (start, range_values, np.concatenate(([0.0], np.cumsum(range_values))))
    # the hour's load range, or the next higher one holding data (0: none)
    chosen = np.zeros((n_gaps, LOAD_RANGES + 2), dtype=np.int64)
    for load_range in range(LOAD_RANGES, 0, -1):
        chosen[:, load_range] = np.where(counts[:, load_range] > 0, load_range, chosen[:, load_range + 1])

    g, band_pma, length = gaps.gap, pma[gaps.hours], gaps.length[gaps.gap]
    hour_range = chosen[g, hour_ranges]
    is_standard = standard[g]
    short = (
        (~is_standard)
        | ((band_pma >= 95.0) & (length <= 24))
        | ((band_pma >= 90.0) & (band_pma < 95.0) & (length <= 8))
    )
    p90 = is_standard & (band_pma >= 95.0) & (length > 24)
    p95 = is_standard & (band_pma >= 90.0) & (band_pma < 95.0) & (length > 8)
    band3 = is_standard & (band_pma >= 80.0) & (band_pma < 90.0)
    value = np.full(len(g), np.nan)
    code = np.empty(len(g), dtype=object)
    for load_range in np.unique(hour_range[hour_range > 0]):
        start, range_values, prefix = by_range[int(load_range)]
        here = hour_range == load_range
        gap_start, gap_count = start[g[here]], counts[g[here], load_range]
        mean = (prefix[gap_start + gap_count] - prefix[gap_start]) / gap_count
        sub_value, sub_code = np.full(here.sum(), np.nan), np.empty(here.sum(), dtype=object)
        sel = short[here]
        sub_value[sel] = mean[sel]
        sub_code[sel] = np.where(is_standard[here][sel], "sub_avg_load_range", "sub_initial_avg_load_range")
        for mask, percent, label in (
            (p90, 90, "sub_p90_load_range"),
            (p95, 95, "sub_p95_load_range"),
            (band3, 100, "sub_max_load_range"),
        ):
            pick = mask[here]
            if pick.any():  # one window per gap, shared by the gap's hours
                _, first_hour, hour_gap = np.unique(g[here][pick], return_index=True, return_inverse=True)
                ranks = _nearest_rank(range_values, gap_start[pick][first_hour], gap_count[pick][first_hour], percent)
                sub_value[pick], sub_code[pick] = ranks[hour_gap], label
        value[here], code[here] = sub_value, sub_code
    use_potential = np.isnan(value)
    value[use_potential], code[use_potential] = potential[use_potential], "sub_max_potential"
    return value, code


def substitute(
    value: np.ndarray,
    valid: np.ndarray,
    operating: np.ndarray,
    unit_code: np.ndarray,
    load_range: np.ndarray,
    potential: np.ndarray,
    rule: ParameterRule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by unit then hour -> (values to use, method per hour, PMA per hour).

    `valid` is the status test (status == "valid"); `potential` the per-row potential value.
    """
    value = np.asarray(value, dtype="float64")
    operating = np.asarray(operating, dtype=bool)
    unit_code = np.asarray(unit_code)
    out = np.where(operating, value, np.nan)
    method = _labels(operating, METHOD_MEASURED)
    rows = np.flatnonzero(operating)
    pma_rows = np.full(len(value), np.nan)
    if len(rows):
        v = value[rows]
        qa = np.asarray(valid, dtype=bool)[rows] & ~np.isnan(v)
        first, last, unit_start = _unit_bounds(unit_code[rows])
        pma, qa_before, unit_base = _pma(qa, unit_start)
        pma_rows[rows] = pma
        gaps = _find_gaps(v, qa, first, last, qa_before, unit_base)
        if len(gaps.hours):
            hours_potential = np.asarray(potential, dtype="float64")[rows][gaps.hours]
            if rule.load_based:
                ranges = np.asarray(load_range)[rows]
                filled, codes = _fill_table2(rule, gaps, v[qa], ranges[qa], ranges[gaps.hours], pma, hours_potential)
            else:
                filled, codes = _fill_table1(rule, gaps, v[qa], pma, hours_potential)
            out[rows[gaps.hours]] = filled
            method[rows[gaps.hours]] = codes
    return out, method, _carry_forward(pma_rows, operating, unit_code)


def substitute_parameter(value, status, op_time, load_range, rule: ParameterRule):
    """One unit, one parameter, hours in time order -> (values used, method per hour, PMA per hour)."""
    value = np.asarray(value, dtype="float64")
    return substitute(
        value,
        np.asarray(status) == STATUS_VALID,
        np.asarray(op_time, dtype="float64") > 0,
        np.zeros(len(value), dtype=np.int64),
        load_range,
        np.full(len(value), rule.potential_value),
        rule,
    )


def substitute_units(hours: pd.DataFrame, units: dict[str, CemsUnit], unit_code: np.ndarray) -> dict[str, np.ndarray]:
    """Substitute every parameter for rows of many units (sorted by unit then hour).

    Returns arrays for the value columns (the values to use), `<param>_method` and `pma_<param>`.
    A parameter a unit does not use gets `not_used` (or how it is obtained: `default_rate`,
    `default_value`) and PMA NaN on that unit's rows.
    """
    unit_ids = list(pd.unique(hours["unit_id"]))
    configs = [units[u] for u in unit_ids]
    op_time = hours["op_time"].to_numpy()
    operating = op_time > 0
    max_load = np.array([c.max_load_mw for c in configs])[unit_code]
    ranges = load_ranges(hours["gross_load_mw"].to_numpy(), max_load)
    columns: dict[str, np.ndarray] = {}
    for name, (value_column, status_column) in PARAMETERS.items():
        potentials = np.array([potential_values(c).get(name, np.nan) for c in configs])[unit_code]
        used = np.array([name in potential_values(c) for c in configs])[unit_code]
        labels = np.array(
            [_UNMONITORED_LABELS.get((name, getattr(c, f"{name}_method", None)), NOT_USED) for c in configs],
            dtype=object,
        )
        if name == "nox":
            uses_rate = np.array([c.nox_method == "rate" for c in configs])[unit_code]
            value = np.where(uses_rate, hours["nox_rate_lb_mmbtu"].to_numpy(), hours["nox_ppm"].to_numpy())
        else:
            value = hours[value_column].to_numpy()
        if used.any():
            valid = hours[status_column].to_numpy() == STATUS_VALID
            filled, method, pma = substitute(value, valid & used, operating, unit_code, ranges, potentials, RULES[name])
        else:
            filled, method = value, _labels(operating, METHOD_MEASURED)
            pma = np.full(len(value), np.nan)
        unused_rows = ~used & operating
        if unused_rows.any():
            method[unused_rows] = labels[unit_code[unused_rows]]
        filled = np.where(used, filled, value)
        pma = np.where(used, pma, np.nan)
        if name == "nox":
            columns["nox_rate_lb_mmbtu"] = np.where(uses_rate, filled, hours["nox_rate_lb_mmbtu"].to_numpy())
            columns["nox_ppm"] = np.where(uses_rate, hours["nox_ppm"].to_numpy(), filled)
        else:
            columns[value_column] = filled
        columns[f"{name}_method"], columns[f"pma_{name}"] = method, pma
    return columns
