"""MQTT source assets: the hourly readings the collector landed, audited, into the warehouse.

`build_mqtt_definitions` builds everything of one MQTT source instance (asset with its blocking
checks, job, sensors, health resource), keys prefixed by the instance name, so a site with several
brokers declares several instances. The asset never talks to the broker: MQTT keeps no history, the
collector (`gl-mqtt-collector`) does, and the asset reads its landing area for the partition's
[start, end).
"""

import hashlib
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BetaWarning,
    Definitions,
    FreshnessPolicy,
    PreviewWarning,
    asset,
    define_asset_job,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, backfill_policy, site_hourly_partitions, utc_window
from gl_pipelines.assets.provenance import provenance_metadata
from gl_pipelines.checks.mqtt import mqtt_audit
from gl_pipelines.config import CheckThresholds
from gl_pipelines.mqtt.config import MqttSourceConfig
from gl_pipelines.mqtt.landing_reader import read_readings
from gl_pipelines.resources.mqtt import MqttHealthResource
from gl_pipelines.resources.warehouse import WarehouseStaging, warehouse_io_manager
from gl_pipelines.sensors.mqtt import LANDING_ROWID, build_mqtt_health_sensor, build_mqtt_hours_sensor

COLUMNS = ["ts", "tag", "value", "unit", "quality", "source"]


def payload_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a canonical serialization of what was read (the landing rows, in order)."""
    digest = hashlib.sha256()
    for row in frame[["ts", "tag", "value", "unit", "quality"]].itertuples(index=False):
        digest.update(f"{row.ts.isoformat()}|{row.tag}|{row.value!r}|{row.unit}|{row.quality}\n".encode())
    return digest.hexdigest()


def build_mqtt_definitions(
    source: MqttSourceConfig,
    site_timezone: str,
    thresholds: CheckThresholds | None = None,
    warehouse_path: str | Path | None = None,
    key_prefix: tuple[str, ...] | None = None,
    group_name: str | None = None,
) -> Definitions:
    """Asset, checks, job, sensors and health resource of one MQTT source instance. The warehouse
    resources come with it when `warehouse_path` is given (tests, a standalone location), else from
    the site's Definitions it is merged into. `key_prefix` (default: the instance name) and `group_name`
    let the component name it `<site>/<instance>/readings` like the other kinds."""
    # Single-run backfill policies (beta) and partitioned check specs (preview) are used on purpose, as in
    # definitions.py; the builder may run where that module's filter is not installed (tests, components).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        key = AssetKey([*(key_prefix or (source.name,)), "readings"])
        return _build(source, site_timezone, thresholds or CheckThresholds(), warehouse_path, key, group_name)


def _build(
    source: MqttSourceConfig,
    site_timezone: str,
    thresholds: CheckThresholds,
    warehouse_path: str | Path | None,
    key: AssetKey,
    group_name: str | None,
) -> Definitions:
    audit = mqtt_audit(source, thresholds, site_timezone, key)
    health_key = f"{source.name}_mqtt"
    landing = Path(source.landing_path)

    @asset(
        key=key,
        partitions_def=site_hourly_partitions(site_timezone),
        backfill_policy=backfill_policy(),
        io_manager_key="warehouse",
        group_name=group_name or source.name,
        kinds={"mqtt", "duckdb"},
        metadata={"partition_expr": "ts"},  # table plant.<instance>__readings (the IO manager names it by key)
        check_specs=audit.specs(),
        pool=WAREHOUSE_POOL,
        tags={"gl/source-kind": "mqtt"},
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
        description=f"MQTT readings of {source.endpoint} as the collector landed them (JSON topics and "
        "Sparkplug B), one row per tag and source timestamp; published only when its blocking checks pass.",
    )
    def readings(context: AssetExecutionContext, warehouse_staging: WarehouseStaging) -> Iterator:
        start, end = utc_window(context.partition_time_window)
        started = time.monotonic()
        landed, last_rowid = read_readings(landing, start, end)
        frame = landed.assign(source=source.name)[COLUMNS]
        metadata = provenance_metadata(
            endpoint=source.endpoint,
            window=(start, end),
            query=f"landing area {landing} readings with ts in [start, end)",
            payload_sha256=payload_sha256(frame),
            resource_version=f"aiomqtt {version('aiomqtt')}",
            duration_s=time.monotonic() - started,
            frame=frame,
        ) | {
            LANDING_ROWID: last_rowid,
            "latest_arrival": landed["received_at"].max().isoformat() if len(landed) else "none",
        }
        yield from audit.run(context, frame, metadata, warehouse_staging)

    job = define_asset_job(
        f"{source.name}_readings_job",
        selection=[key],
        description=f"The hourly MQTT readings of {source.name} with their blocking checks.",
    )
    resources = {health_key: MqttHealthResource.from_source(source)}
    if warehouse_path is not None:
        resources["warehouse"] = warehouse_io_manager(str(warehouse_path))
        resources["warehouse_staging"] = WarehouseStaging(database=str(warehouse_path))
    return Definitions(
        assets=[readings],
        jobs=[job],
        sensors=[
            build_mqtt_hours_sensor(source, site_timezone, key, job),
            build_mqtt_health_sensor(source, health_key),
        ],
        resources=resources,
    )
