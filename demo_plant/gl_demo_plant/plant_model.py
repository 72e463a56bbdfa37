"""The demo plant's process: a gas-fired package boiler plus synthetic tags for scale tests.

Every sample is a pure function of (tag, timestamp, seed), vectorized with numpy, so the
simulator can serve any past window without storing it and tests can compute the exact values
a pipeline must have stored.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

DEFAULT_SEED = 20261101
SAMPLE_INTERVAL_S = 10
STATUS_GOOD = 0x00000000
STATUS_UNCERTAIN_LAST_USABLE = 0x40900000
UNCERTAIN_RATE = 0.002  # a real plant shows the odd uncertain sample; tests must cope with it

_DAY_S = 86_400.0


def _unit_noise(tag_key: int, epoch_s: np.ndarray, seed: int, salt: int = 0) -> np.ndarray:
    """Deterministic uniform noise in [0, 1) from a splitmix64 hash of (tag, second, seed)."""
    with np.errstate(over="ignore"):
        x = epoch_s.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.uint64((tag_key * 0x100000001B3 + seed * 0x85EBCA77 + salt) & 0xFFFFFFFFFFFFFFFF)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def boiler_load(epoch_s: np.ndarray) -> np.ndarray:
    """Fraction of full steam load: a day shape (peak mid-afternoon UTC) and a weekly dip."""
    day_phase = 2 * np.pi * (epoch_s % _DAY_S) / _DAY_S
    week_phase = 2 * np.pi * (epoch_s % (7 * _DAY_S)) / (7 * _DAY_S)
    return 0.75 + 0.15 * np.sin(day_phase - 1.9) + 0.05 * np.cos(week_phase)


@dataclass(frozen=True)
class TagModel:
    """One served tag: how its value follows the process, and its noise."""

    name: str
    unit: str
    shape: Callable[[np.ndarray], np.ndarray]
    noise: float

    @property
    def node_id(self) -> str:
        return f"ns=2;s={self.name}"

    @property
    def key(self) -> int:
        return zlib.crc32(self.name.encode())

    def values(self, epoch_s: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
        jitter = 2.0 * _unit_noise(self.key, epoch_s, seed) - 1.0
        return self.shape(epoch_s) + self.noise * jitter

    def status_codes(self, epoch_s: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
        uncertain = _unit_noise(self.key, epoch_s, seed, salt=1) < UNCERTAIN_RATE
        return np.where(uncertain, STATUS_UNCERTAIN_LAST_USABLE, STATUS_GOOD).astype(np.uint32)


# Steam enthalpy rise ~2.75 GJ/t, boiler efficiency ~0.85, natural gas HHV ~0.0378 GJ/m3:
# about 85.6 m3 of gas per tonne of steam, so fuel flow and steam flow close an energy balance.
GAS_M3_PER_T_STEAM = 2.75 / 0.85 / 0.0378
FULL_LOAD_STEAM_T_H = 50.0

PROCESS_TAGS: tuple[TagModel, ...] = (
    TagModel("Boiler1.SteamFlow", "t/h", lambda t: FULL_LOAD_STEAM_T_H * boiler_load(t), 0.4),
    TagModel("Boiler1.DrumPressure", "bar", lambda t: 42.0 - 3.0 * (boiler_load(t) - 0.75), 0.15),
    TagModel("Boiler1.FeedwaterTemp", "degC", lambda t: 103.0 + 4.0 * boiler_load(t), 0.3),
    TagModel(
        "Boiler1.FuelGasFlow",
        "m**3/h",
        lambda t: FULL_LOAD_STEAM_T_H * boiler_load(t) * GAS_M3_PER_T_STEAM,
        25.0,
    ),
    TagModel("Boiler1.FlueGasO2", "percent", lambda t: 5.0 - 2.4 * boiler_load(t), 0.1),
    TagModel("Boiler1.StackTemp", "degC", lambda t: 125.0 + 55.0 * boiler_load(t), 0.8),
)


def synthetic_tag(index: int) -> TagModel:
    """Synthetic tag `Synthetic.T0001`...: slow sines with their own period and phase, 0..100 %."""
    period = 600.0 + 37.0 * (index % 97)
    phase = (index * 0.618) % (2 * np.pi)
    return TagModel(
        f"Synthetic.T{index:04d}",
        "percent",
        lambda t: 50.0 + 30.0 * np.sin(2 * np.pi * t / period + phase),
        2.0,
    )


def catalogue(n_synthetic: int) -> dict[str, TagModel]:
    """Every tag the demo server serves, keyed by NodeId string."""
    tags = list(PROCESS_TAGS) + [synthetic_tag(i) for i in range(1, n_synthetic + 1)]
    return {tag.node_id: tag for tag in tags}


def sample_times(start: datetime, end: datetime, interval_s: int = SAMPLE_INTERVAL_S) -> np.ndarray:
    """Epoch seconds of the samples in [start, end): a fixed grid aligned to the epoch."""
    first = -(-int(np.ceil(start.timestamp())) // interval_s) * interval_s
    last = end.timestamp()
    return np.arange(first, last, interval_s, dtype=np.int64)


def to_datetime(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC)
