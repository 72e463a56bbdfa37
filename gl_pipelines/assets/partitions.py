"""Partitions shared by every source, so schedules, backfills and mappings line up.

Partitions follow the plant's clock (the site's time zone) so an operator's "the 2 am hour" or
"yesterday" is one partition; the data inside stays UTC. Hourly partitions are hour-beginning:
`2026-11-01-03:00` holds samples in [03:00, 04:00) local time. On the US fall-back day the
repeated hour gets its own key (`2026-11-01-01:00-0600`), so a plant day maps to 23, 24 or 25
hourly partitions and nothing is lost or double counted.

Partitions start on the history start of the instance being built: a defs-folder instance builds its
definitions inside `history_starting(<its history_start>)` (`components.base`), so every partitions
definition its asset, check, job, schedule and sensor modules ask for starts that day, without each of
them carrying the date. Outside such a block (a single-site file) history starts at HISTORY_START.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from functools import cache

from dagster import (
    BackfillPolicy,
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

HISTORY_START = "2025-01-01"
RANGE_START_TAG, RANGE_END_TAG = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG
"""Run tags that make one run cover a partition range (a single-run backfill)."""
WAREHOUSE_POOL = "duckdb_warehouse"
"""Every step that opens the DuckDB file runs in this pool; the instance limits it to one at a time."""


_HISTORY_START: ContextVar[str] = ContextVar("history_start", default=HISTORY_START)


@contextmanager
def history_starting(day: date) -> Iterator[None]:
    """Partitions built inside this block start on `day` (a plant day on the site's clock)."""
    token = _HISTORY_START.set(day.isoformat())
    try:
        yield
    finally:
        _HISTORY_START.reset(token)


def history_start() -> str:
    """The first day (ISO) of the partitions being built now."""
    return _HISTORY_START.get()


def site_hourly_partitions(timezone: str) -> HourlyPartitionsDefinition:
    return _hourly(timezone, history_start())


def site_daily_partitions(timezone: str) -> DailyPartitionsDefinition:
    return _daily(timezone, history_start())


@cache
def _hourly(timezone: str, start: str) -> HourlyPartitionsDefinition:
    return HourlyPartitionsDefinition(start_date=f"{start}-00:00", timezone=timezone)


@cache
def _daily(timezone: str, start: str) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start, timezone=timezone)


def utc_window(window: TimeWindow) -> tuple[datetime, datetime]:
    """A partition window as UTC instants. Always convert before arithmetic or comparisons:
    Python subtracts two datetimes of the same zone by wall clock, which makes the repeated
    fall-back hour last zero seconds."""
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


def backfill_policy() -> BackfillPolicy:
    """One run per backfill by default (the asset reads its whole window at once); set
    $GL_BACKFILL_PARTITIONS_PER_RUN to split very long backfills into runs of that many partitions."""
    per_run = os.environ.get("GL_BACKFILL_PARTITIONS_PER_RUN")
    return BackfillPolicy.multi_run(int(per_run)) if per_run else BackfillPolicy.single_run()


QUARTER_CRON = "0 0 1 1,4,7,10 *"
"""CEMS quarters (Part 75 reports by calendar quarter of local standard time)."""


def lst_zone(lst_utc_offset_hours: int) -> str:
    """The IANA fixed-offset zone of local standard time (POSIX sign: UTC-6 is Etc/GMT+6)."""
    return "Etc/UTC" if lst_utc_offset_hours == 0 else f"Etc/GMT{-lst_utc_offset_hours:+d}"


@cache
def cems_hourly_partitions(lst_utc_offset_hours: int, start: str = HISTORY_START) -> HourlyPartitionsDefinition:
    """`start`: the CEMS source's `history_start` (ISO date); the demo keeps the shared 2025-01-01."""
    return HourlyPartitionsDefinition(start_date=f"{start}-00:00", timezone=lst_zone(lst_utc_offset_hours))


@cache
def cems_daily_partitions(lst_utc_offset_hours: int, start: str = HISTORY_START) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start, timezone=lst_zone(lst_utc_offset_hours))


@cache
def cems_quarterly_partitions(lst_utc_offset_hours: int, start: str = HISTORY_START) -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        cron_schedule=QUARTER_CRON,
        start=start,
        fmt="%Y-%m-%d",
        timezone=lst_zone(lst_utc_offset_hours),
        end_offset=1,  # the quarter in progress is a partition too: its report is quarter to date
    )
