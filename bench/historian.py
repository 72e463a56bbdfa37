"""HistorianResource against the demo PI Web API in its own process: throughput and concurrency.

500 synthetic tags x 1 day at 1-minute resolution (720,000 recorded values), read with the
resource's own request plan (`--tags-per-request` WebIds per streamset call, the day split into
`--window-hours` windows). In one run, best of `--repeats` with the order alternating:

- `historian_values_per_second`: values per wall second of the concurrent read (loopback);
- `historian_concurrent_vs_sequential`: wall time with `max_in_flight=8` ÷ the same plan with
  `max_in_flight=1` (one request at a time). `value` is measured on plain loopback, where every
  request costs only CPU (the server's JSON encoding and our parsing, on a shared 2-core box);
  `with_server_latency` repeats it against a second server process that holds each data request
  for `--latency-s` (default 0.5 s), the order of time a PI Data Archive takes to read ~9,000
  archived values. Overlapping that waiting is what concurrency is for. `loopback_cpu_floor` is
  the lowest loopback ratio this machine allows: the CPU seconds of a one-at-a-time read (ours
  plus the server's) spread over all cores, divided by its wall time.

WebIds are resolved once per resource before timing (the resource caches them per run).
Run: `python bench/historian.py`. Prints one JSON line per figure; writes bench/results/historian.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psutil
from _common import emit, free_port, quiet, started_process

N_TAGS = 500
DAY = (datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC))
EXPECTED_VALUES = N_TAGS * 1440
CORES = os.cpu_count() or 1


@contextmanager
def pi_service(latency_s: float, timeout_s: float = 60.0):
    """The demo PI Web API in its own process on a free port; yields (base URL, pid)."""
    port = free_port()
    command = [sys.executable, "-m", "gl_demo_plant.pi_web_api", "--port", str(port)]
    command += ["--synthetic-tags", str(N_TAGS), "--sample-interval-s", "60", "--latency-s", str(latency_s)]
    with started_process(command, "pi web api ready", timeout_s) as (proc, _):
        yield f"http://127.0.0.1:{port}/piwebapi", proc.pid


def measure(url: str, server_pid: int, args: argparse.Namespace, repeats: int) -> dict[str, list[float]]:
    """Per mode: wall seconds of each read, and the CPU seconds it cost here and in the server."""
    from gl_pipelines.resources.historian import HistorianResource, PiTag

    server = psutil.Process(server_pid)

    resources = {
        mode: HistorianResource(
            base_url=url,
            source_name="bench-pi",
            data_server="DEMO-PI",
            max_in_flight=in_flight,
            tags_per_request=args.tags_per_request,
            window_hours=args.window_hours,
            read_timeout_s=120,
        )
        for mode, in_flight in (("concurrent", args.max_in_flight), ("sequential", 1))
    }
    tags = [PiTag(f"Synthetic.T{i:04d}", f"\\\\DEMO-PI\\Synthetic.T{i:04d}", "percent") for i in range(1, N_TAGS + 1)]
    for resource in resources.values():  # resolve and cache the WebIds outside the timed reads
        resource.read_recorded(tags, DAY[0], DAY[0] + timedelta(minutes=1))
    walls: dict[str, list[float]] = {mode: [] for mode in resources}
    for rep in range(repeats):
        order = list(resources) if rep % 2 == 0 else list(reversed(resources))
        for mode in order:
            cpu, server_cpu, began = time.process_time(), sum(server.cpu_times()[:2]), time.perf_counter()
            read = resources[mode].read_recorded(tags, *DAY)
            walls[mode].append(time.perf_counter() - began)
            walls.setdefault(f"{mode}_cpu", []).append(time.process_time() - cpu)
            walls.setdefault(f"{mode}_server_cpu", []).append(sum(server.cpu_times()[:2]) - server_cpu)
            if len(read.frame) != EXPECTED_VALUES or read.frame["value"].isna().any():
                raise RuntimeError(f"{mode}: read {len(read.frame)} values, expected {EXPECTED_VALUES}")
            walls.setdefault(f"{mode}_requests", []).append(read.requests)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-repeats", type=int, default=2)
    parser.add_argument("--latency-s", type=float, default=0.5)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--tags-per-request", type=int, default=25)
    parser.add_argument("--window-hours", type=float, default=6)
    args = parser.parse_args()
    quiet()
    for name in ("GL_HISTORIAN_URL", "GL_HISTORIAN_PASSWORD", "GL_HISTORIAN_TOKEN", "GL_HISTORIAN_CLIENT_SECRET"):
        os.environ.pop(name, None)

    with pi_service(0.0) as (url, pid):
        loopback = measure(url, pid, args, args.repeats)
    with pi_service(args.latency_s) as (url, pid):
        latency = measure(url, pid, args, args.latency_repeats)

    def ratio(walls: dict[str, list[float]]) -> float:
        return round(min(walls["concurrent"]) / min(walls["sequential"]), 3)

    def cpu_floor(walls: dict[str, list[float]]) -> float:
        """The lowest ratio two cores allow when a read is only CPU: its CPU seconds (ours + the
        server's) spread over both cores, divided by the one-at-a-time wall time, per repetition."""
        return round(
            min(
                (cpu + server) / CORES / wall
                for cpu, server, wall in zip(
                    walls["sequential_cpu"], walls["sequential_server_cpu"], walls["sequential"], strict=True
                )
            ),
            3,
        )

    plan = {
        "tags": N_TAGS,
        "values": EXPECTED_VALUES,
        "requests_per_read": loopback["concurrent_requests"][0],
        "tags_per_request": args.tags_per_request,
        "window_hours": args.window_hours,
        "max_in_flight": args.max_in_flight,
    }
    emit(
        "historian",
        [
            {
                "figure": "historian_values_per_second",
                "value": round(EXPECTED_VALUES / min(loopback["concurrent"]), 1),
                "unit": "values/s",
                "with_server_latency": round(EXPECTED_VALUES / min(latency["concurrent"]), 1),
                **plan,
            },
            {
                "figure": "historian_concurrent_vs_sequential",
                "value": ratio(loopback),
                "unit": "ratio",
                "target": "<= 0.3",
                "loopback_cpu_floor": cpu_floor(loopback),
                "cores": CORES,
                "with_server_latency": ratio(latency),
                "server_latency_s": args.latency_s,
                "loopback_s": {k: [round(x, 3) for x in v] for k, v in loopback.items() if "requests" not in k},
                "latency_s": {k: [round(x, 3) for x in v] for k, v in latency.items() if "requests" not in k},
                **plan,
            },
        ],
    )


if __name__ == "__main__":
    main()
