"""Blocking checks on the Modbus meter assets: a missing or implausible reading never becomes consumption."""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    asset_check,
    multi_asset_check,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_hourly_partitions
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import ModbusSource

COMPLETE, IN_RANGE = "meter_readings_complete", "meter_readings_in_range"
METER_READINGS_CHECKS = (COMPLETE, IN_RANGE)


def missing_points(readings: pd.DataFrame, expected: list[str]) -> dict[str, str]:
    """Configured points without a good reading, with the reason the device gave."""
    good = set(readings.loc[readings["quality"] == "good", "tag"])
    status = dict(zip(readings["tag"], readings["status"], strict=False))
    return {name: status.get(name, "no row") for name in expected if name not in good}


def out_of_range(readings: pd.DataFrame, ranges: dict[str, tuple[float | None, float | None]]) -> list[str]:
    """'point = value (range lo..hi)' for every good reading outside its configured range."""
    problems = []
    for row in readings[readings["quality"] == "good"].itertuples():
        low, high = ranges.get(row.tag, (None, None))
        if (low is not None and row.value < low) or (high is not None and row.value > high):
            problems.append(f"{row.tag} = {row.value:g} (range {low}..{high})")
    return problems


def negative_consumption(consumption: pd.DataFrame) -> list[str]:
    """'meter = value' for every negative consumption not explained by a flagged reset."""
    negative = consumption[(consumption["consumption"] < 0) & (consumption["flag"] != "reset")]
    return [f"{row.meter} = {row.consumption:g}" for row in negative.itertuples()]


def build_meter_checks(
    source: ModbusSource, timezone: str, instance: InstanceNames | None = None
) -> list[AssetChecksDefinition]:
    instance = instance or InstanceNames.single("modbus")
    readings_key, consumption_key = instance.key("meter_readings"), instance.key("meter_hourly_consumption")
    points = [point for device in source.devices for point in device.points]
    names = [point.name for point in points]
    ranges = {point.name: (point.min, point.max) for point in points}
    hourly = site_hourly_partitions(timezone)

    @multi_asset_check(
        name=instance.job("meter_readings_checks"),
        specs=[
            AssetCheckSpec(
                COMPLETE,
                asset=readings_key,
                blocking=True,
                partitions_def=hourly,
                description="Every configured point has a good reading.",
            ),
            AssetCheckSpec(
                IN_RANGE,
                asset=readings_key,
                blocking=True,
                partitions_def=hourly,
                description="Every decoded value is within its configured min..max.",
            ),
        ],
        ins={"meter_readings": AssetIn(readings_key)},
        pool=WAREHOUSE_POOL,
    )
    def meter_readings_checks(meter_readings: pd.DataFrame) -> Iterator[AssetCheckResult]:
        missing = missing_points(meter_readings, names)
        yield AssetCheckResult(
            check_name=COMPLETE,
            passed=not missing,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(f"{name}: {why}" for name, why in missing.items()) or f"all {len(names)} points read",
            metadata={"missing_points": list(missing)},
        )
        problems = out_of_range(meter_readings, ranges)
        yield AssetCheckResult(
            check_name=IN_RANGE,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(problems[:10]) or "all values within their configured ranges",
            metadata={"out_of_range": problems[:50]},
        )

    @asset_check(
        asset=consumption_key,
        blocking=True,
        partitions_def=hourly,
        pool=WAREHOUSE_POOL,
        description="Consumption is never negative; a reset is flagged instead of producing a number.",
    )
    def meter_consumption_non_negative(meter_hourly_consumption: pd.DataFrame) -> AssetCheckResult:
        negative = negative_consumption(meter_hourly_consumption)
        return AssetCheckResult(
            passed=not negative,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(negative) or "no negative consumption",
        )

    return [meter_readings_checks, meter_consumption_non_negative]
