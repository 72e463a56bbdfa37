"""The MQTT collector against a private Mosquitto: sustained landing rate, and losses under a kill.

In one run:

- `mqtt_messages_per_second`: N small JSON messages (`{"ts": ..., "v": ...}`, ~35 bytes) are queued by
  the broker for the collector's persistent session while it is down, then the collector (its own
  process, as deployed) drains them into the landing area: decoded, committed with fsync, then
  acknowledged. Rate = messages ÷ seconds from the first landed row to the last. Best of `--repeat`.
- `mqtt_vs_bare_subscriber`: that rate ÷ the rate of a bare aiomqtt subscriber draining the same
  queued messages the same way (auto PUBACK, no decoding, nothing written): what durability costs.
- `mqtt_lost_messages` and `mqtt_duplicated_messages`: a burst of `--kill-burst` messages, the collector
  SIGKILLed once 10 % of it landed and restarted; expected − distinct landed, and landed − distinct.

Run: `python bench/mqtt.py`. Prints one JSON object per figure per line and writes them to
bench/results/mqtt.jsonl. Needs `mosquitto` and `mosquitto_pub` (Debian packages mosquitto and
mosquitto-clients); the broker is configured as the README asks of a plant's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt  # noqa: E402
from _common import emit  # noqa: E402

from gl_demo_plant.mqtt_broker import CollectorProcess, PrivateMosquitto, wait_for  # noqa: E402
from gl_pipelines.mqtt.config import DEMO_MQTT_CONFIG, load_mqtt_source  # noqa: E402
from gl_pipelines.mqtt.landing_reader import landed_rows, read_table  # noqa: E402

TOPIC = "plant/gw1/boiler_temp/telemetry"


def _lines(count: int, first_ms: int) -> list[str]:
    return [json.dumps({"ts": first_ms + i, "v": round(400 + (i % 997) / 10, 1)}) for i in range(count)]


def _source(broker: PrivateMosquitto, folder: Path, client_id: str):
    return load_mqtt_source(DEMO_MQTT_CONFIG).model_copy(
        update={"port": broker.port, "landing_path": folder / f"{client_id}.sqlite", "client_id": client_id}
    )


def collector_rate(broker: PrivateMosquitto, folder: Path, count: int, run: int) -> float:
    source = _source(broker, folder, f"bench-collector-{run}")
    collector = CollectorProcess(source, folder)
    collector.start()
    collector.stop()  # the broker now keeps a persistent session for it
    broker.publish_lines(TOPIC, _lines(count, 1_796_000_000_000))
    collector.start()
    wait_for(lambda: landed_rows(source.landing_path) > 0, 60, "first landed row")
    first = time.perf_counter()
    landed_at_first = landed_rows(source.landing_path)
    wait_for(lambda: landed_rows(source.landing_path) >= count, 300, f"{count} landed rows")
    elapsed = time.perf_counter() - first
    collector.stop()
    return (count - landed_at_first) / elapsed


def bare_rate(broker: PrivateMosquitto, count: int, run: int) -> float:
    async def drain() -> float:
        identifier = f"bench-bare-{run}"
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=identifier, clean_session=False) as client:
            await client.subscribe(TOPIC, qos=1)
        await asyncio.to_thread(broker.publish_lines, TOPIC, _lines(count, 1_796_000_000_000))
        received, first = 0, None
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=identifier, clean_session=False) as client:
            async for _ in client.messages:
                if first is None:
                    first = time.perf_counter()
                received += 1
                if received == count:
                    break
        return (count - 1) / (time.perf_counter() - first)

    return asyncio.run(drain())


def kill_restart(broker: PrivateMosquitto, folder: Path, count: int) -> tuple[int, int, int]:
    """(lost, duplicated, landed before the kill)"""
    source = _source(broker, folder, "bench-kill")
    collector = CollectorProcess(source, folder).start()
    burst = threading.Thread(target=broker.publish_lines, args=(TOPIC, _lines(count, 1_797_000_000_000)))
    burst.start()
    wait_for(lambda: landed_rows(source.landing_path) >= count // 10, 120, "10 % of the burst")
    collector.kill()
    at_kill = landed_rows(source.landing_path)
    burst.join()
    collector.start()
    wait_for(lambda: landed_rows(source.landing_path) >= count, 300, "the whole burst")
    time.sleep(2)  # anything still arriving would be a duplicate
    collector.stop()
    landed = read_table(source.landing_path, "readings", ["ts"])
    distinct = landed["ts"].nunique()
    return count - distinct, len(landed) - distinct, at_kill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--kill-burst", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder, PrivateMosquitto() as broker:
        ours, bare = [], []
        for run in range(args.repeat):
            # Alternate the order so neither side always gets the warmer broker.
            if run % 2:
                bare.append(bare_rate(broker, args.messages, run))
                ours.append(collector_rate(broker, Path(folder), args.messages, run))
            else:
                ours.append(collector_rate(broker, Path(folder), args.messages, run))
                bare.append(bare_rate(broker, args.messages, run))
        lost, duplicated, at_kill = kill_restart(broker, Path(folder), args.kill_burst)
    note = f"load average {load:.2f} at start; {args.messages} messages, best of {args.repeat}"
    emit(
        "mqtt",
        [
            {
                "figure": "mqtt_messages_per_second",
                "value": round(max(ours)),
                "unit": "msg/s",
                "target": ">= 20000",
                "runs": [round(rate) for rate in ours],
                "note": note,
            },
            {
                "figure": "mqtt_vs_bare_subscriber",
                "value": round(max(ours) / max(bare), 3),
                "unit": "ratio",
                "bare_msg_per_s": [round(rate) for rate in bare],
                "note": note,
            },
            {
                "figure": "mqtt_lost_messages",
                "value": lost,
                "unit": "messages",
                "target": "0",
                "note": f"{args.kill_burst}-message burst, SIGKILL after {at_kill} landed, then restart",
            },
            {"figure": "mqtt_duplicated_messages", "value": duplicated, "unit": "messages", "target": "0"},
        ],
    )


if __name__ == "__main__":
    main()
