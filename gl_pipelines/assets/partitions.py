"""Partitions shared by every source, so schedules, backfills and mappings line up.

Partitions follow the plant's clock (the site's time zone) so an operator's "the 2 am hour" or
"yesterday" is one partition; the data inside stays UTC. Hourly partitions are hour-beginning:
`2026-11-01-03:00` holds samples in [03:00, 04:00) local time. On the US fall-back day the
repeated hour gets its own key (`2026-11-01-01:00-0600`), so a plant day maps to 23, 24 or 25
hourly partitions and nothing is lost or double counted.
"""

import os
from datetime import UTC, datetime
from functools import cache

from dagster import BackfillPolicy, DailyPartitionsDefinition, HourlyPartitionsDefinition, TimeWindow
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

HISTORY_START = "2025-01-01"
RANGE_START_TAG, RANGE_END_TAG = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG
"""Run tags that make one run cover a partition range (a single-run backfill)."""
WAREHOUSE_POOL = "duckdb_warehouse"
"""Every step that opens the DuckDB file runs in this pool; the instance limits it to one at a time."""


@cache
def site_hourly_partitions(timezone: str) -> HourlyPartitionsDefinition:
    return HourlyPartitionsDefinition(start_date=f"{HISTORY_START}-00:00", timezone=timezone)


@cache
def site_daily_partitions(timezone: str) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=HISTORY_START, timezone=timezone)


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
