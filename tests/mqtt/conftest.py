"""A private Mosquitto per test session and a demo MQTT source pointed at it, with its own landing area."""

from __future__ import annotations

import itertools

import pytest

from gl_demo_plant.mqtt_broker import CollectorProcess, PrivateMosquitto
from gl_demo_plant.mqtt_publisher import DemoMqttPlant
from gl_pipelines.mqtt.config import DEMO_MQTT_CONFIG, MqttSourceConfig, load_mqtt_source

_ids = itertools.count()


@pytest.fixture(scope="session")
def broker():
    with PrivateMosquitto() as running:
        yield running


@pytest.fixture
def source(broker, tmp_path) -> MqttSourceConfig:
    """The demo source on the private broker; a fresh client id, so no session leaks between tests."""
    demo = load_mqtt_source(DEMO_MQTT_CONFIG)
    return demo.model_copy(
        update={
            "port": broker.port,
            "landing_path": tmp_path / "landing.sqlite",
            "client_id": f"gl-test-collector-{next(_ids)}",
            "heartbeat_max_age_s": 30,
        }
    )


@pytest.fixture
def collector(source, tmp_path):
    process = CollectorProcess(source, tmp_path)
    yield process
    process.stop()


@pytest.fixture
def demo_plant(broker):
    plant = DemoMqttPlant("127.0.0.1", broker.port, client_id=f"gl-test-plant-{next(_ids)}")
    yield plant
    plant.close()
