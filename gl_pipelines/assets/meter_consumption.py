"""Hourly consumption from totalizer snapshots: the arithmetic a meter engineer would do by hand.

A totalizer only grows, so the consumption of an hour is the difference of two snapshots,
scaled to the hour when the reads were not exactly on the boundaries. Two things make the raw
difference negative: the counter wrapped at its rollover value (add the rollover back), or the
meter was reset (the true consumption is unknown: flag it, never invent a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

CONSUMPTION_COLUMNS = [
    "hour_start",
    "meter",
    "unit",
    "consumption",
    "flag",
    "read_start",
    "read_end",
    "raw_delta",
]
MAX_ROLLOVER_SHARE = 0.5
"""A negative delta counts as a rollover only if the wrapped consumption is under half the counter range."""


@dataclass(frozen=True)
class Totalizer:
    name: str
    unit: str
    rollover: float | None
    """Engineering units at which the counter wraps (raw rollover count x scale), if it does."""


def hourly_consumption(
    previous: pd.DataFrame, current: pd.DataFrame, totalizers: list[Totalizer], hour: tuple[datetime, datetime]
) -> pd.DataFrame:
    """Per totalizer: consumption over `hour` from the snapshot at its start (`previous`) and at its
    end (`current`), pro-rated to exactly one hour from the actual read times.

    Flags: `ok`, `rollover` (counter wrapped; consumption corrected), `reset` (counter went back:
    consumption unknown, NaN), `missing_reading` (a snapshot is absent or not good quality).
    """
    start, end = hour
    before = _good_by_tag(previous)
    after = _good_by_tag(current)
    rows = []
    for meter in totalizers:
        row = {"hour_start": start, "meter": meter.name, "unit": meter.unit, "consumption": np.nan}
        first, last = before.get(meter.name), after.get(meter.name)
        if first is None or last is None:
            rows.append(
                {**row, "flag": "missing_reading", "read_start": pd.NaT, "read_end": pd.NaT, "raw_delta": np.nan}
            )
            continue
        (t0, v0), (t1, v1) = first, last
        delta, flag = v1 - v0, "ok"
        if delta < 0:
            if meter.rollover and delta + meter.rollover < MAX_ROLLOVER_SHARE * meter.rollover:
                delta, flag = delta + meter.rollover, "rollover"
            else:
                flag = "reset"
        seconds = (t1 - t0).total_seconds()
        consumption = delta * (end - start).total_seconds() / seconds if flag != "reset" and seconds > 0 else np.nan
        rows.append(
            {**row, "consumption": consumption, "flag": flag, "read_start": t0, "read_end": t1, "raw_delta": v1 - v0}
        )
    frame = pd.DataFrame(rows, columns=CONSUMPTION_COLUMNS)
    for column in ("hour_start", "read_start", "read_end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _good_by_tag(readings: pd.DataFrame) -> dict[str, tuple[pd.Timestamp, float]]:
    if readings.empty:
        return {}
    good = readings[readings["quality"] == "good"].sort_values("ts")
    return {tag: (row.ts, row.value) for tag, row in good.groupby("tag").last().iterrows()}
