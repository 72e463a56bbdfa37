"""Part 75 hourly emissions: vectorized `compute_hourly_emissions` against a row-by-row Python loop.

Raw hours are made from EPA's published Langley Gulch CT1 2018 file (a real gas combined-cycle unit):
its operating time and gross load as published; heat input turned back into stack flow and CO2 (F-15)
and its NOx rate into a dry NOx concentration (F-7b after the wet/dry step), so the numbers have the
shape of a real year. Each unit-year then gets deterministic gaps (3, 12 and 30 operating hours, failed
calibrations, out-of-control hours) in CO2, NOx and flow, so substitution runs at every band it reaches.

The baseline is the same computation written the way a DAHS script would be: one Python loop over the
rows, PMA and look-backs kept in running state, the same equations per row in scalar arithmetic. Both
must agree (checked before timing). Figures:

- `unit_year_vectorized_s`, `unit_year_rows_per_s`: one unit-year (8,760 hours);
- `unit_years_100_vectorized_s`, `unit_years_100_rows_per_s`: 100 unit-years (876,000 hours);
- `vectorized_vs_loop`: vectorized ÷ loop wall time on the 100 unit-years (target <= 0.02); the same
  ratio on one unit-year is printed as `vectorized_vs_loop_unit_year`.

Vectorized times are the best of `--repeat` runs; the loop runs once on the 100 unit-years (it takes
about half a minute) and `--repeat` times on one unit-year.

Run: `python bench/cems.py [--repeat 3]`. Prints one JSON object per figure per line and writes them to
bench/results/cems.jsonl.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from gl_pipelines.cems import equations as eq  # noqa: E402
from gl_pipelines.cems.emissions import compute_hourly_emissions  # noqa: E402
from gl_pipelines.cems.epa_campd import read_epa_hourly  # noqa: E402
from gl_pipelines.cems.schema import EMISSIONS_COLUMNS, RAW_COLUMNS, validate_raw_frame  # noqa: E402
from gl_pipelines.config import CemsUnit  # noqa: E402

LANGLEY = Path(__file__).resolve().parents[2] / "shared" / "data" / "epa" / "langley_gulch_57028_CT1_2018_hourly.csv"
CO2_WET_PCT = 3.6
MOISTURE_PCT = 8.0


def unit_config(unit_id: str) -> CemsUnit:
    return CemsUnit(
        unit_id=unit_id,
        fuel="natural_gas",
        moisture_default_pct=MOISTURE_PCT,
        so2_method="default_rate",
        so2_default_rate_lb_mmbtu=0.0006,
        co2_basis="wet",
        nox_basis="dry",
        co2_mpc_pct=6.0,
        nox_mpc_ppm=60.0,
        nox_mer_lb_mmbtu=0.3,
        flow_mpf_scfh=9.0e7,
        max_load_mw=330.0,
    )


def base_year() -> pd.DataFrame:
    """One unit-year of raw-like hours from the EPA file (no gaps yet)."""
    epa = read_epa_hourly(LANGLEY)
    op = epa["op_time"].to_numpy()
    heat_rate = np.where(op > 0, epa["heat_input_mmbtu"].fillna(0).to_numpy() / np.where(op > 0, op, 1), 0.0)
    load = epa["gross_load_mw"].to_numpy()
    co2 = CO2_WET_PCT + 0.3 * np.sin(np.arange(len(epa)) / 37.0)
    flow = heat_rate * 1040.0 * 100.0 / co2  # F-15 solved for Q
    nox_rate = epa["nox_rate_lb_mmbtu"].fillna(0).to_numpy()
    nox_wet = nox_rate * co2 / (eq.K_NOX_LB_PER_SCF_PPM * 1040.0 * 100.0)  # F-7b solved for C_w
    nox_dry = nox_wet / (1 - MOISTURE_PCT / 100)
    operating = op > 0
    frame = pd.DataFrame(
        {
            "hour_start_utc": epa["hour_start_utc"],
            "hour_start_lst": epa["hour_start_lst"],
            "op_time": op,
            "gross_load_mw": np.where(operating, load, np.nan),
            "stack_flow_scfh": np.where(operating, flow, np.nan),
            "co2_pct": np.where(operating, co2, np.nan),
            "o2_pct": np.nan,
            "so2_ppm": np.nan,
            "nox_ppm": np.where(operating, nox_dry, np.nan),
            "nox_rate_lb_mmbtu": np.nan,
            "moisture_pct": np.nan,
            "so2_status": "missing",
            "co2_status": np.where(operating, "valid", "missing"),
            "o2_status": "missing",
            "nox_status": np.where(operating, "valid", "missing"),
            "flow_status": np.where(operating, "valid", "missing"),
            "moisture_status": "missing",
            "source": "bench",
        }
    )
    return frame


def unit_years(base: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` units sharing the base year, each with its own deterministic gaps."""
    frames = []
    hours = len(base)
    for unit in range(count):
        frame = base.copy()
        frame.insert(0, "unit_id", f"U{unit:03d}")
        frame["source_ref"] = [f"U{unit:03d}:{i}" for i in range(hours)]
        for k, (value, status) in enumerate(
            (("co2_pct", "co2_status"), ("nox_ppm", "nox_status"), ("stack_flow_scfh", "flow_status"))
        ):
            starts = np.arange(200 + 37 * unit + 101 * k, hours - 40, 480)
            lengths = np.array([3, 12, 30])[np.arange(len(starts)) % 3]
            labels = np.array(["missing", "calibration_failed", "out_of_control"])[np.arange(len(starts)) % 3]
            for start, length, label in zip(starts, lengths, labels, strict=True):
                rows = slice(start, start + length)
                frame.iloc[rows, frame.columns.get_loc(status)] = label
                frame.iloc[rows, frame.columns.get_loc(value)] = np.nan
        frames.append(frame[RAW_COLUMNS])
    return validate_raw_frame(pd.concat(frames, ignore_index=True), "bench")


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(percent * len(ordered) / 100 - 1e-9), 1) - 1]


class _Parameter:
    """Running state of one parameter in the loop baseline."""

    def __init__(self, lookback: int, load_based: bool, potential: float):
        self.lookback, self.load_based, self.potential = lookback, load_based, potential
        self.window: deque[int] = deque()
        self.qa_in_window = 0
        self.qa_values: list[float] = []
        self.qa_ranges: list[int] = []
        self.last_value = math.nan
        self.gap: dict | None = None
        self.pma_last = math.nan

    def pma(self, qa: bool) -> float:
        self.window.append(int(qa))
        self.qa_in_window += int(qa)
        if len(self.window) > 8760:
            self.qa_in_window -= self.window.popleft()
        return 100.0 * self.qa_in_window / len(self.window)

    def range_value(self, values, ranges, load_range, statistic):
        for candidate in range(load_range, 11):
            chosen = [v for v, r in zip(values, ranges, strict=True) if r == candidate]
            if chosen:
                return statistic(chosen)
        return None

    def substitute(self, pma: float, load_range: int) -> tuple[float, str]:
        gap = self.gap
        length, before, after = gap["length"], gap["before"], gap["after"]
        prior = self.qa_values
        if not self.load_based:
            if not prior:
                return self.potential, "sub_max_potential"
            around = before if math.isnan(after) else (before + after) / 2
            around_method = "sub_hour_before" if math.isnan(after) else "sub_avg_before_after"
            if len(prior) < self.lookback:
                return around, "sub_initial_" + around_method[4:]
            lookback = prior[-self.lookback :]
            if pma >= 95.0:
                if length <= 24:
                    return around, around_method
                p90 = _percentile(lookback, 90)
                return (p90, "sub_p90_lookback") if p90 >= around else (around, around_method)
            if pma >= 90.0:
                if length <= 8:
                    return around, around_method
                p95 = _percentile(lookback, 95)
                return (p95, "sub_p95_lookback") if p95 >= around else (around, around_method)
            if pma >= 80.0:
                return max(lookback), "sub_max_lookback"
            return self.potential, "sub_max_potential"
        if len(prior) < self.lookback:
            value = self.range_value(prior, self.qa_ranges, load_range, lambda v: sum(v) / len(v))
            return (value, "sub_initial_avg_load_range") if value is not None else (self.potential, "sub_max_potential")
        lookback, ranges = prior[-self.lookback :], self.qa_ranges[-self.lookback :]
        if pma >= 95.0 and length <= 24 or 90.0 <= pma < 95.0 and length <= 8:
            value, method = (
                self.range_value(lookback, ranges, load_range, lambda v: sum(v) / len(v)),
                "sub_avg_load_range",
            )
        elif pma >= 95.0:
            value, method = (
                self.range_value(lookback, ranges, load_range, lambda v: _percentile(v, 90)),
                "sub_p90_load_range",
            )
        elif pma >= 90.0:
            value, method = (
                self.range_value(lookback, ranges, load_range, lambda v: _percentile(v, 95)),
                "sub_p95_load_range",
            )
        elif pma >= 80.0:
            value, method = self.range_value(lookback, ranges, load_range, max), "sub_max_load_range"
        else:
            value = None
        return (value, method) if value is not None else (self.potential, "sub_max_potential")


def loop_emissions(raw: pd.DataFrame, units: dict[str, CemsUnit]) -> pd.DataFrame:
    """The baseline: every hour in a Python loop (this bench's unit configuration: CO2 heat input, dry
    NOx ppm with wet CO2 diluent, App. D SO2, default moisture)."""
    records = raw.to_dict("records")
    out = []
    by_unit: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_unit.setdefault(record["unit_id"], []).append(index)
    for unit_id, indexes in by_unit.items():
        unit = units[unit_id]
        params = {
            "co2": (_Parameter(720, False, unit.co2_mpc_pct), "co2_pct", "co2_status"),
            "nox": (_Parameter(2160, True, unit.nox_mpc_ppm), "nox_ppm", "nox_status"),
            "flow": (_Parameter(2160, True, unit.flow_mpf_scfh), "stack_flow_scfh", "flow_status"),
        }
        rows = [records[i] for i in indexes]
        for position, row in enumerate(rows):
            result = dict(row)
            op = row["op_time"]
            load = row["gross_load_mw"]
            load_range = 10 if math.isnan(load) else min(max(math.ceil(load / unit.max_load_mw * 10), 1), 10)
            values = {}
            for name, (state, value_column, status_column) in params.items():
                if op <= 0:
                    result[f"{name}_method"] = "not_operating"
                    result[f"pma_{name}"] = state.pma_last
                    values[name] = math.nan
                    continue
                value = row[value_column]
                qa = row[status_column] == "valid" and not math.isnan(value)
                pma = state.pma(qa)
                state.pma_last = pma
                if qa:
                    state.gap = None
                    values[name], method = value, "measured"
                    state.qa_values.append(value)
                    state.qa_ranges.append(load_range)
                    state.last_value = value
                else:
                    if state.gap is None:
                        length, after = 0, math.nan
                        for later in rows[position:]:
                            if later["op_time"] <= 0:
                                continue
                            later_value = later[value_column]
                            if later[status_column] == "valid" and not math.isnan(later_value):
                                after = later_value
                                break
                            length += 1
                        state.gap = {"length": length, "before": state.last_value, "after": after}
                    values[name], method = state.substitute(pma, load_range)
                result[f"{name}_method"], result[f"pma_{name}"] = method, pma
            if op > 0:
                flow, co2 = values["flow"], values["co2"]
                heat = flow * co2 / 100.0 / unit.fc_factor
                nox_wet = values["nox"] * (100.0 - MOISTURE_PCT) / 100.0
                nox_rate = eq.K_NOX_LB_PER_SCF_PPM * nox_wet * unit.fc_factor * 100.0 / co2
                result.update(
                    heat_input_mmbtu=heat * op,
                    co2_mass_tons=eq.K_CO2_TONS_PER_SCF_PCT * co2 * flow * op,
                    so2_mass_lb=unit.so2_default_rate_lb_mmbtu * heat * op,
                    nox_mass_lb=nox_rate * heat * op,
                    nox_rate_lb_mmbtu=nox_rate,
                )
            else:
                result.update(
                    heat_input_mmbtu=0.0,
                    co2_mass_tons=0.0,
                    so2_mass_lb=0.0,
                    nox_mass_lb=0.0,
                    nox_rate_lb_mmbtu=math.nan,
                )
            out.append(result)
    return pd.DataFrame(out)


def check_agreement(vectorized: pd.DataFrame, loop: pd.DataFrame) -> None:
    for column in ("heat_input_mmbtu", "co2_mass_tons", "so2_mass_lb", "nox_mass_lb"):
        if not np.allclose(vectorized[column].to_numpy(), loop[column].to_numpy(), rtol=1e-9, atol=1e-9):
            raise SystemExit(f"vectorized and loop disagree on {column}")
    for name in ("co2", "nox", "flow"):
        if not (vectorized[f"{name}_method"].to_numpy() == loop[f"{name}_method"].to_numpy()).all():
            raise SystemExit(f"vectorized and loop disagree on {name}_method")


def best_of(repeat: int, function, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each timing (best is kept)")
    parser.add_argument("--unit-years", type=int, default=100, help="size of the large case")
    args = parser.parse_args()
    base = base_year()
    figures = []
    ratios = {}
    for count in (1, args.unit_years):
        raw = unit_years(base, count)
        units = {f"U{u:03d}": unit_config(f"U{u:03d}") for u in range(count)}
        vectorized_s, vectorized = best_of(args.repeat, compute_hourly_emissions, raw, units)
        loop_s, loop = best_of(1 if count > 1 else args.repeat, loop_emissions, raw, units)
        check_agreement(vectorized, loop)
        substituted = int(sum(vectorized[f"{p}_method"].str.startswith("sub_").sum() for p in ("co2", "nox", "flow")))
        label = "unit_year" if count == 1 else f"unit_years_{count}"
        figures += [
            {
                "figure": f"{label}_vectorized_s",
                "value": round(vectorized_s, 4),
                "unit": "s",
                "rows": len(raw),
                "substituted_values": substituted,
                "columns": len(EMISSIONS_COLUMNS),
            },
            {"figure": f"{label}_rows_per_s", "value": round(len(raw) / vectorized_s), "unit": "rows/s"},
            {"figure": f"{label}_loop_s", "value": round(loop_s, 4), "unit": "s", "rows": len(raw)},
        ]
        ratios[count] = vectorized_s / loop_s
    figures.append(
        {
            "figure": "vectorized_vs_loop",
            "value": round(ratios[args.unit_years], 4),
            "unit": "ratio",
            "target": "<= 0.02",
            "rows": 8_760 * args.unit_years,
        }
    )
    figures.append(
        {"figure": "vectorized_vs_loop_unit_year", "value": round(ratios[1], 4), "unit": "ratio", "rows": 8_760}
    )
    emit("cems", figures)


if __name__ == "__main__":
    main()
