"""Blocking checks on an MQTT source's hourly readings, run as its audit (write-audit-publish).

The readings suite every long-schema source gets (not null, value within the tag's range, unique
(ts, tag): a redelivered message landed twice would fail it, ts in window) and completeness against
the source's expected publish rate. The asset key carries the instance (`<instance>/readings`), so the
specs name it; check names and the staging table use `<instance>_readings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetCheckSpec, AssetKey

from gl_pipelines.assets.partitions import site_hourly_partitions
from gl_pipelines.checks.readings import ReadingsAudit
from gl_pipelines.config import CheckThresholds
from gl_pipelines.mqtt.config import MqttSourceConfig


@dataclass(frozen=True)
class KeyedReadingsAudit(ReadingsAudit):
    """A readings audit for an asset whose key has a prefix (the shared audit names assets by a plain string)."""

    key: AssetKey | None = None

    def specs(self) -> list[AssetCheckSpec]:
        return [
            AssetCheckSpec(
                spec.name, asset=self.key, blocking=True, partitions_def=self.partitions, description=spec.description
            )
            for spec in super().specs()
        ]


def mqtt_audit(
    source: MqttSourceConfig, thresholds: CheckThresholds, timezone: str, key: AssetKey
) -> KeyedReadingsAudit:
    return KeyedReadingsAudit(
        f"{source.name}_readings",
        site_hourly_partitions(timezone),
        source.tag_ranges(),
        source.publish_interval_s,
        thresholds,
        key=key,
    )
