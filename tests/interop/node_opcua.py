"""Start the node-opcua interop server (tests/interop/opcua_server) and say what it serves.

Shared by the conformance tests and bench/opcua_interop.py. The npm dependencies are installed
from the lock file on first use (a fresh clone has no node_modules). The expected rows are computed
here from the same spec the server is given, independently of how the server stores them.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from asyncua import ua

SERVER_DIR = Path(__file__).parent / "opcua_server"
NODE_OPCUA_VERSION = json.loads((SERVER_DIR / "package.json").read_text())["dependencies"]["node-opcua"]
NAMESPACE = 1  # node-opcua's own namespace
STARTUP_TIMEOUT_S = 120  # node-opcua loads the standard nodeset (~10 s on a busy 2-core machine)


@dataclass(frozen=True)
class InteropTag:
    """Sample k is stamped start + k * interval_s and worth base + k * step; statuses are rules
    (n, r, code, has_value): samples with k % n == r get that StatusCode (no value if not has_value)."""

    name: str
    data_type: str
    start: datetime
    count: int
    interval_s: int
    base: float
    step: float
    unit: str = "1"
    statuses: tuple[tuple[int, int, int, bool], ...] = ()

    @property
    def node_id(self) -> str:
        return f"ns={NAMESPACE};s={self.name}"

    def spec(self) -> dict:
        return {
            "name": self.name,
            "dataType": self.data_type,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "count": self.count,
            "intervalS": self.interval_s,
            "base": self.base,
            "step": self.step,
            "statuses": [list(rule) for rule in self.statuses],
        }

    def expected(self, start: datetime, end: datetime) -> pd.DataFrame:
        """The rows a correct client stores for [start, end): computed from the rule, not read back."""
        k = np.arange(self.count)
        ts = pd.Timestamp(self.start) + pd.to_timedelta(k * self.interval_s, unit="s")
        inside = (ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))
        k = k[inside]
        codes = np.zeros(len(k), dtype=np.int64)
        has_value = np.ones(len(k), dtype=bool)
        for n, r, code, with_value in reversed(self.statuses):  # the first matching rule wins
            hit = k % n == r
            codes[hit], has_value[hit] = code, with_value
        values = np.where(has_value, self.base + k * self.step, np.nan)
        return pd.DataFrame(
            {"ts": ts[inside], "tag": self.name, "value": values, "unit": self.unit, "status_code": codes}
        ).reset_index(drop=True)


@dataclass
class NodeOpcUaServer:
    endpoint: str
    tags: list[InteropTag]
    max_nodes_per_history_read: int
    users: dict[str, str] = field(default_factory=dict)
    certificate: Path | None = None

    def expected(self, names: list[str], start: datetime, end: datetime) -> pd.DataFrame:
        frames = [tag.expected(start, end) for tag in self.tags if tag.name in names]
        return pd.concat(frames, ignore_index=True).sort_values(["tag", "ts"], ignore_index=True)


def node_missing_reason() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed: the node-opcua conformance suite needs Node.js >= 20"
    return None


def ensure_node_modules(server_dir: Path = SERVER_DIR, package: str = "node-opcua") -> None:
    """`npm ci` from the lock file when node_modules is missing (a fresh clone, CI)."""
    if (server_dir / "node_modules" / package / "package.json").exists():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=server_dir,
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def node_opcua_server(
    tags: list[InteropTag],
    *,
    max_nodes_per_history_read: int = 0,
    security: dict | None = None,
    work_dir: Path | None = None,
) -> Iterator[NodeOpcUaServer]:
    """Run server.js on a free loopback port until the block ends."""
    ensure_node_modules()
    with tempfile.TemporaryDirectory(prefix="node-opcua-") as scratch:
        base = Path(work_dir or scratch)
        port = free_port()
        spec = {
            "port": port,
            "pkiDir": str(base / "pki"),
            "maxNodesPerHistoryReadData": max_nodes_per_history_read,
            "tags": [tag.spec() for tag in tags],
            "security": security or {},
        }
        with node_process(SERVER_DIR, spec, base, f"node-opcua server on port {port}"):
            yield NodeOpcUaServer(
                endpoint=f"opc.tcp://127.0.0.1:{port}/interop",
                tags=list(tags),
                max_nodes_per_history_read=max_nodes_per_history_read,
                users=dict((security or {}).get("users", {})),
            )


@contextmanager
def node_process(server_dir: Path, spec: dict, work_dir: Path, what: str) -> Iterator[None]:
    """`node <server_dir>/server.js <work_dir>/spec.json` until the block ends, once it printed READY;
    its stderr goes to work_dir/server.log and into the error when it never gets ready."""
    (work_dir / "spec.json").write_text(json.dumps(spec))
    with (work_dir / "server.log").open("w+") as log:
        process = subprocess.Popen(
            ["node", str(server_dir / "server.js"), str(work_dir / "spec.json")],
            cwd=server_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            ready, said = _wait_ready(process)
            if not ready:
                log.seek(0)
                raise RuntimeError(f"{what} did not start: {''.join(said)[-1000:]}{log.read()[-2000:]}")
            yield
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen) -> tuple[bool, list[str]]:
    """Wait for the READY line; other stdout lines (node-opcua's warnings) are kept for the error."""
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # keeps draining after READY, so node never blocks on a full pipe
        for line in process.stdout:
            if line.startswith("READY"):
                ready.set()
            elif not ready.is_set():
                lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return ready.wait(STARTUP_TIMEOUT_S), lines


def conformance_tags() -> list[InteropTag]:
    """Six tags, 09:00-11:00 UTC at 10 s *inclusive* (721 samples: the last is exactly at 11:00)."""
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    uncertain, bad = ua.StatusCodes.UncertainLastUsableValue, ua.StatusCodes.BadSensorFailure
    common = {"start": start, "count": 721, "interval_s": 10}
    return [
        InteropTag(
            "Interop.Flow",
            "Double",
            base=100.0,
            step=0.25,
            unit="t/h",
            statuses=((6, 1, uncertain, True), (6, 4, bad, False)),
            **common,
        ),  # fmt: skip
        InteropTag("Interop.Level", "Float", base=10.0, step=0.5, unit="percent", **common),
        InteropTag("Interop.Count", "Int32", base=-5.0, step=1.0, **common),
        InteropTag("Interop.Speed", "UInt16", base=1000.0, step=2.0, unit="rpm", **common),
        InteropTag("Interop.Pressure", "Double", base=-50.0, step=0.125, unit="bar", **common),
        InteropTag(
            "Interop.Temp", "Double", base=20.0, step=0.0625, unit="degC", statuses=((10, 9, bad, False),), **common
        ),  # fmt: skip
    ]


def bench_tags(n_tags: int, interval_s: int, start: datetime, hours: int = 1) -> list[InteropTag]:
    count = hours * 3600 // interval_s + 1
    return [
        InteropTag(
            f"Bench.T{i:03d}", "Double", start=start, count=count, interval_s=interval_s, base=float(i), step=0.001
        )  # fmt: skip
        for i in range(n_tags)
    ]
