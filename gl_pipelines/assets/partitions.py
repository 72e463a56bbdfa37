"""Partitions shared by every source, so schedules, backfills and mappings line up.

Hour-beginning, UTC: partition 2026-11-01-03:00 holds samples in [03:00, 04:00) UTC.
"""

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

HISTORY_START = "2025-01-01"

hourly_partitions = HourlyPartitionsDefinition(start_date=f"{HISTORY_START}-00:00", timezone="UTC")
daily_partitions = DailyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")
