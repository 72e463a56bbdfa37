"""Demo plant, Modbus meters: what the steam, gas and power meters read at any instant.

The meters sit on the same boiler as the OPC UA tags (`plant_model`): steam flow is the boiler's
SteamFlow without noise, gas flow closes the same energy balance, and each totalizer is the exact
closed-form integral of its rate since commissioning. So a test can compute, for any hour, the
consumption a pipeline must report. Every function takes epoch seconds, scalar or numpy array.

Points the model does not know (synthetic maps for benchmarks) still get a deterministic value
from (device, point, seed), never an error: a constant for bits, a counter for totalizers, a slow
sine inside the point's range otherwise.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from gl_demo_plant.plant_model import DEFAULT_SEED, FULL_LOAD_STEAM_T_H, GAS_M3_PER_T_STEAM, boiler_load
from gl_pipelines.config import ModbusPoint

Value = float | np.ndarray
ValueFunction = Callable[[Value], Value | bool]

COMMISSIONED = datetime(2024, 1, 1, tzinfo=UTC)
"""When the meters started counting; totalizers read their opening value then."""
OPENING = {"SteamMeter.Total": 18_250.0, "GasMeter.Total": 1_562_400.0, "PowerMeter.Energy": 2_480_000.0}
"""Totalizer readings at commissioning (t, m**3, kW*h): meters are rarely installed new."""

_T0 = COMMISSIONED.timestamp()
_DAY_S = 86_400.0
_WEEK_S = 7 * _DAY_S
_GAS_FULL_LOAD_M3_H = FULL_LOAD_STEAM_T_H * GAS_M3_PER_T_STEAM


def boiler_load_integral(epoch_s: Value) -> Value:
    """An antiderivative of `plant_model.boiler_load` (load x seconds): its differences are exact integrals."""
    t = np.asarray(epoch_s, dtype=np.float64)
    day = -0.15 * _DAY_S / (2 * np.pi) * np.cos(2 * np.pi * t / _DAY_S - 1.9)
    week = 0.05 * _WEEK_S / (2 * np.pi) * np.sin(2 * np.pi * t / _WEEK_S)
    return 0.75 * t + day + week


def _load_hours_since_commissioning(epoch_s: Value) -> Value:
    return (boiler_load_integral(epoch_s) - boiler_load_integral(_T0)) / 3600.0


def steam_flow_t_h(epoch_s: Value) -> Value:
    return FULL_LOAD_STEAM_T_H * boiler_load(np.asarray(epoch_s, dtype=np.float64))


def gas_flow_m3_h(epoch_s: Value) -> Value:
    return _GAS_FULL_LOAD_M3_H * boiler_load(np.asarray(epoch_s, dtype=np.float64))


def active_power_kw(epoch_s: Value) -> Value:
    """Feedwater pumps and fans: a base load plus a part that follows the boiler."""
    return 150.0 + 100.0 * boiler_load(np.asarray(epoch_s, dtype=np.float64))


def steam_total_t(epoch_s: Value) -> Value:
    return OPENING["SteamMeter.Total"] + FULL_LOAD_STEAM_T_H * _load_hours_since_commissioning(epoch_s)


def gas_total_m3(epoch_s: Value) -> Value:
    return OPENING["GasMeter.Total"] + _GAS_FULL_LOAD_M3_H * _load_hours_since_commissioning(epoch_s)


def energy_kwh(epoch_s: Value) -> Value:
    hours = (np.asarray(epoch_s, dtype=np.float64) - _T0) / 3600.0
    return OPENING["PowerMeter.Energy"] + 150.0 * hours + 100.0 * _load_hours_since_commissioning(epoch_s)


METERS: dict[str, ValueFunction] = {
    "SteamMeter.Flow": steam_flow_t_h,
    "SteamMeter.Total": steam_total_t,
    "GasMeter.Flow": gas_flow_m3_h,
    "GasMeter.Total": gas_total_m3,
    "PowerMeter.ActivePower": active_power_kw,
    "PowerMeter.Energy": energy_kwh,
    "PowerMeter.Running": lambda epoch_s: True,
}
"""The demo site's meter points by name: engineering value as a function of epoch seconds."""

TOTALIZERS = ("SteamMeter.Total", "GasMeter.Total", "PowerMeter.Energy")


def consumption(point_name: str, start: datetime, end: datetime) -> float:
    """Exact consumption a totalizer counts in [start, end), in its engineering unit."""
    total = METERS[point_name]
    return float(total(end.timestamp()) - total(start.timestamp()))


# Raw ranges for synthetic points without min/max: wide enough that every byte of the value is used.
_SYNTHETIC_RAW_RANGE = {
    "int16": (-20_000.0, 20_000.0),
    "uint16": (0.0, 60_000.0),
    "int32": (-2e9, 2e9),
    "uint32": (0.0, 4e9),
    "int64": (-9e18, 9e18),
    "uint64": (0.0, 1.8e19),
    "float32": (-1e6, 1e6),
    "float64": (-1e9, 1e9),
}


@dataclass(frozen=True)
class Synthetic:
    """A point the model does not know: level + per_hour x hours since commissioning
    + amplitude x sin(2 pi t / period + phase). One formula, so a server can evaluate many at once."""

    level: float
    per_hour: float = 0.0
    amplitude: float = 0.0
    period: float = 1.0
    phase: float = 0.0
    boolean: bool = False

    def __call__(self, epoch_s: Value) -> Value | bool:
        if self.boolean:
            return bool(self.level)
        return (
            self.level
            + self.per_hour * (epoch_s - _T0) / 3600.0
            + self.amplitude * np.sin(2 * np.pi * epoch_s / self.period + self.phase)
        )


def _synthetic(point: ModbusPoint | None, name: str, seed: int, device: str) -> Synthetic:
    key = zlib.crc32(f"{device}/{name}/{seed}".encode())
    if point is not None and point.type == "bool":
        return Synthetic(level=float(key & 1), boolean=True)
    if point is not None and point.totalizer:
        return Synthetic(level=point.offset, per_hour=abs(point.scale) * (1_000 + key % 9_000))
    if point is None:
        low, high = 0.0, 100.0
    else:
        raw_low, raw_high = _SYNTHETIC_RAW_RANGE[point.type]
        ends = sorted(point.offset + point.scale * raw for raw in (raw_low, raw_high))
        low = point.min if point.min is not None else ends[0]
        high = point.max if point.max is not None else ends[1]
        if high <= low:
            high = low + ends[1] - ends[0]
    return Synthetic(
        level=(low + high) / 2,
        amplitude=0.4 * (high - low),
        period=1_800.0 + key % 5_400,
        phase=2 * np.pi * ((key >> 13) % 1_000) / 1_000,
    )


def value_function(point: ModbusPoint | str, seed: int = DEFAULT_SEED, device: str = "") -> ValueFunction:
    """Engineering value of `point` as a function of epoch seconds; built once per point so a server
    answering many requests only pays for the arithmetic. A bare name not in METERS gets a 0..100 sine."""
    name = point if isinstance(point, str) else point.name
    if name in METERS:
        return METERS[name]
    return _synthetic(None if isinstance(point, str) else point, name, seed, device)


class ValueBank:
    """The engineering values of many points at one instant, computed with numpy in one go.

    A server answering a 125-register block would otherwise call a Python function per point;
    here the synthetic points are one vectorized expression and only the few modelled meters
    (METERS) are called one by one.
    """

    def __init__(self, points: Sequence[ModbusPoint], seed: int = DEFAULT_SEED, device: str = "") -> None:
        self.functions = [value_function(point, seed, device) for point in points]
        synthetic = [f if isinstance(f, Synthetic) else Synthetic(level=0.0) for f in self.functions]
        self.level = np.array([s.level for s in synthetic])
        self.per_hour = np.array([s.per_hour for s in synthetic])
        self.amplitude = np.array([s.amplitude for s in synthetic])
        self.period = np.array([s.period for s in synthetic])
        self.phase = np.array([s.phase for s in synthetic])
        self.modelled = [(i, f) for i, f in enumerate(self.functions) if not isinstance(f, Synthetic)]

    def values(self, epoch_s: float, lo: int, hi: int) -> np.ndarray:
        """Values of points[lo:hi] at `epoch_s` (bits as 0.0/1.0)."""
        part = slice(lo, hi)
        out = (
            self.level[part]
            + self.per_hour[part] * (epoch_s - _T0) / 3600.0
            + self.amplitude[part] * np.sin(2 * np.pi * epoch_s / self.period[part] + self.phase[part])
        )
        for i, function in self.modelled:
            if lo <= i < hi:
                out[i - lo] = float(function(epoch_s))
        return out


def engineering_value(
    point: ModbusPoint | str, moment: datetime, seed: int = DEFAULT_SEED, device: str = ""
) -> float | bool:
    """What the meter shows at `moment`, in the point's engineering unit (before scale/offset/rollover)."""
    value = value_function(point, seed, device)(moment.timestamp())
    return value if isinstance(value, bool) else float(value)
