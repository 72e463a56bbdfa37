"""MQTT / Sparkplug B instances (a broker and its topics): `type: gl_pipelines.components.mqtt.MqttComponent`.

The instance's folder names it (`<site>__<instance>`: `source` column, collector client's state, job and
sensor names); `gl-mqtt-collector --config <this defs.yaml>` reads the same file, so the collector and
the asset agree on the landing area.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from gl_pipelines.assets.mqtt import build_mqtt_definitions
from gl_pipelines.components.base import InstanceSettings, SourceComponent
from gl_pipelines.mqtt.config import MqttSourceConfig


class MqttInstance(MqttSourceConfig, InstanceSettings):
    name: str | None = Field(default=None, description="Set from the instance's folders; leave it out.")


class MqttComponent(SourceComponent):
    """What the collector landed, hour by hour, with its blocking checks, hours sensor and broker health."""

    kind = "mqtt"
    schema = MqttInstance

    def build(self) -> dg.Definitions:
        names = self.names
        fields = self.spec.model_dump(exclude=set(InstanceSettings.model_fields))
        source = MqttSourceConfig.model_validate({**fields, "name": "__".join(names.prefix)})
        return build_mqtt_definitions(
            source,
            self.timezone,
            self.site.spec.checks,
            key_prefix=names.prefix,
            group_name=names.group_or(source.name),
        )
