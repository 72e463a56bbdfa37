"""Sparkplug B (v1.0 topic namespace `spBv1.0/...`): births, aliases, data, deaths and seq numbers.

A data message names its metrics by alias only, so decoding is stateful: NBIRTH/DBIRTH bind aliases
to names and datatypes; NDEATH/DDEATH make the node's/device's metrics bad (one `bad` row per metric
at the death's time) until the next birth; every message but NDEATH carries a seq 0..255 that must
follow the previous one, and a gap is recorded and answered with a rebirth request. The state is a
plain dict persisted with each batch (landing.py), so a restarted collector decodes redelivered data
exactly as before. Payloads are decoded by protobuf from Eclipse Tahu's published sparkplug_b.proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from gl_pipelines.mqtt import sparkplug_b_pb2 as pb
from gl_pipelines.mqtt.json_topics import Malformed
from gl_pipelines.mqtt.landing import Reading

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
_PROTOCOL_METRICS = ("bdSeq", "Node Control/", "Device Control/")
"""Sparkplug's own session and command metrics: not measurements, never landed as readings."""
_SIGNED_BITS = {1: 8, 2: 16, 3: 32, 4: 64}  # Int8..Int64 travel as unsigned two's complement
_INT_FIELD = {1: "int_value", 2: "int_value", 3: "int_value", 5: "int_value", 6: "int_value", 7: "int_value"}
_VALUE_FIELD = {
    **_INT_FIELD,
    4: "long_value",
    8: "long_value",
    9: "float_value",
    10: "double_value",
    11: "boolean_value",
    13: "long_value",  # DateTime: epoch ms, kept as a number
}
"""Numeric datatypes; strings, datasets, templates, bytes and arrays do not fit the long schema's DOUBLE."""


@dataclass
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    """(kind, detail): birth, death, seq_gap, stale_death, unstored_metrics"""
    rebirth_node: str | None = None
    """`group/node` whose edge node should be asked to rebirth"""


def _signed(value: int, datatype: int) -> int:
    bits = _SIGNED_BITS.get(datatype)
    if bits and value >= 1 << (bits - 1):
        return value - (1 << bits)
    return value


def _quality(metric) -> str:
    """OPC-style `Quality` property (192 good, 64..191 uncertain, below bad) as many edge nodes send it."""
    if not metric.HasField("properties"):
        return "good"
    for key, value in zip(metric.properties.keys, metric.properties.values, strict=False):
        if key == "Quality":
            code = value.int_value or value.long_value
            return "good" if code >= 192 else "uncertain" if code >= 64 else "bad"
    return "good"


def _eng_unit(metric) -> str | None:
    if metric.HasField("properties"):
        for key, value in zip(metric.properties.keys, metric.properties.values, strict=False):
            if key == "engUnit":
                return value.string_value
    return None


class SparkplugDecoder:
    """Decodes Sparkplug B messages of the configured groups against the births it has seen."""

    def __init__(self, units: dict[str, str], state: dict | None = None):
        self._units = units
        self.state: dict = state or {}
        """{"group/node": {"seq": int, "bd_seq": int, "dead": bool, "scopes": {"" or device:
        {"dead": bool, "metrics": {alias-or-name: [name, datatype, unit]}}}}}"""
        self.changed = False

    def decode(self, topic: str, payload: bytes, received_us: int) -> Decoded:
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != NAMESPACE:
            raise Malformed(f"not a Sparkplug B topic: {topic!r}")
        group, kind, node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else ""
        if kind in ("NCMD", "DCMD", "STATE"):
            return Decoded()  # commands (our own rebirth requests among them) carry no measurements
        try:
            message = pb.Payload.FromString(payload)
        except DecodeError as error:
            raise Malformed(f"not a Sparkplug B payload: {error}") from None
        edge = f"{group}/{node}"
        ts = message.timestamp * 1000 if message.HasField("timestamp") else received_us
        if kind == "NDEATH":
            return self._node_death(edge, message, ts)
        decoded = Decoded()
        self._check_seq(edge, kind, message, decoded)
        if kind in ("NBIRTH", "DBIRTH"):
            self._birth(edge, device, kind, message, decoded)
        elif kind == "DDEATH":
            decoded.readings += self._death_rows(edge, device, ts)
            decoded.events.append(("death", f"DDEATH {edge}/{device}: its metrics are bad until DBIRTH"))
            return decoded
        elif kind not in ("NDATA", "DDATA"):
            raise Malformed(f"unknown Sparkplug message type {kind!r}")
        node_state = self.state.get(edge)
        scope = node_state["scopes"].get(device) if node_state else None
        if scope is None:
            raise MalformedWithRebirth(f"{kind} from {edge}/{device or '-'} before its birth; rebirth requested", edge)
        dead = node_state["dead"] or scope["dead"]
        for metric in message.metrics:
            known = scope["metrics"].get(str(metric.alias) if metric.HasField("alias") else metric.name)
            if known is None:
                raise MalformedWithRebirth(
                    f"{kind} from {edge}/{device or '-'}: metric {metric.name or metric.alias!r} not in its birth; "
                    "rebirth requested",
                    edge,
                )
            name, datatype, unit = known
            reading = self._reading(node, device, name, metric, datatype, unit, ts)
            if reading is not None:
                decoded.readings.append(reading if not dead else (*reading[:4], "bad"))
        return decoded

    def _reading(self, node: str, device: str, name: str, metric, datatype: int, unit: str, ts: int):
        field_name = _VALUE_FIELD.get(metric.datatype or datatype)
        if field_name is None or name.startswith(_PROTOCOL_METRICS):
            return None
        tag = f"{node}/{device}/{name}" if device else f"{node}/{name}"
        at = metric.timestamp if metric.HasField("timestamp") else None
        when = at * 1000 if at is not None else ts
        if metric.is_null or not metric.HasField(field_name):
            return (when, tag, None, self._units.get(tag, unit), "bad")
        value = float(_signed(getattr(metric, field_name), metric.datatype or datatype))
        return (when, tag, value, self._units.get(tag, unit), _quality(metric))

    def _check_seq(self, edge: str, kind: str, message, decoded: Decoded) -> None:
        node_state = self.state.get(edge)
        if kind == "NBIRTH" or node_state is None or node_state.get("seq") is None:
            return
        expected = (node_state["seq"] + 1) % 256
        if message.seq != expected:
            decoded.events.append(("seq_gap", f"{edge}: expected seq {expected}, got {message.seq} ({kind})"))
            decoded.rebirth_node = edge
        node_state["seq"] = message.seq
        self.changed = True

    def _birth(self, edge: str, device: str, kind: str, message, decoded: Decoded) -> None:
        if kind == "NBIRTH":
            bd_seq = next((m.long_value for m in message.metrics if m.name == "bdSeq"), None)
            self.state[edge] = {"seq": message.seq, "bd_seq": bd_seq, "dead": False, "scopes": {}}
        elif edge not in self.state:
            raise MalformedWithRebirth(f"DBIRTH from {edge}/{device} before NBIRTH; rebirth requested", edge)
        metrics, unstored = {}, []
        for metric in message.metrics:
            entry = [metric.name, metric.datatype, _eng_unit(metric) or ""]
            metrics[metric.name] = entry
            if metric.HasField("alias"):
                metrics[str(metric.alias)] = entry
            if metric.datatype not in _VALUE_FIELD:
                unstored.append(metric.name)
        self.state[edge]["scopes"][device] = {"dead": False, "metrics": metrics}
        self.changed = True
        decoded.events.append(("birth", f"{kind} {edge}/{device or '-'}: {len(message.metrics)} metrics"))
        if unstored:
            decoded.events.append(("unstored_metrics", f"{edge}/{device or '-'} non-numeric, not stored: {unstored}"))

    def _node_death(self, edge: str, message, ts: int) -> Decoded:
        node_state = self.state.get(edge)
        bd_seq = next((m.long_value for m in message.metrics if m.name == "bdSeq"), None)
        if node_state is None or (bd_seq is not None and bd_seq != node_state.get("bd_seq")):
            return Decoded(events=[("stale_death", f"NDEATH {edge} bdSeq {bd_seq} is not the live session's")])
        decoded = Decoded(events=[("death", f"NDEATH {edge}: all its metrics are bad until NBIRTH")])
        for device in list(node_state["scopes"]):
            decoded.readings += self._death_rows(edge, device, ts)
        node_state["dead"] = True
        self.changed = True
        return decoded

    def _death_rows(self, edge: str, device: str, ts: int) -> list[Reading]:
        scope = self.state.get(edge, {}).get("scopes", {}).get(device)
        if scope is None:
            return []
        scope["dead"] = True
        self.changed = True
        node = edge.split("/", 1)[1]
        names = {entry[0]: entry for entry in scope["metrics"].values()}
        rows = []
        for name, (_, datatype, unit) in sorted(names.items()):
            if datatype in _VALUE_FIELD and not name.startswith(_PROTOCOL_METRICS):
                tag = f"{node}/{device}/{name}" if device else f"{node}/{name}"
                rows.append((ts, tag, None, self._units.get(tag, unit), "bad"))
        return rows


class MalformedWithRebirth(Malformed):
    """Data that cannot be decoded without a birth we do not have: quarantined, and the node asked to rebirth."""

    def __init__(self, reason: str, edge: str):
        super().__init__(reason)
        self.edge = edge


def rebirth_request(edge: str, now_ms: int) -> tuple[str, bytes]:
    """The NCMD topic and payload asking edge node `group/node` to publish its births again."""
    group, node = edge.split("/", 1)
    payload = pb.Payload(timestamp=now_ms)
    metric = payload.metrics.add()
    metric.name = REBIRTH_METRIC
    metric.datatype = pb.Boolean
    metric.boolean_value = True
    return f"{NAMESPACE}/{group}/NCMD/{node}", payload.SerializeToString()
