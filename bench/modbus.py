"""ModbusResource against demo Modbus servers in their own processes: planned reads and concurrency.

In one run this script measures, each best of 5 with the order alternating between repetitions:

- `requests_1000_contiguous`: requests the resource issues for one device with a 1,000-register
  contiguous map (uint16 and float32 points, 504 of them), as counted by the resource and by the server;
- `planned_vs_naive`: wall time of that planned read ÷ a naive loop over the same map with plain
  pymodbus, one request per point, decoded the same way;
- `concurrent_vs_serial_devices`: 20 meters (3 requests each), each its own Modbus TCP server on its
  own port as separate meters on a plant network are, read with the resource's default concurrency ÷
  the same resource with `max_connections_in_flight=1` (one device after another). With it,
  `loopback_cpu_floor`: the CPU seconds of 100 serial polls (reader + servers) spread over every
  core, per wall second of them, the lowest ratio this machine allows over loopback.

Warm, the headline: every side reads the way a run that reads more than once does. The resource reads
inside `session()` (one event loop and one open connection per device across reads, as in a Dagster
run between setup and teardown) and the naive loop reuses one pymodbus client on one event loop, both
opened before the timed repetitions. Cold (loopback only, in `cold`): every read opens its own event
loop and connection, the resource outside a session and the naive loop under `asyncio.run` with a fresh
client, as the figures before connection reuse were measured.

Servers are `DemoModbusServer`s spread over several processes (`--server-processes`), so that the
read side, not one Python process answering for all 20 meters, is what the concurrency figure
measures. Wall clock is what the ratios use; CPU seconds of the reader and of the servers are printed
alongside.

Each ratio is measured twice: on plain loopback (the figure's `value`), where a round trip costs
about 0.1 ms and CPU is all there is to measure, and again (`with_device_latency`) against servers
that hold every answer for `--device-latency-ms` (default 5 ms; `DemoModbusServer.response_delay_s`),
the order of time a real meter takes to answer; planning and concurrency exist to save exactly that time.

Run: `python bench/modbus.py`. Prints one JSON object per figure per line and writes them to
bench/results/modbus.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from _common import Samples, emit, quiet

BENCH = "modbus"
REPEATS = 5
FLOOR_POLLS = 100
N_FLEET = 20


def big_map(name: str):
    """The 1,000-register contiguous map the figure names."""
    from gl_demo_plant.register_maps import contiguous_1000

    return contiguous_1000(name)


def fleet_meter(name: str):
    """A typical power meter: 30 float32 measurements, 4 uint64 energy totalizers, a status bit: 3 requests."""
    from gl_pipelines.config import ModbusDevice, ModbusPoint

    points = [
        ModbusPoint(name=f"{name}.M{i:02d}", table="input", address=2 * i, type="float32", unit="1", min=0, max=1000)
        for i in range(30)
    ]
    points += [
        ModbusPoint(
            name=f"{name}.E{i}",
            table="holding",
            address=100 + 4 * i,
            type="uint64",
            scale=0.01,
            unit="kW*h",
            totalizer=True,
        )
        for i in range(4)
    ]
    points.append(ModbusPoint(name=f"{name}.Running", table="coil", address=0, type="bool", unit="dimensionless"))
    return ModbusDevice(name=name, host="127.0.0.1", device_id=1, points=points)


def serve(latency_s: float) -> None:
    """Child process: per source read from stdin, two DemoModbusServers on free ports, one answering at
    once and one `latency_s` late.

    Prints {"direct": ports, "delayed": ports}, then answers each `stats` line on stdin with the
    requests each direct server saw; stops at end of input.
    """
    from gl_demo_plant.modbus_server import DemoModbusServer
    from gl_pipelines.config import ModbusSource

    async def run() -> None:
        sources = [ModbusSource.model_validate(raw) for raw in json.loads(sys.stdin.readline())]
        direct = [DemoModbusServer(source, port=0) for source in sources]
        delayed = [DemoModbusServer(source, port=0, response_delay_s=latency_s) for source in sources]
        for server in direct + delayed:
            await server.start()
        print(json.dumps({"direct": [s.port for s in direct], "delayed": [s.port for s in delayed]}), flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "stats":
            print(json.dumps([server.stats.requests for server in direct]), flush=True)
        for server in direct + delayed:
            await server.stop()

    asyncio.run(run())


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    ports: dict[str, list[int]]

    def requests(self) -> list[int]:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


@contextmanager
def server_process(sources, latency_ms: float):
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--device-latency-ms", str(latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        proc.stdin.write(json.dumps([source.model_dump(mode="json") for source in sources]) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Modbus server process exited with {proc.wait()}")
        yield ServerProcess(proc, json.loads(line))
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def naive_read(client, device) -> int:
    """What a first script does: one request per point, one after another, each decoded."""
    from gl_pipelines.resources.modbus_codec import decode_registers

    values = {}
    for point in device.points:
        reply = await client.read_holding_registers(
            point.address, count=point.register_count, device_id=device.device_id
        )
        values[point.name] = decode_registers(reply.registers, point.type, point.byte_order, point.word_order)
    return len(values)


async def naive_client(device):
    """A plain pymodbus client, connected."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient(device.host, port=device.port, timeout=device.timeout_s)
    if not await client.connect():
        raise RuntimeError(f"naive client cannot connect to {device.host}:{device.port}")
    return client


async def naive_read_cold(device) -> int:
    """The naive loop on a connection of its own, opened and closed around the read."""
    client = await naive_client(device)
    try:
        return await naive_read(client, device)
    finally:
        client.close()


def timed(fn, *args) -> tuple[float, float, object]:
    """(wall seconds, this process's CPU seconds, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(server_processes: int, latency_ms: float) -> None:
    quiet()
    import psutil

    from gl_pipelines.config import ModbusSource
    from gl_pipelines.resources.modbus import ModbusResource

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    big = big_map("Big")
    fleet = [fleet_meter(f"Meter{i:02d}") for i in range(N_FLEET)]
    groups = [fleet[i::server_processes] for i in range(server_processes)]
    with ExitStack() as stack:
        big_server = stack.enter_context(server_process([ModbusSource(devices=[big])], latency_ms))
        fleet_servers = [
            stack.enter_context(server_process([ModbusSource(devices=[device]) for device in group], latency_ms))
            for group in groups
        ]
        servers = [psutil.Process(s.proc.pid) for s in [big_server, *fleet_servers]]
        cold = ModbusResource(devices_json="[]", source_name="bench-modbus")
        cold_serial = ModbusResource(devices_json="[]", source_name="bench-modbus", max_connections_in_flight=1)
        concurrent = stack.enter_context(cold.model_copy().session())
        serial = stack.enter_context(cold_serial.model_copy().session())
        naive_loop = stack.enter_context(asyncio.Runner())
        runs = {}
        for mode in ("direct", "delayed"):
            big_here = big.model_copy(update={"port": big_server.ports[mode][0]})
            ports = {
                device.name: port
                for server, group in zip(fleet_servers, groups, strict=True)
                for device, port in zip(group, server.ports[mode], strict=True)
            }
            fleet_here = [device.model_copy(update={"port": ports[device.name]}) for device in fleet]

            client = naive_loop.run(naive_client(big_here))
            stack.callback(client.close)
            runs |= {
                (mode, "planned"): lambda device=big_here: concurrent.read_points([device]),
                (mode, "naive"): lambda device=big_here, client=client: naive_loop.run(naive_read(client, device)),
                (mode, "concurrent"): lambda devices=fleet_here: concurrent.read_points(devices),
                (mode, "serial"): lambda devices=fleet_here: serial.read_points(devices),
            }
            if mode == "direct":
                runs |= {
                    (mode, "planned_cold"): lambda device=big_here: cold.read_points([device]),
                    (mode, "naive_cold"): lambda device=big_here: asyncio.run(naive_read_cold(device)),
                    (mode, "concurrent_cold"): lambda devices=fleet_here: cold.read_points(devices),
                    (mode, "serial_cold"): lambda devices=fleet_here: cold_serial.read_points(devices),
                }
        samples = {key: Samples() for key in runs}
        expected = {way: len(big.points) for way in ("planned", "naive", "planned_cold", "naive_cold")} | {
            way: N_FLEET * len(fleet[0].points) for way in ("concurrent", "serial", "concurrent_cold", "serial_cold")
        }

        def measure(key: tuple[str, str]) -> None:
            server_cpu = sum(sum(p.cpu_times()[:2]) for p in servers)
            wall, cpu, out = timed(runs[key])
            good = out if isinstance(out, int) else int((out.frame["quality"] == "good").sum())
            if good != expected[key[1]]:
                raise RuntimeError(f"{key}: {good} good values, expected {expected[key[1]]}")
            got = samples[key]
            got.wall.append(wall)
            got.cpu.append(cpu)
            got.server_cpu.append(sum(sum(p.cpu_times()[:2]) for p in servers) - server_cpu)

        for run in runs.values():  # warm-up, untimed: imports and first connections
            run()
        # Requests counted by both sides, outside the timed reads (asking the server process is a pipe round trip).
        before = big_server.requests()[0]
        snapshot = concurrent.read_points([big.model_copy(update={"port": big_server.ports["direct"][0]})])
        resource_count, server_count = snapshot.requests, big_server.requests()[0] - before
        order = list(runs)
        for rep in range(REPEATS):
            for key in order if rep % 2 == 0 else order[::-1]:
                measure(key)
        # The loopback floor: CPU (reader + servers) of FLOOR_POLLS serial polls in a row, spread over
        # every core, per wall second of them. A single poll is too short for the OS's 10 ms CPU ticks.
        server_cpu = sum(sum(p.cpu_times()[:2]) for p in servers)
        wall, cpu, _ = timed(lambda: [runs["direct", "serial"]() for _ in range(FLOOR_POLLS)])
        server_cpu = sum(sum(p.cpu_times()[:2]) for p in servers) - server_cpu
        floor = {
            "loopback_cpu_floor": round((cpu + server_cpu) / (os.cpu_count() or 1) / wall, 3),
            "floor_polls": FLOOR_POLLS,
            "serial_poll_ms": round(1000 * wall / FLOOR_POLLS, 2),
            "reader_cpu_ms_per_poll": round(1000 * cpu / FLOOR_POLLS, 2),
            "server_cpu_ms_per_poll": round(1000 * server_cpu / FLOOR_POLLS, 2),
        }

    context = {
        "stat": f"best wall of {REPEATS}; cpu = least CPU seconds of the reader / of all server processes",
        "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }

    def ratio(figure: str, ours: str, baseline: str, target: str, **extra) -> dict:
        def measured(mode: str) -> dict:
            best = samples[mode, ours].best / samples[mode, baseline].best
            return {
                "value": round(best, 3),
                ours: samples[mode, ours].summary(),
                baseline: samples[mode, baseline].summary(),
            }

        direct = measured("direct")
        cold_ours, cold_baseline = samples["direct", f"{ours}_cold"], samples["direct", f"{baseline}_cold"]
        return {
            "figure": figure,
            "value": direct.pop("value"),
            "unit": "ratio",
            "target": target,
            **extra,
            "reads": "warm: resource in session(), naive on one open client; loopback",
            **direct,
            "with_device_latency": {"latency_ms": latency_ms, **measured("delayed")},
            "cold": {
                "reads": "every read opens and closes its own event loop and connection; loopback",
                "value": round(cold_ours.best / cold_baseline.best, 3),
                ours: cold_ours.summary(),
                baseline: cold_baseline.summary(),
            },
            **context,
        }

    emit(
        BENCH,
        [
            {
                "figure": "requests_1000_contiguous",
                "value": resource_count,
                "unit": "requests",
                "target": "== 8",
                "server_counted": server_count,
                "registers": 1000,
                "points": len(big.points),
            },
            ratio("planned_vs_naive", "planned", "naive", "<= 0.05", naive_requests=len(big.points)),
            ratio(
                "concurrent_vs_serial_devices",
                "concurrent",
                "serial",
                "<= 0.3",
                devices=N_FLEET,
                layout=f"{N_FLEET} servers on {N_FLEET} ports (one device each) in {server_processes} processes",
                requests_per_device=3,
                **floor,
            ),
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-processes", type=int, default=4, help="processes the 20 meters' servers share")
    parser.add_argument("--device-latency-ms", type=float, default=5.0, help="answer delay of the second measurement")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.device_latency_ms / 1000)
    else:
        main(args.server_processes, args.device_latency_ms)
