"""`gl-mqtt-collector`: subscribe with QoS 1 on a persistent session and land every message before its PUBACK.

Delivery guarantee (QoS 1, `clean_session=False`, fixed client id): at least once from the broker,
exactly once into the landing area. paho normally acknowledges a QoS 1 message as soon as its
`on_message` returns, which under aiomqtt is when the message is queued, before any handler ran.
We switch paho to manual acknowledgement, decode a batch, commit it to SQLite (fsync'd), and only
then send the batch's PUBACKs. A crash before the commit: the broker still holds the messages and
resends them. A crash after it, before the PUBACKs: the broker resends them with DUP set and the
same packet ids, and `LandingStore.is_redelivery` skips them. While the collector is down the broker
queues the session's messages (up to its `max_queued_messages`: see the README).

aiomqtt owns the connection (asyncio socket integration, subscribe/publish). Two of its private
attributes are used on purpose, tested against aiomqtt 2.5 and paho 2.2: `_client` (the paho client, for
`manual_ack_set` and an `on_message` that keeps paho's DUP flag, which aiomqtt's Message drops,
without a task per message) and `_disconnected` (the future aiomqtt resolves when the connection
drops); and one of paho's, `_packet_queue`, to write a batch's PUBACKs as one buffer. paho also reads the
socket through `_ReadAhead` (one large read instead of three small ones per message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import struct
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from gl_pipelines.mqtt.config import MqttSourceConfig, load_mqtt_source
from gl_pipelines.mqtt.json_topics import JsonTopics, Malformed
from gl_pipelines.mqtt.landing import Batch, LandingStore
from gl_pipelines.mqtt.sparkplug import NAMESPACE, MalformedWithRebirth, SparkplugDecoder, rebirth_request

log = logging.getLogger("gl_pipelines.mqtt.collector")

BATCH_MAX = 20_000
"""Messages per transaction: large enough to amortise the fsync, small enough to keep PUBACKs flowing."""
HEARTBEAT_S = 5.0
MAX_BACKOFF_S = 30.0
READ_AHEAD = 256 * 1024
"""Bytes per socket read. paho reads a packet with three recv() calls (type, length, body) and aiomqtt
runs one event-loop pass per packet: ~3 syscalls and an epoll per message, most of the collector's time."""
REBIRTH_THROTTLE_S = 10.0
"""One rebirth request per edge node in this time: a gap storm must not flood the node with NCMDs."""


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    retain: bool


class _ReadAhead:
    """The connection's socket with paho's small reads served from one large read. `pending()` is what paho
    and aiomqtt ask a TLS socket for bytes it holds; aiomqtt's reader keeps calling paho while it is > 0,
    so buffered packets are all handled in the same pass instead of waiting for the next epoll."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self._data = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._data):
            self._data, self._at = self._sock.recv(READ_AHEAD), 0  # BlockingIOError passes through to paho
            if not self._data:
                return b""
        chunk = self._data[self._at : self._at + size]
        self._at += len(chunk)
        return chunk

    def pending(self) -> int:
        return len(self._data) - self._at

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


_PUBACK = struct.Struct("!BBH")  # MQTT 3.1.1 §3.4: type 4, remaining length 2, packet id


def _acknowledge(paho, messages: list[Inbound]) -> None:
    """The PUBACKs of a landed batch as one write. `paho.ack()` queues each as its own packet, which aiomqtt
    turns into a write registration and a `send()` per message."""
    acks = b"".join(_PUBACK.pack(0x40, 2, message.mid) for message in messages if message.qos == 1)
    if acks:
        paho._packet_queue(0x40, acks, 0, 0)


def _read_ahead(paho) -> None:
    """Make paho read through `_ReadAhead`, before aiomqtt registers the socket with the event loop."""
    register = paho.on_socket_open

    def on_socket_open(client, userdata, sock) -> None:
        client._sock = _ReadAhead(sock)
        register(client, userdata, client._sock)

    paho.on_socket_open = on_socket_open


class Collector:
    def __init__(self, source: MqttSourceConfig, batch_max: int = BATCH_MAX):
        self.source = source
        self.batch_max = batch_max
        self.store = LandingStore(source.landing_path)
        self.json = JsonTopics(source)
        units = {tag.name: tag.unit for tag in source.tags}
        self.sparkplug = SparkplugDecoder(units, self.store.load_state("sparkplug"))
        self.inbox: deque[Inbound] = deque()
        self.received = self.skipped_redeliveries = self.quarantined = 0
        self._rebirth_sent: dict[str, float] = {}
        self._wake: asyncio.Event | None = None

    def process(self, messages: list[Inbound], received_us: int) -> tuple[Batch, set[str]]:
        """Decode `messages` into one batch; returns it and the edge nodes to ask for a rebirth.
        Never raises for a bad payload: it is quarantined with its reason."""
        batch, rebirths = Batch(received_at=received_us), set()
        for message in messages:
            key = hashlib.blake2b(message.topic.encode() + b"\0" + message.payload, digest_size=16).digest()
            if message.qos and self.store.is_redelivery(message.mid, key, message.dup):
                self.skipped_redeliveries += 1
                continue
            if message.qos:
                batch.keys[message.mid] = key
            if message.retain:
                # Sent because we (re)subscribed, not because it was published now: a replay of a value
                # the topic's publisher sent earlier, possibly already landed.
                batch.events.append((received_us, "retained_skipped", message.topic, "retained message not landed"))
                continue
            try:
                batch.readings += self._decode(message, received_us, batch, rebirths)
            except MalformedWithRebirth as error:
                rebirths.add(error.edge)
                batch.quarantined.append((message.topic, str(error), message.payload))
            except Malformed as error:
                batch.quarantined.append((message.topic, str(error), message.payload))
            except Exception as error:  # a decoder bug must cost one message, never the collector
                log.exception("decoding %s failed", message.topic)
                batch.quarantined.append(
                    (message.topic, f"decoder error {type(error).__name__}: {error}", message.payload)
                )
        if self.sparkplug.changed:
            batch.state, self.sparkplug.changed = self.sparkplug.state, False
        self.quarantined += len(batch.quarantined)
        self.received += len(messages)
        return batch, rebirths

    def _decode(self, message: Inbound, received_us: int, batch: Batch, rebirths: set[str]):
        if message.topic.startswith(NAMESPACE + "/"):
            decoded = self.sparkplug.decode(message.topic, message.payload, received_us)
            batch.events += [(received_us, kind, message.topic, detail) for kind, detail in decoded.events]
            if decoded.rebirth_node:
                rebirths.add(decoded.rebirth_node)
            return decoded.readings
        mapping = self.json.mapping(message.topic)
        if mapping is None:
            raise Malformed("no json_topics mapping matches this topic")
        return self.json.decode(mapping, message.topic, message.payload, received_us)

    def _on_message(self, client, userdata, message) -> None:
        # Runs on the event loop's thread (aiomqtt reads the socket from the loop).
        self.inbox.append(
            Inbound(message.topic, message.payload, message.mid, message.qos, message.dup, message.retain)
        )
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop` is set, reconnecting with exponential backoff."""
        self._wake = asyncio.Event()
        backoff = 1.0
        while not stop.is_set():
            client = aiomqtt.Client(
                self.source.host,
                self.source.port,
                identifier=self.source.client_id,
                clean_session=False,
                keepalive=30,
                **_credentials(self.source),
            )
            paho = client._client
            paho.manual_ack_set(True)  # before connecting: queued messages arrive right after CONNACK
            paho.on_message = self._on_message
            _read_ahead(paho)
            try:
                async with client:
                    for topic_filter in self.source.topic_filters:
                        await client.subscribe(topic_filter, qos=1)
                    log.info("connected to %s as %s", self.source.endpoint, self.source.client_id)
                    self.store.set_status(True, f"connected to {self.source.endpoint}")
                    backoff = 1.0
                    await self._pump(client, paho, stop)
            except aiomqtt.MqttError as error:
                await self._drain(paho)  # what arrived before the drop: landed now, its PUBACKs are lost
                detail = f"broker {self.source.endpoint}: {error}; reconnecting in {backoff:g} s"
                log.warning(detail)
                self.store.set_status(False, detail)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self.store.set_status(False, "collector stopped")

    async def _pump(self, client: aiomqtt.Client, paho, stop: asyncio.Event) -> None:
        beat = time.monotonic()
        while not stop.is_set():
            if not self.inbox:
                self._wake.clear()
                # Woken by a message or by stop; the timeout keeps the heartbeat and the disconnect check going.
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
            disconnected = client._disconnected
            if disconnected.done():
                raise aiomqtt.MqttError(f"disconnected: {disconnected.exception() or 'by the broker'}")
            rebirths = await self._drain(paho)
            for edge in rebirths:
                if time.monotonic() - self._rebirth_sent.get(edge, -REBIRTH_THROTTLE_S) >= REBIRTH_THROTTLE_S:
                    self._rebirth_sent[edge] = time.monotonic()
                    await client.publish(*rebirth_request(edge, int(time.time() * 1000)), qos=0)
                    log.info("asked %s to rebirth", edge)
            if time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                self.store.set_status(
                    True,
                    f"connected to {self.source.endpoint}; {self.received} messages received, "
                    f"{self.quarantined} quarantined, {self.skipped_redeliveries} redeliveries skipped",
                )
        await self._drain(paho)

    async def _drain(self, paho) -> set[str]:
        """Land everything in the inbox, batch by batch, acknowledging each batch once it is on disk."""
        rebirths: set[str] = set()
        while self.inbox:
            messages = [self.inbox.popleft() for _ in range(min(self.batch_max, len(self.inbox)))]
            batch, wanted = self.process(messages, time.time_ns() // 1000)
            await asyncio.to_thread(self.store.land, batch)
            _acknowledge(paho, messages)
            rebirths |= wanted
        return rebirths


def _credentials(source: MqttSourceConfig) -> dict[str, str]:
    """Username and password from the environment variables the config names (never from the file)."""
    credentials = {}
    for key, variable in (("username", source.username_env), ("password", source.password_env)):
        if variable:
            if variable not in os.environ:
                raise SystemExit(f"MQTT source {source.name!r}: environment variable {variable} is not set")
            credentials[key] = os.environ[variable]
    return credentials


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gl-mqtt-collector", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, required=True, help="YAML file of one MQTT source")
    parser.add_argument("--port", type=int, help="broker port (overrides the file; the demo and tests)")
    parser.add_argument("--landing", type=Path, help="landing SQLite file (overrides the file)")
    parser.add_argument("--batch-max", type=int, default=BATCH_MAX)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    source = load_mqtt_source(args.config)
    update = {key: value for key, value in (("port", args.port), ("landing_path", args.landing)) if value}
    source = source.model_copy(update=update)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        collector = Collector(source, args.batch_max)
        try:
            await collector.run(stop)
        finally:
            collector.store.close()

    asyncio.run(_main())


if __name__ == "__main__":
    main()
