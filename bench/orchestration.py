"""How long the orchestration ticks take: `source_health` over 50 sources, the hourly schedule, one bare probe.

Five demo plants run in their own processes; 50 `OpcUaResource`s (`opcua_01`..`opcua_50`) are spread over
them, and 5 of the 50 point at closed loopback ports (down sources must be reported, not stall the tick).
The sensor comes from `build_source_health_sensor`, the schedule from the project's own `build_definitions`;
both are evaluated as the daemon does: a fresh context per tick (`build_sensor_context` /
`build_schedule_context`) and `evaluate_tick`, with the sensor's cursor carried from tick to tick. The
baseline, in the same run, is one bare `OpcUaResource.health_check()` against a healthy plant.

Run: `python bench/orchestration.py`. Prints one JSON object per figure per line and writes them to
bench/results/orchestration.jsonl.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import demo_plant, emit, free_port, quiet, site_config

BENCH = "orchestration"
N_PLANTS = 5
N_SOURCES = 50
N_DOWN = 5
TICKS = 7


def timed(fn, repeats: int) -> tuple[list[float], list]:
    walls, results = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        results.append(fn())
        walls.append(time.perf_counter() - began)
    return walls, results


def main() -> None:
    quiet()
    from dagster import (
        AssetKey,
        Definitions,
        build_schedule_context,
        build_sensor_context,
        define_asset_job,
        instance_for_test,
    )

    from gl_pipelines.assets.partitions import site_hourly_partitions
    from gl_pipelines.components.site_file import build_definitions
    from gl_pipelines.resources.opcua import OpcUaResource
    from gl_pipelines.sensors.health import MonitoredSource, build_source_health_sensor

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    with ExitStack() as stack:
        endpoints = [stack.enter_context(demo_plant())[0] for _ in range(N_PLANTS)]
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        instance = stack.enter_context(instance_for_test())
        site = site_config(endpoints[0], 0, boiler=True)
        defs = build_definitions(site, tmp / "w.duckdb")
        timezone = site.site.timezone
        hourly = site_hourly_partitions(timezone)

        # Every 10th source points at a port nobody listens on.
        keys = [f"opcua_{i:02d}" for i in range(1, N_SOURCES + 1)]
        down_keys = set(keys[9::10][:N_DOWN])
        resources = {
            key: OpcUaResource(
                endpoint=f"opc.tcp://127.0.0.1:{free_port()}/gone" if key in down_keys else endpoints[i % N_PLANTS],
                source_name=key,
            )
            for i, key in enumerate(keys)
        }
        job = define_asset_job("scada_fleet_job", selection="scada_readings")
        sensor_def = build_source_health_sensor(
            [MonitoredSource(key, AssetKey("scada_readings"), job, hourly) for key in keys]
        )
        fleet = Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=[job],
            sensors=[sensor_def],
            resources={**defs.resources, **resources},
        )
        fleet_repo = fleet.get_repository_def()
        cursor: str | None = None
        # Where a tick's time goes: Dagster building the context's resources (the first access to
        # `context.resources` initializes all of them; the tick then reuses them), and the rest.
        init_walls: dict[str, list[float]] = {"sensor": [], "schedule": []}

        def init_resources(context, kind: str) -> None:
            began = time.perf_counter()
            _ = context.resources
            init_walls[kind].append(time.perf_counter() - began)

        def sensor_tick():
            nonlocal cursor
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources=resources, repository_def=fleet_repo
            )
            init_resources(context, "sensor")
            tick = sensor_def.evaluate_tick(context)
            cursor = tick.cursor
            return tick

        # One untimed tick first: imports, the instance's first queries, and the first down_since in the cursor.
        warm = sensor_tick()
        init_walls["sensor"].clear()
        sensor_walls, sensor_ticks = timed(sensor_tick, TICKS)
        state = json.loads(cursor or "{}")
        reported_down = sorted(key for key, value in state.items() if value["down_since"])
        skip = sensor_ticks[-1].skip_message or ""
        print(f"# {BENCH}: sensor first tick {warm.skip_message[:160] if warm.skip_message else warm}", flush=True)
        if reported_down != sorted(down_keys) or any(tick.run_requests for tick in sensor_ticks):
            raise RuntimeError(f"unexpected sensor outcome: down {reported_down}, skip {skip[:300]}")

        schedule_def = defs.resolve_schedule_def("scada_hourly_job_schedule")
        repo = defs.get_repository_def()
        opcua = defs.resources["opcua"]
        when = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=1)

        def schedule_tick():
            context = build_schedule_context(
                instance=instance, scheduled_execution_time=when, resources={"opcua": opcua}, repository_def=repo
            )
            init_resources(context, "schedule")
            return schedule_def.evaluate_tick(context)

        schedule_tick()
        init_walls["schedule"].clear()
        schedule_walls, schedule_ticks = timed(schedule_tick, TICKS)
        requested = [r.partition_key for r in schedule_ticks[-1].run_requests or []]
        if len(requested) != 1:
            raise RuntimeError(f"schedule tick requested {requested}: {schedule_ticks[-1].skip_message}")

        healthy = OpcUaResource(endpoint=endpoints[0])
        healthy.health_check()
        probe_walls, probes = timed(healthy.health_check, TICKS)
        if not all(p.ok for p in probes):
            raise RuntimeError(f"bare probe failed: {probes[-1]}")
        dead = OpcUaResource(endpoint=f"opc.tcp://127.0.0.1:{free_port()}/gone")
        dead_walls, _ = timed(dead.health_check, TICKS)

    def ms(walls: list[float]) -> list[float]:
        return [round(w, 4) for w in walls]

    sensor_median = statistics.median(sensor_walls)
    probe_median = statistics.median(probe_walls)
    common = {"ticks": TICKS, "stat": "median of 7 after one warm-up", "loadavg_1m": [load_before, os.getloadavg()[0]]}
    emit(
        BENCH,
        [
            {
                "figure": "tick_seconds_50_sources",
                "value": round(sensor_median, 3),
                "unit": "s",
                "target": "< 1",
                "sources": N_SOURCES,
                "down": N_DOWN,
                "plants": N_PLANTS,
                "tick_s": ms(sensor_walls),
                "vs_probe": round(sensor_median / probe_median, 1),
                "resources_init_s": round(statistics.median(init_walls["sensor"]), 3),
                "probes_if_sequential_s": round(sum(probe_walls) / len(probe_walls) * (N_SOURCES - N_DOWN), 3),
                "skip_message_head": skip[:120],
                **common,
            },
            {
                "figure": "schedule_tick_seconds",
                "value": round(statistics.median(schedule_walls), 3),
                "unit": "s",
                "target": None,
                "tick_s": ms(schedule_walls),
                "run_request_partition": requested[0],
                "vs_probe": round(statistics.median(schedule_walls) / probe_median, 2),
                "resources_init_s": round(statistics.median(init_walls["schedule"]), 3),
                **common,
            },
            {
                "figure": "health_probe_seconds",
                "value": round(probe_median, 4),
                "unit": "s",
                "target": None,
                "probe_s": ms(probe_walls),
                "down_probe_s": ms(dead_walls),
                "role": "baseline: one bare OpcUaResource.health_check(), healthy plant; down_probe_s: closed port",
                **common,
            },
        ],
    )
    print(f"# {BENCH}: total {time.perf_counter() - began:.1f} s", flush=True)


if __name__ == "__main__":
    main()
