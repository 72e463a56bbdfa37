"""JSON topics: topic filter -> tag, value path, timestamp path (or arrival time), unit.

Pure functions of (topic, payload, arrival time): a payload that does not fit its mapping raises
`Malformed` with a reason naming topic, field and value, and the collector quarantines it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

from gl_pipelines.mqtt.config import JsonTopic, MqttSourceConfig
from gl_pipelines.mqtt.landing import Reading


class Malformed(ValueError):
    """A payload that cannot be landed as readings; its message is the quarantine reason."""


def filter_regex(pattern: str) -> re.Pattern[str]:
    """The regex of an MQTT topic filter (`+` one level, `#` the rest)."""
    parts = []
    for level in pattern.split("/"):
        parts.append("[^/]*" if level == "+" else ".*" if level == "#" else re.escape(level))
    return re.compile("/".join(parts).replace("/.*", "(?:/.*)?") + "$")


class JsonTopics:
    """Decodes the JSON topics of one source; the first mapping whose filter matches wins."""

    def __init__(self, source: MqttSourceConfig):
        self._mappings = [(filter_regex(topic.pattern), topic) for topic in source.json_topics]
        self._units = {tag.name: tag.unit for tag in source.tags}

    def mapping(self, topic: str) -> JsonTopic | None:
        for regex, mapping in self._mappings:
            if regex.match(topic):
                return mapping
        return None

    def decode(self, mapping: JsonTopic, topic: str, payload: bytes, received_us: int) -> list[Reading]:
        try:
            document = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Malformed(f"not JSON: {error}") from None
        try:
            tag = mapping.tag.format(*topic.split("/"))
        except IndexError:
            raise Malformed(f"tag template {mapping.tag!r} needs more levels than topic {topic!r} has") from None
        value = _number(_at(document, mapping.value_path), mapping.value_path)
        ts = received_us if mapping.timestamp_path is None else _timestamp(document, mapping.timestamp_path)
        unit = mapping.unit or self._units.get(tag)
        if unit is None:
            raise Malformed(f"tag {tag!r} has no unit: give the mapping a unit or list the tag in tags")
        return [(ts, tag, value, unit, "good")]


def _at(document: object, path: str) -> object:
    node = document
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise Malformed(f"field {path!r} missing")
        node = node[key]
    return node


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"field {path!r} is {value!r}, not a number")
    if not math.isfinite(value):
        raise Malformed(f"field {path!r} is {value!r}, not a finite number")
    return float(value)


def _timestamp(document: object, path: str) -> int:
    """Epoch milliseconds, or ISO-8601 with a UTC offset (a naive time is ambiguous: refused)."""
    raw = _at(document, path)
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise Malformed(f"field {path!r} is {raw!r}, not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise Malformed(f"field {path!r} is {raw!r}, a time without UTC offset")
        return int(moment.timestamp() * 1_000_000)
    return int(_number(raw, path) * 1000)
