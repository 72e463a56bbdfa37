"""The hourly asset and its blocking checks on what the collector landed from the real broker; the sensor
that runs a closed hour and re-runs it when a message for it lands late."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
from dagster import DagsterInstance, build_sensor_context, materialize

from gl_demo_plant.mqtt_broker import wait_for
from gl_demo_plant.mqtt_publisher import EDGE_METRICS, GATEWAY_SENSORS, demo_value, gateway_topic
from gl_pipelines.assets.mqtt import build_mqtt_definitions
from gl_pipelines.mqtt.landing_reader import count_rows

TAGS = [f"gw1.{sensor}" for sensor in GATEWAY_SENSORS] + [f"edge1/kiln1/{metric}" for metric in EDGE_METRICS]


def test_hour_materializes_from_the_broker_and_a_late_message_reruns_it(
    broker, source, collector, demo_plant, tmp_path
):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    start_ms = int(hour.timestamp() * 1000)
    ticks = int(3600 / source.publish_interval_s)
    collector.start()
    demo_plant.births(start_ms - 1)  # births carry values: keep them out of the hour under test
    for i in range(ticks):
        last = demo_plant.tick(start_ms + int(i * source.publish_interval_s * 1000))
    last.wait_for_publish(30)
    wait_for(lambda: count_rows(source.landing_path)["readings"] >= ticks * len(TAGS), 30, "the hour landed")

    warehouse = tmp_path / "warehouse.duckdb"
    defs = build_mqtt_definitions(source, "UTC", warehouse_path=warehouse)
    instance = DagsterInstance.ephemeral()
    partition = hour.strftime("%Y-%m-%d-%H:%M")
    hours_sensor = next(s for s in defs.sensors if s.name == f"{source.name}_hours")

    closed = hours_sensor(build_sensor_context(instance=instance, definitions=defs))
    due = {r.partition_key: r.tags["gl/mqtt-trigger"] for r in closed.run_requests}
    assert due[partition] == "hour-closed"  # and the hour before, which holds the births

    result = materialize(
        defs.assets, partition_key=partition, resources=defs.resources, instance=instance, raise_on_error=False
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    with duckdb.connect(str(warehouse), read_only=True) as db:
        stored = db.execute(f"SELECT tag, count(*) FROM plant.{source.name}__readings GROUP BY tag").fetchall()
        (boiler,) = db.execute(
            f"SELECT value FROM plant.{source.name}__readings WHERE tag = 'gw1.boiler_temp' AND ts = ?", [hour]
        ).fetchone()
    assert sorted(row[0] for row in stored) == sorted(TAGS)
    assert all(row[1] == ticks for row in stored)
    assert boiler == demo_value("boiler_temp", start_ms)
    again = hours_sensor(build_sensor_context(instance=instance, definitions=defs))
    assert partition not in {r.partition_key for r in again.run_requests}

    # A late message for the closed hour: the sensor re-runs it (the re-run's audit is the one above).
    broker.publish_lines(gateway_topic("boiler_temp"), [json.dumps({"ts": start_ms + 1, "v": 421.0})])
    wait_for(lambda: count_rows(source.landing_path)["readings"] > ticks * len(TAGS) + 2, 10, "the late message")
    rerun = hours_sensor(build_sensor_context(instance=instance, definitions=defs))
    assert {r.partition_key: r.tags["gl/mqtt-trigger"] for r in rerun.run_requests}[partition] == "late-messages"
