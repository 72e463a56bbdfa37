"""An MQTT source instance's configuration: broker, topics, landing area, expected tags.

Kept free of Dagster so the collector (a long-running service) starts in a fraction of a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DEMO_MQTT_CONFIG = Path(__file__).resolve().parents[1] / "defs" / "demo_plant" / "mqtt" / "defs.yaml"
"""The demo plant's MQTT instance (its component, the collector in scripts/ui, tests, bench)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JsonTopic(_Strict):
    """One JSON topic mapping: which messages, which tag, where the value and its time are."""

    pattern: str = Field(description="MQTT topic filter, `+` and `#` wildcards allowed, e.g. `plant/gw1/+/telemetry`.")
    tag: str = Field(
        description="Tag name; `{0}`, `{1}`, ... are replaced by the topic's levels, e.g. `gw1.{2}` for "
        "`plant/gw1/boiler_temp/telemetry` gives `gw1.boiler_temp`."
    )
    value_path: str = Field(description="Dotted path of the number in the JSON object, e.g. `v` or `data.value`.")
    timestamp_path: str | None = Field(
        default=None,
        description="Dotted path of the source time (epoch milliseconds or ISO-8601 with offset); none: arrival time.",
    )
    unit: str | None = Field(
        default=None, description="Engineering unit (pint-parsable); none: the unit of the tag in `tags`."
    )

    @field_validator("pattern")
    @classmethod
    def _filter(cls, pattern: str) -> str:
        levels = pattern.split("/")
        if any(("+" in level and level != "+") or ("#" in level and level != "#") for level in levels) or (
            "#" in levels[:-1]
        ):
            raise ValueError(f"topic filter {pattern!r}: `+` and `#` must fill a whole level, `#` only the last")
        return pattern


class MqttTag(_Strict):
    """A tag the site expects from this source: its unit and plausible range (the range check)."""

    name: str = Field(description="JSON tags as their mapping names them; Sparkplug tags `node/device/metric`.")
    unit: str
    min: float
    max: float


class MqttSourceConfig(_Strict):
    """One MQTT source instance: a broker, the topics to collect, the landing area, the expected tags."""

    name: str = Field(description="Instance name: asset key prefix, `source` column, collector id suffix.")
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(
        description="Fixed MQTT client id: the broker keeps this persistent session's messages while the "
        "collector is down. Never share it between two collectors."
    )
    username_env: str | None = Field(default=None, description="Environment variable holding the broker username.")
    password_env: str | None = Field(default=None, description="Environment variable holding the broker password.")
    landing_path: Path = Field(description="SQLite file of the landing area (created by the collector).")
    json_topics: list[JsonTopic] = Field(default_factory=list)
    sparkplug_groups: list[str] = Field(
        default_factory=list, description="Sparkplug B group ids to collect (`spBv1.0/<group>/#`)."
    )
    tags: list[MqttTag] = Field(min_length=1)
    publish_interval_s: float = Field(gt=0, description="Expected seconds between two values of a tag.")
    lateness_minutes: int = Field(
        default=10, ge=0, description="An hour is materialized this long after it closes; later messages re-run it."
    )
    heartbeat_max_age_s: float = Field(
        default=60, gt=0, description="The collector is reported down when its last heartbeat is older."
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.match(name):
            raise ValueError(f"instance name {name!r}: use lower-case letters, digits and _ (it becomes a schema)")
        return name

    @model_validator(mode="after")
    def _something_to_collect(self) -> MqttSourceConfig:
        if not self.json_topics and not self.sparkplug_groups:
            raise ValueError(f"MQTT source {self.name!r}: no json_topics and no sparkplug_groups to collect")
        names = [tag.name for tag in self.tags]
        if len(set(names)) != len(names):
            raise ValueError(f"MQTT source {self.name!r}: a tag is listed twice in tags")
        return self

    @property
    def topic_filters(self) -> list[str]:
        return [topic.pattern for topic in self.json_topics] + [f"spBv1.0/{g}/#" for g in self.sparkplug_groups]

    @property
    def endpoint(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def tag_ranges(self) -> dict[str, tuple[float, float]]:
        return {tag.name: (tag.min, tag.max) for tag in self.tags}


def load_mqtt_source(path: str | Path) -> MqttSourceConfig:
    """One MQTT source from its YAML file (a plain mapping, or an instance's defs.yaml); a bad file fails
    naming the file, field and value."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        if isinstance(raw, dict) and "attributes" in raw:
            # An instance's defs.yaml (defs/<site>/<instance>/): the folders name it, as the component does.
            site, instance = Path(path).resolve().parent.parent.name, Path(path).resolve().parent.name
            raw = {key: value for key, value in raw["attributes"].items() if key not in ("owners", "endpoint_env")}
            raw["name"] = f"{site}__{instance}"
        return MqttSourceConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"MQTT source config {path}: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']} (got {e.get('input')!r})"[:300]
            for e in error.errors()
        )
        raise ValueError(f"MQTT source config {path}: {problems}") from None
