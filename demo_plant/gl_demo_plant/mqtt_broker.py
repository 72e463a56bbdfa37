"""A private Mosquitto broker and the collector as a process, for tests and benches on loopback.

The machine's broker (127.0.0.1:1883) keeps Mosquitto's defaults: at most 1000 queued messages per
offline persistent session and 20 in flight, which a burst during a collector restart exceeds. This
one is configured as the README tells a plant to configure theirs (no queue limit, 1000 in flight).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from gl_pipelines.mqtt.config import MqttSourceConfig
from gl_pipelines.mqtt.landing import read_status

BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 1000
"""
PUBLISH_CHUNK = 10_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateMosquitto:
    """`with PrivateMosquitto() as broker:` runs `mosquitto` on a free loopback port (`broker.port`)."""

    def __init__(self) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed (Debian package mosquitto)")
        self.port = _free_port()
        self._folder = tempfile.TemporaryDirectory(prefix="gl-mosquitto-")
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> PrivateMosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._folder.cleanup()

    def start(self) -> PrivateMosquitto:
        config = Path(self._folder.name) / "mosquitto.conf"
        config.write_text(BROKER_CONFIG.format(port=self.port))
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _port_open(self.port), 10, f"mosquitto on port {self.port}")
        return self

    def stop(self) -> None:
        """Stop the broker (an outage); `start` brings it back on the same port."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)

    def publish_lines(self, topic: str, lines: list[str]) -> None:
        """Publish one QoS 1 message per line through `mosquitto_pub` (C: ~10x a Python publisher), in
        chunks: fed 100,000 lines at once, mosquitto_pub 2.0 delivered 34,477 of them (seen here)."""
        for first in range(0, len(lines), PUBLISH_CHUNK):
            subprocess.run(
                ["mosquitto_pub", "-p", str(self.port), "-q", "1", "-t", topic, "-l"],
                input="\n".join(lines[first : first + PUBLISH_CHUNK]).encode(),
                check=True,
                timeout=120,
            )


class CollectorProcess:
    """`gl-mqtt-collector` for `source` in its own process (killable like the real service)."""

    def __init__(self, source: MqttSourceConfig, folder: Path, batch_max: int | None = None) -> None:
        self.source = source
        self.config = folder / f"{source.name}-collector.yaml"
        self.config.write_text(yaml.safe_dump(source.model_dump(mode="json")))
        self.batch_max = batch_max
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30) -> CollectorProcess:
        started = time.time()
        command = [sys.executable, "-m", "gl_pipelines.mqtt.collector", "--config", str(self.config)]
        if self.batch_max:
            command += ["--batch-max", str(self.batch_max)]
        self.process = subprocess.Popen(
            command, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, stderr=subprocess.DEVNULL
        )

        def ready() -> bool:
            status = read_status(self.source.landing_path)
            return status is not None and status.connected and status.heartbeat >= started

        wait_for(ready, timeout_s, f"collector {self.source.client_id} connected")
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, as when the host loses power."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(condition, timeout_s: float, what: str) -> None:
    """Poll `condition` until true; a TimeoutError names `what`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.05)
