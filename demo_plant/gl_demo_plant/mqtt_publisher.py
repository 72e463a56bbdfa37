"""The demo plant's MQTT side: a JSON IoT gateway and a Sparkplug B edge node, with injectable faults.

Values are deterministic functions of (tag, timestamp), so a test knows what the warehouse must hold.
Faults the issue lists: a device death and rebirth (DDEATH, DBIRTH), a seq gap, malformed payloads
(not JSON, a missing field, a non-protobuf Sparkplug payload) and a burst. The edge node answers a
`Node Control/Rebirth` NCMD with new births, as Sparkplug requires.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import threading
import time

import paho.mqtt.client as mqtt

from gl_pipelines.mqtt import sparkplug_b_pb2 as pb
from gl_pipelines.mqtt.sparkplug import NAMESPACE, REBIRTH_METRIC

GATEWAY_SENSORS = {"boiler_temp": (420.0, 15.0), "stack_o2": (4.0, 0.8), "feedwater_flow": (180.0, 12.0)}
"""sensor -> (mean, amplitude) of the JSON gateway's values"""
EDGE_METRICS = {"temperature": (1, 1450.0, 40.0, "degC"), "pressure": (2, 101.0, 3.0, "kPa")}
"""metric -> (alias, mean, amplitude, engUnit) of the Sparkplug device"""
GROUP, NODE, DEVICE = "plant", "edge1", "kiln1"


def demo_value(name: str, ts_ms: int) -> float:
    mean, amplitude = GATEWAY_SENSORS.get(name) or EDGE_METRICS[name][1:3]
    return round(mean + amplitude * math.sin(ts_ms / 600_000 + len(name)), 3)


def gateway_topic(sensor: str) -> str:
    return f"plant/gw1/{sensor}/telemetry"


def gateway_payload(sensor: str, ts_ms: int) -> bytes:
    return json.dumps({"ts": ts_ms, "v": demo_value(sensor, ts_ms)}).encode()


class DemoMqttPlant:
    """Publishes with QoS 1 through one paho client (its own network thread)."""

    def __init__(self, host: str, port: int, client_id: str = "gl-demo-mqtt-plant"):
        self.seq = 0
        self.bd_seq = 0
        self.rebirths_answered = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.will_set(self._topic("NDEATH"), self._death_payload(), qos=1)
        self.client.on_message = self._on_command
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(self._topic("NCMD"), qos=1)

    def close(self, clean: bool = True) -> None:
        """Disconnect (a clean disconnect publishes NDEATH itself, as a Sparkplug node does)."""
        if clean:
            self.client.publish(self._topic("NDEATH"), self._death_payload(), qos=1).wait_for_publish(10)
        self.client.disconnect()
        self.client.loop_stop()

    def _topic(self, kind: str, device: str | None = None) -> str:
        return f"{NAMESPACE}/{GROUP}/{kind}/{NODE}" + (f"/{device}" if device else "")

    def _death_payload(self) -> bytes:
        payload = pb.Payload()
        metric = payload.metrics.add(name="bdSeq", datatype=pb.Int64)
        metric.long_value = self.bd_seq
        return payload.SerializeToString()

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def _send(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def births(self, ts_ms: int) -> None:
        """NBIRTH (seq 0, bdSeq, the rebirth control) then DBIRTH with every metric's alias, type and unit."""
        with self._lock:
            self.seq = 0
            node = pb.Payload(timestamp=ts_ms, seq=self._next_seq())
            node.metrics.add(name="bdSeq", datatype=pb.Int64, long_value=self.bd_seq)
            node.metrics.add(name=REBIRTH_METRIC, datatype=pb.Boolean, boolean_value=False)
            self._send(self._topic("NBIRTH"), node.SerializeToString())
            self.dbirth(ts_ms)

    def dbirth(self, ts_ms: int) -> None:
        device = pb.Payload(timestamp=ts_ms, seq=self._next_seq())
        for name, (alias, _, _, unit) in EDGE_METRICS.items():
            metric = device.metrics.add(name=name, alias=alias, datatype=pb.Double, timestamp=ts_ms)
            metric.double_value = demo_value(name, ts_ms)
            metric.properties.keys.append("engUnit")
            metric.properties.values.add(type=pb.String, string_value=unit)
        self._send(self._topic("DBIRTH", DEVICE), device.SerializeToString())

    def ddata(self, ts_ms: int) -> mqtt.MQTTMessageInfo:
        with self._lock:
            payload = pb.Payload(timestamp=ts_ms, seq=self._next_seq())
            for name, (alias, *_) in EDGE_METRICS.items():
                payload.metrics.add(alias=alias, timestamp=ts_ms, double_value=demo_value(name, ts_ms))
            return self._send(self._topic("DDATA", DEVICE), payload.SerializeToString())

    def gateway(self, ts_ms: int) -> list[mqtt.MQTTMessageInfo]:
        return [self._send(gateway_topic(sensor), gateway_payload(sensor, ts_ms)) for sensor in GATEWAY_SENSORS]

    def tick(self, ts_ms: int) -> mqtt.MQTTMessageInfo:
        """One value of every gateway sensor and every edge metric at `ts_ms`; the last message's info."""
        self.gateway(ts_ms)
        return self.ddata(ts_ms)

    def device_death_and_rebirth(self, death_ms: int, birth_ms: int) -> None:
        with self._lock:
            self._send(
                self._topic("DDEATH", DEVICE), pb.Payload(timestamp=death_ms, seq=self._next_seq()).SerializeToString()
            )
            self.dbirth(birth_ms)

    def seq_gap(self) -> None:
        """Lose one seq number, as when the broker dropped a message: the host must notice and ask for a rebirth."""
        with self._lock:
            self._next_seq()

    def malformed(self) -> list[mqtt.MQTTMessageInfo]:
        return [
            self._send(gateway_topic("boiler_temp"), b"{not json"),
            self._send(gateway_topic("stack_o2"), b'{"ts": 1}'),
            self._send(self._topic("DDATA", DEVICE), b"\xff\xff\xff not protobuf"),
        ]

    def burst(self, count: int, start_ms: int, step_ms: int = 1) -> mqtt.MQTTMessageInfo:
        """`count` gateway messages (boiler_temp) with distinct timestamps, as fast as paho sends them."""
        info = None
        for i in range(count):
            info = self._send(gateway_topic("boiler_temp"), gateway_payload("boiler_temp", start_ms + i * step_ms))
        return info

    def _on_command(self, client, userdata, message) -> None:
        command = pb.Payload.FromString(message.payload)
        if any(m.name == REBIRTH_METRIC and m.boolean_value for m in command.metrics):
            self.rebirths_answered += 1
            self.births(int(time.time() * 1000))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gl_demo_plant.mqtt_publisher", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between two values of a tag")
    parser.add_argument("--fault-every", type=int, default=60, help="inject the next fault every N ticks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    plant = DemoMqttPlant(args.host, args.port)
    plant.births(int(time.time() * 1000))
    faults = [
        lambda now: plant.device_death_and_rebirth(now, now + 1),
        lambda now: plant.seq_gap(),
        lambda now: plant.malformed(),
        lambda now: plant.burst(2000, now - 2000),
    ]
    tick = 0
    try:
        while True:
            now = int(time.time() * 1000)
            plant.tick(now)
            tick += 1
            if tick % args.fault_every == 0:
                faults[(tick // args.fault_every) % len(faults)](now)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        plant.close()


if __name__ == "__main__":
    main()
