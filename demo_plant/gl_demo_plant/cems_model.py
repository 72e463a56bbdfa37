"""Demo plant, CEMS: the hourly values the demo boiler's stack monitors report.

The stack gas is derived from the fuel the OPC UA server reports (`plant_model`), so the CEMS
and a fuel-based CO2 estimate agree and a reconciliation closes. Per hour:

- fuel: the hourly mean of the served `Boiler1.FuelGasFlow` samples (m3/h, standard conditions);
- heat input HI = fuel x HHV (plant model: 0.0378 GJ/m3, about 1,015 Btu/scf);
- CO2 volume = Fc x HI with Fc = 1,040 scf CO2/mmBtu and dry flue gas = Fd x HI x 20.9/(20.9 - O2)
  with Fd = 8,710 dscf/mmBtu, plus combustion water (Fw - Fd) x HI with Fw = 10,610 wscf/mmBtu
  (Part 75 Appendix F Table 1, natural gas);
- stack flow (wet scfh) = dry flue gas + water, CO2 % (wet) = CO2 volume / stack flow, so
  F-11 (5.7e-7 x CO2% x flow) gives back Fc x HI x 5.7e-5 tons: the fuel-based CO2;
- O2 (dry) = the hourly mean of `Boiler1.FlueGasO2`, NOx and SO2 from emission rates typical of a
  low-NOx gas boiler (0.04-0.06 lb NOx/mmBtu; 0.0006 lb SO2/mmBtu, the pipeline-gas default).

Analyzers add a small deterministic noise (+-0.3 %), so CEMS CO2 matches fuel CO2 within 1 %.
Faults (missing values, failed calibrations, out-of-control hours, dropped hours) are injected per
hour and parameter; `demo_faults` gives the default set the demo shows every day.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from gl_demo_plant.plant_model import DEFAULT_SEED, PROCESS_TAGS, SAMPLE_INTERVAL_S, _unit_noise
from gl_pipelines.reporting.units import registry

_UREG = registry()
GAS_HHV_GJ_PER_M3 = 0.0378
"""The plant model's natural-gas HHV (see GAS_M3_PER_T_STEAM there)."""
MMBTU_PER_M3_GAS = float((GAS_HHV_GJ_PER_M3 * _UREG.GJ).to("mmBtu").magnitude)
SCF_PER_M3 = float((1 * _UREG.m**3).to("ft**3").magnitude)
FC_NATURAL_GAS = 1_040.0  # scf CO2/mmBtu, Part 75 App. F Table 1
FD_NATURAL_GAS = 8_710.0  # dscf/mmBtu
FW_NATURAL_GAS = 10_610.0  # wscf/mmBtu
CO2_TONS_PER_SCF = 5.7e-7 * 100  # F-11's K (tons/scf/%CO2) times 100 %: tons per scf of CO2
SO2_RATE_LB_MMBTU = 0.0006
SO2_K = 1.660e-7  # lb/scf/ppm, F-1
NOX_K = 1.194e-7  # lb/dscf/ppm, F-5
MW_PER_T_STEAM = 0.2
"""The boiler drives a small back-pressure turbine-generator: gross load follows steam flow."""
ANALYZER_NOISE = 0.003

PARAMETERS = ("so2", "co2", "o2", "nox", "flow", "moisture")
_TAGS = {tag.name: tag for tag in PROCESS_TAGS}


@dataclass(frozen=True)
class CemsFaults:
    """Per hour (UTC hour start) the parameters that are missing, failed calibration or out of control;
    and hours with no record at all (the DAHS was down)."""

    missing: dict[datetime, tuple[str, ...]] = field(default_factory=dict)
    calibration_failed: dict[datetime, tuple[str, ...]] = field(default_factory=dict)
    out_of_control: dict[datetime, tuple[str, ...]] = field(default_factory=dict)
    dropped_hours: frozenset[datetime] = frozenset()


def hour_starts(start: datetime, end: datetime) -> list[datetime]:
    """UTC hour starts in [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    hours, hour = [], first
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _hourly_mean(tag: str, hours: list[datetime], seed: int) -> np.ndarray:
    """Mean of the samples the OPC UA server serves for `tag` in each hour (360 samples of 10 s)."""
    epoch = np.array([int(h.timestamp()) for h in hours], dtype=np.int64)
    times = epoch[:, None] + np.arange(0, 3600, SAMPLE_INTERVAL_S, dtype=np.int64)[None, :]
    return _TAGS[tag].values(times, seed).mean(axis=1) if len(hours) else np.zeros(0)


def fuel_heat_input_mmbtu(hours: list[datetime], seed: int = DEFAULT_SEED) -> np.ndarray:
    """Heat input per hour from the served fuel flow: m3/h x HHV."""
    return _hourly_mean("Boiler1.FuelGasFlow", hours, seed) * MMBTU_PER_M3_GAS


def fuel_co2_tons(hours: list[datetime], seed: int = DEFAULT_SEED) -> np.ndarray:
    """Fuel-based CO2 per hour (Part 75 App. G G-4 form: Fc x HI x 44/385/2000 tons)."""
    return FC_NATURAL_GAS * fuel_heat_input_mmbtu(hours, seed) * 44.0 / 385.0 / 2000.0


def _noise(name: str, epoch: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic analyzer noise factor in [1 - ANALYZER_NOISE, 1 + ANALYZER_NOISE)."""
    return 1.0 + ANALYZER_NOISE * (2.0 * _unit_noise(zlib.crc32(name.encode()), epoch, seed) - 1.0)


def hourly_values(unit_id: str, hours: list[datetime], seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Fault-free hourly CEMS values for `hours` (UTC hour starts): one row per hour."""
    epoch = np.array([int(h.timestamp()) for h in hours], dtype=np.int64)
    heat = fuel_heat_input_mmbtu(hours, seed)
    o2 = _hourly_mean("Boiler1.FlueGasO2", hours, seed)
    steam = _hourly_mean("Boiler1.SteamFlow", hours, seed)
    load = steam / 50.0
    dry = FD_NATURAL_GAS * heat * 20.9 / (20.9 - o2)
    water = (FW_NATURAL_GAS - FD_NATURAL_GAS) * heat
    wet = dry + water
    co2_scf = FC_NATURAL_GAS * heat
    nox_rate = 0.04 + 0.02 * load
    return pd.DataFrame(
        {
            "unit_id": unit_id,
            "hour_start_utc": pd.to_datetime(epoch, unit="s", utc=True),
            "op_time": 1.0,
            "gross_load_mw": steam * MW_PER_T_STEAM,
            "stack_flow_scfh": wet * _noise(f"{unit_id}.flow", epoch, seed),
            "co2_pct": 100.0 * co2_scf / wet * _noise(f"{unit_id}.co2", epoch, seed),
            "o2_pct": o2,
            "so2_ppm": SO2_RATE_LB_MMBTU * heat / (SO2_K * wet),
            "nox_ppm": nox_rate / (NOX_K * FD_NATURAL_GAS * 20.9 / (20.9 - o2)),
            "nox_rate_lb_mmbtu": nox_rate,
            "moisture_pct": 100.0 * water / wet,
            **{f"{p}_status": "valid" for p in PARAMETERS},
        }
    )


_VALUE_COLUMN = {
    "so2": "so2_ppm",
    "co2": "co2_pct",
    "o2": "o2_pct",
    "nox": "nox_ppm",
    "flow": "stack_flow_scfh",
    "moisture": "moisture_pct",
}


def apply_faults(frame: pd.DataFrame, faults: CemsFaults) -> pd.DataFrame:
    """Statuses and values as a DAHS records them: a missing value is blank, a failed calibration
    or out-of-control hour keeps the (biased) reading with its status; dropped hours vanish."""
    frame = frame.copy()
    hours = frame["hour_start_utc"]
    for status, table in (
        ("missing", faults.missing),
        ("calibration_failed", faults.calibration_failed),
        ("out_of_control", faults.out_of_control),
    ):
        for hour, parameters in table.items():
            rows = hours == pd.Timestamp(hour)
            for parameter in parameters:
                frame.loc[rows, f"{parameter}_status"] = status
                column = _VALUE_COLUMN[parameter]
                if status == "missing":
                    frame.loc[rows, column] = np.nan
                    if parameter == "nox":
                        frame.loc[rows, "nox_rate_lb_mmbtu"] = np.nan
                else:
                    frame.loc[rows, column] *= 1.12  # a drifted analyzer: why the calibration failed
    keep = ~hours.isin([pd.Timestamp(hour) for hour in faults.dropped_hours])
    return frame[keep].reset_index(drop=True)


def demo_faults(hours: list[datetime], lst_offset_hours: int) -> CemsFaults:
    """The faults the demo injects every day, by local-standard-time hour: CO2 fails its daily
    calibration at 07:00, SO2 is missing at 15:00, stack flow is missing 20:00-21:59."""

    def at(lst_hour: int) -> list[datetime]:
        return [h for h in hours if (h + timedelta(hours=lst_offset_hours)).hour == lst_hour]

    return CemsFaults(
        missing={
            **{h: ("so2",) for h in at(15)},
            **{h: ("flow",) for h in at(20) + at(21)},
        },
        calibration_failed={h: ("co2",) for h in at(7)},
    )


def cems_hours(
    unit_id: str,
    start: datetime,
    end: datetime,
    faults: CemsFaults | None = None,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """What the CEMS records for the UTC window [start, end), faults applied."""
    frame = hourly_values(unit_id, hour_starts(start, end), seed)
    return apply_faults(frame, faults) if faults else frame
