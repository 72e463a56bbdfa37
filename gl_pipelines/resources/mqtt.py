"""MQTT source health: is the broker reachable, and is the collector alive?

MQTT keeps no history, so Dagster never reads the broker: the collector (`gl_pipelines.mqtt.collector`)
lands every message as it arrives and the hourly asset reads the landing area. The source's config
model lives in `gl_pipelines.mqtt.config` (re-exported here), free of Dagster for the collector's sake.
"""

from __future__ import annotations

import socket
import time

from dagster import ConfigurableResource

from gl_pipelines.mqtt.config import JsonTopic, MqttSourceConfig, MqttTag, load_mqtt_source
from gl_pipelines.mqtt.landing import read_status
from gl_pipelines.resources.health import HealthStatus

__all__ = ["JsonTopic", "MqttHealthResource", "MqttSourceConfig", "MqttTag", "load_mqtt_source"]


class MqttHealthResource(ConfigurableResource):
    """Broker reachability and collector liveness for one MQTT source (never reads messages)."""

    host: str
    """Broker host."""
    port: int = 1883
    """Broker port."""
    landing_path: str
    """The collector's landing area, whose status row carries its heartbeat."""
    heartbeat_max_age_s: float = 60
    """The collector is reported down when its heartbeat is older than this."""
    timeout_s: float = 3
    """TCP connect timeout of the broker probe."""

    @classmethod
    def from_source(cls, source: MqttSourceConfig) -> MqttHealthResource:
        return cls(
            host=source.host,
            port=source.port,
            landing_path=str(source.landing_path),
            heartbeat_max_age_s=source.heartbeat_max_age_s,
        )

    def health_check(self) -> HealthStatus:
        """Down when the broker refuses a TCP connection or the collector's heartbeat is stale."""
        endpoint = f"mqtt://{self.host}:{self.port}"
        started = time.monotonic()
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s):
                pass
        except OSError as error:
            return HealthStatus(False, endpoint, f"broker unreachable: {error}", time.monotonic() - started)
        latency = time.monotonic() - started
        status = read_status(self.landing_path)
        if status is None:
            return HealthStatus(False, endpoint, f"no collector has written {self.landing_path} yet", latency)
        age = time.time() - status.heartbeat
        if age > self.heartbeat_max_age_s:
            return HealthStatus(False, endpoint, f"collector heartbeat {age:.0f} s old ({status.detail})", latency)
        if not status.connected:
            return HealthStatus(False, endpoint, f"collector alive but not connected: {status.detail}", latency)
        return HealthStatus(True, endpoint, f"collector connected; {status.detail}", latency)
