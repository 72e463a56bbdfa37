"""Code-location load time with many declared instances: 5 sites x 10 OPC UA instances (12 tags each),
generated into a temporary dg project, against the same project with one instance.

Each load runs in a fresh interpreter (as a code server does on a reload) and times, after the imports,
`load_from_defs_folder` plus resolving the repository (asset graph, jobs, schedules, sensors); best of 3.
Prints `load_seconds_50_instances` (seconds) and `load_vs_one_instance` (ratio), appends both to
bench/results/load_defs.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.components.project import OPCUA, SITE, write_project  # noqa: E402

RESULTS = REPO / "bench" / "results" / "load_defs.jsonl"
SITES, PER_SITE, TAGS, REPEATS = 5, 10, 12, 3
TIMEZONES = ("America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "UTC")
TIMED = """
import sys, time, warnings
warnings.filterwarnings("ignore")
from pathlib import Path
import dagster as dg
from gl_pipelines.components.shared import shared_definitions
import gl_pipelines.components.opcua
start = time.perf_counter()
defs = dg.Definitions.merge(dg.load_from_defs_folder(path_within_project=Path(sys.argv[1])),
                            shared_definitions(Path(sys.argv[1]) / "w.duckdb"))
repository = defs.get_repository_def()
repository.asset_graph.get_all_asset_keys()
jobs = repository.get_all_jobs()
print(time.perf_counter() - start, len(repository.asset_graph.get_all_asset_keys()), len(jobs))
"""


def instance_yaml(site: int, unit: int) -> str:
    tags = "".join(
        f'    - {{name: U{unit}.T{tag}, node_id: "ns=2;s=Site{site}.U{unit}.T{tag}", unit: degC, min: 0, max: 500}}\n'
        for tag in range(TAGS)
    )
    head = OPCUA.format(endpoint=f"opc.tcp://10.0.{site}.{unit + 1}:4840/plant")
    return head[: head.index("  tags:\n")] + "  tags:\n" + tags


def project(root: Path, sites: int, per_site: int) -> Path:
    files = {}
    for site in range(sites):
        files[f"site{site}/site/defs.yaml"] = SITE.format(timezone=TIMEZONES[site % len(TIMEZONES)])
        for unit in range(per_site):
            files[f"site{site}/unit{unit}/defs.yaml"] = instance_yaml(site, unit)
    return write_project(root, files)[0]


def best_load(root: Path) -> tuple[float, int, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", TIMED, str(root)], env=env, capture_output=True, text=True, check=True
        )
        seconds, assets, jobs = out.stdout.split()
        runs.append((float(seconds), int(assets), int(jobs)))
    return min(runs)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        many = best_load(project(Path(folder) / "many", SITES, PER_SITE))
        one = best_load(project(Path(folder) / "one", 1, 1))
    context = {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2), "stat": f"best of {REPEATS}"}
    figures = [
        {
            "bench": "load_defs",
            "figure": "load_seconds_50_instances",
            "value": round(many[0], 3),
            "unit": "s",
            "target": "report",
            "instances": SITES * PER_SITE,
            "assets": many[1],
            "jobs": many[2],
            **context,
        },
        {
            "bench": "load_defs",
            "figure": "load_vs_one_instance",
            "value": round(many[0] / one[0], 2),
            "unit": "ratio",
            "target": "report",
            "one_instance_s": round(one[0], 3),
            **context,
        },
    ]
    with RESULTS.open("a") as results:
        for figure in figures:
            print(json.dumps(figure))
            results.write(json.dumps(figure) + "\n")


if __name__ == "__main__":
    main()
