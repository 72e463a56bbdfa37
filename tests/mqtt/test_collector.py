"""The collector against a real Mosquitto: a kill mid-burst, the demo plant's faults, health."""

from __future__ import annotations

import json
import threading

from gl_demo_plant.mqtt_broker import CollectorProcess, PrivateMosquitto, wait_for
from gl_demo_plant.mqtt_publisher import EDGE_METRICS, gateway_topic
from gl_pipelines.mqtt.landing import read_status
from gl_pipelines.mqtt.landing_reader import count_rows, read_table
from gl_pipelines.resources.mqtt import MqttHealthResource

BASE_MS = 1_796_000_000_000


def _landed(source) -> int:
    return count_rows(source.landing_path)["readings"]


def test_kill_mid_burst_loses_nothing_and_duplicates_nothing(broker, source, collector):
    collector.start()
    n = 20_000
    lines = [json.dumps({"ts": BASE_MS + i, "v": 100 + i % 50}) for i in range(n)]
    burst = threading.Thread(target=broker.publish_lines, args=(gateway_topic("boiler_temp"), lines))
    burst.start()
    wait_for(lambda: _landed(source) > 1000, 30, "the burst's first messages landed")
    collector.kill()
    at_kill = _landed(source)
    burst.join()
    collector.start()
    wait_for(lambda: _landed(source) >= n, 60, f"{n} readings landed")
    landed = read_table(source.landing_path, "readings", ["ts", "value"])
    assert at_kill < n, "the kill came after the burst: nothing was tested"
    assert len(landed) == n
    assert landed["ts"].nunique() == n
    assert sorted(landed["ts"] // 1000 - BASE_MS) == list(range(n))


def test_demo_plant_faults_are_recorded_and_never_stop_the_collector(source, collector, demo_plant):
    collector.start()
    now = BASE_MS
    demo_plant.births(now)
    for second in range(1, 4):
        demo_plant.tick(now + second * 1000)
    demo_plant.device_death_and_rebirth(now + 4000, now + 4500)
    demo_plant.seq_gap()
    demo_plant.tick(now + 5000)
    demo_plant.malformed()
    demo_plant.tick(now + 6000).wait_for_publish(10)
    wait_for(lambda: demo_plant.rebirths_answered >= 1, 20, "the edge node asked to rebirth after the seq gap")
    wait_for(lambda: _landed(source) >= 5 * 5 + 2, 20, "the plant's readings landed")

    quarantine = read_table(source.landing_path, "quarantine")
    reasons = dict(zip(quarantine["topic"], quarantine["reason"], strict=True))
    assert reasons[gateway_topic("boiler_temp")].startswith("not JSON")
    assert reasons[gateway_topic("stack_o2")] == "field 'v' missing"
    assert reasons["spBv1.0/plant/DDATA/edge1/kiln1"].startswith("not a Sparkplug B payload")
    events = read_table(source.landing_path, "events")
    assert "expected seq" in events.loc[events["kind"] == "seq_gap", "detail"].iloc[0]
    assert events["kind"].eq("death").sum() == 1
    readings = read_table(source.landing_path, "readings")
    dead = readings[readings["quality"] == "bad"]
    assert sorted(dead["tag"]) == sorted(f"edge1/kiln1/{metric}" for metric in EDGE_METRICS)
    assert (dead["ts"] == (now + 4000) * 1000).all() and dead["value"].isna().all()
    assert collector.alive


def test_health_reports_collector_and_broker(broker, source, collector):
    health = MqttHealthResource.from_source(source)
    assert not health.health_check().ok  # no collector has run yet
    collector.start()
    status = health.health_check()
    assert status.ok, status.detail
    collector.stop()
    status = health.health_check()
    assert not status.ok and "collector stopped" in status.detail
    unreachable = MqttHealthResource.from_source(source.model_copy(update={"port": 1}))
    assert "broker unreachable" in unreachable.health_check().detail


def test_broker_outage_is_reported_and_the_collector_reconnects(source, tmp_path):
    with PrivateMosquitto() as own_broker:
        source = source.model_copy(update={"port": own_broker.port})
        collector = CollectorProcess(source, tmp_path).start()
        health = MqttHealthResource.from_source(source)
        try:
            own_broker.stop()
            wait_for(lambda: not read_status(source.landing_path).connected, 15, "the collector to see the outage")
            status = health.health_check()
            assert not status.ok and "broker unreachable" in status.detail
            own_broker.start()
            wait_for(lambda: read_status(source.landing_path).connected, 30, "the collector to reconnect")
            own_broker.publish_lines(gateway_topic("stack_o2"), [json.dumps({"ts": BASE_MS, "v": 5.0})])
            wait_for(lambda: _landed(source) == 1, 10, "a message after the outage")
            assert health.health_check().ok
        finally:
            collector.stop()
