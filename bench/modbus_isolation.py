"""What isolating illegal addresses costs in requests (issue 13): `modbus_isolation_requests`.

A device with a 1,000-point map (uint16 at holding 0..999, so the minimal plan is 8 requests of 125)
of which 3 configured addresses, spread through it, do not exist on the device: the demo Modbus server
answers 2 (ILLEGAL DATA ADDRESS) to any read that covers one (`ModbusFaults.illegal_addresses`).
Measured in one run, each counted by the resource and by the server:

- `first_hour`: the first read, which finds them: every refused block is narrowed down by halves;
- `next_hour`: the next read of the same resource, which remembers them and plans around them;
- `baseline`: the same map on a device without the illegal addresses (the minimal plan).

The figure's `value` is next_hour ÷ baseline; all three counts are printed. Each read is also timed
against servers that hold every answer `--device-latency-ms` (default 5 ms), the order of a real
meter's answer time; the good points are checked (997 of 1,000 after isolation, 1,000 in the baseline).
Before isolation, the three refused blocks cost all their points: that count is taken from the plan.

Run: `python bench/modbus_isolation.py`. Prints one JSON object per line and writes
bench/results/modbus_isolation.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _common import emit, quiet

BENCH = "modbus_isolation"
ILLEGAL = (137, 512, 871)
POINTS = 1000


def main(latency_ms: float) -> None:
    quiet()
    from gl_demo_plant.modbus_server import ThreadedDemoModbusServer
    from gl_pipelines.config import ModbusDevice, ModbusPoint, ModbusSource
    from gl_pipelines.resources.modbus import ModbusResource
    from gl_pipelines.resources.modbus_plan import plan_reads

    began = time.perf_counter()
    points = [ModbusPoint(name=f"M.R{a}", table="holding", address=a, type="uint16", unit="1") for a in range(POINTS)]
    holed = ModbusDevice(name="holed", host="127.0.0.1", device_id=1, points=points)
    clean = holed.model_copy(update={"name": "clean", "device_id": 2})
    source = ModbusSource(devices=[holed, clean])
    results = {}
    with ThreadedDemoModbusServer(source=source, port=0, response_delay_s=latency_ms / 1000) as server:
        server.faults.illegal_addresses["holed"] = {("holding", a) for a in ILLEGAL}
        here = [d.model_copy(update={"port": server.port}) for d in (holed, clean)]
        resource = ModbusResource(devices_json="[]", source_name="bench-modbus")
        for label, device in (("first_hour", here[0]), ("next_hour", here[0]), ("baseline", here[1])):
            before = server.stats.requests_by_device.get(device.name, 0)
            wall = time.perf_counter()
            snapshot = resource.read_points([device])
            wall = time.perf_counter() - wall
            good = int((snapshot.frame["quality"] == "good").sum())
            expected = POINTS if label == "baseline" else POINTS - len(ILLEGAL)
            if good != expected:
                raise RuntimeError(f"{label}: {good} good points, expected {expected}")
            results[label] = {
                "requests": snapshot.requests,
                "server_counted": server.stats.requests_by_device.get(device.name, 0) - before,
                "good_points": good,
                "wall_s": round(wall, 4),
                "refused": [str(r) for r in snapshot.refused.get(device.name, ())],
            }
    refused_blocks = [b for b in plan_reads(points) if any(b.address <= a < b.end for a in ILLEGAL)]
    emit(
        BENCH,
        [
            {
                "figure": "modbus_isolation_requests",
                "value": round(results["next_hour"]["requests"] / results["baseline"]["requests"], 3),
                "unit": "ratio (requests, remembered ÷ minimal plan without the illegal addresses)",
                "target": "report",
                "points": POINTS,
                "illegal_addresses": [f"holding {a}" for a in ILLEGAL],
                "first_hour_vs_baseline": round(results["first_hour"]["requests"] / results["baseline"]["requests"], 3),
                **results,
                "without_isolation_bad_points": sum(len(b.points) for b in refused_blocks),
                "device_latency_ms": latency_ms,
                "cpus": os.cpu_count(),
            }
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device-latency-ms", type=float, default=5.0, help="answer delay of the demo server")
    main(parser.parse_args().device_latency_ms)
