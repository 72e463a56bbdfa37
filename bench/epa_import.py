"""EPA hourly import throughput and memory, and the Appendix G check, on the real Idaho 2017-2018 files.

Figures:
- `epa_import_rows_per_second`: rows of the 24 monthly zips (140,160 unit-hours) ÷ wall time of
  `read_epa_hourly` (best of `--repeat`), with every check of the importer on;
- `epa_import_baseline_rows_per_second`: the same zips read by `pandas.read_csv` alone (no checks, no
  renaming), the floor a checking importer is measured against, in the same run;
- `epa_import_peak_mib`: peak resident memory an import adds, measured in a fresh process (its peak
  RSS after the import minus its RSS before, with the modules already loaded); beside it the peak of
  Python/numpy allocations (tracemalloc) and of Arrow's memory pool, and `epa_import_input_mib` (the
  zips' uncompressed CSV bytes);
- `app_g_max_abs_diff_tons`: the largest |G-4 CO2 - EPA CO2| over every operating hour of the 8 Idaho
  gas units (target <= 0.05, the files' rounding), with the hour it happens first and how many reach it.

Run: `python bench/epa_import.py [--repeat 3]`. Prints one JSON object per figure per line and writes
them to bench/results/epa_import.jsonl.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from gl_pipelines.cems.epa_campd import read_epa_hourly  # noqa: E402
from gl_pipelines.cems.fuel_based import FC_G4_SCF_PER_MMBTU, co2_tons_g4  # noqa: E402
from tests.epa_data import EPA_DIR  # noqa: E402

IDAHO = sorted((EPA_DIR / "hourly_idaho_2017_2018").glob("epacems*id*.zip"))


def baseline(paths: list[Path]) -> int:
    rows = 0
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                rows += len(pd.read_csv(io.BytesIO(archive.read(name)), dtype=str, keep_default_na=False))
    return rows


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def measure_memory() -> None:
    """In this (fresh) process: RSS before, peak RSS after one import, tracemalloc and Arrow peaks; JSON."""
    import pyarrow as pa

    before = _rss_mib()
    read_epa_hourly(IDAHO)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    arrow = pa.default_memory_pool().max_memory()
    tracemalloc.start()  # after the RSS peak is taken: tracing costs memory of its own
    read_epa_hourly(IDAHO)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss_before": before, "rss_peak": peak, "traced": traced / 2**20, "arrow": arrow / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        measure_memory()
        return
    if len(IDAHO) != 24:
        raise SystemExit(f"needs the 24 Idaho zips in {EPA_DIR / 'hourly_idaho_2017_2018'}")
    input_bytes = sum(len(zipfile.ZipFile(p).read(n)) for p in IDAHO for n in zipfile.ZipFile(p).namelist())

    timings, base_timings = [], []
    for _ in range(args.repeat):
        began = time.perf_counter()
        epa = read_epa_hourly(IDAHO)
        timings.append(time.perf_counter() - began)
        began = time.perf_counter()
        base_rows = baseline(IDAHO)
        base_timings.append(time.perf_counter() - began)
    rows = len(epa)
    assert rows == base_rows == 140_160, (rows, base_rows)

    probe = subprocess.run([sys.executable, __file__, "--memory-only"], capture_output=True, text=True, check=True)
    memory = json.loads(probe.stdout.strip().splitlines()[-1])

    operating = epa[epa["heat_input_mmbtu"] > 0].reset_index(drop=True)
    diff = np.abs(
        co2_tons_g4(operating["heat_input_mmbtu"], FC_G4_SCF_PER_MMBTU["natural_gas"]) - operating["co2_mass_tons"]
    )
    worst = operating[diff > diff.max() - 1e-9].sort_values("hour_start_lst")
    first = worst.iloc[0]
    load = os.getloadavg()[0]
    emit(
        "epa_import",
        [
            {
                "figure": "epa_import_rows_per_second",
                "value": round(rows / min(timings), 0),
                "unit": "rows/s",
                "rows": rows,
                "best_s": round(min(timings), 3),
                "runs_s": [round(t, 3) for t in timings],
                "load_1min": load,
            },
            {
                "figure": "epa_import_baseline_rows_per_second",
                "value": round(rows / min(base_timings), 0),
                "unit": "rows/s",
                "best_s": round(min(base_timings), 3),
                "what": "pandas.read_csv of the same zips, no checks",
            },
            {
                "figure": "epa_import_peak_mib",
                "value": round(memory["rss_peak"] - memory["rss_before"], 1),
                "unit": "MiB",
                "how": "fresh process: peak RSS after one import - RSS before it",
                "rss_before_mib": round(memory["rss_before"], 1),
                "tracemalloc_peak_mib": round(memory["traced"], 1),
                "arrow_pool_peak_mib": round(memory["arrow"], 1),
            },
            {"figure": "epa_import_input_mib", "value": round(input_bytes / 2**20, 1), "unit": "MiB"},
            {
                "figure": "app_g_max_abs_diff_tons",
                "value": round(float(diff.max()), 6),
                "unit": "short tons",
                "target": 0.05,
                "hours_compared": len(operating),
                "hours_at_max": len(worst),
                "first_worst_hour": f"{first['facility_id']}:{first['unit_id']} {first['hour_start_lst']} LST, "
                f"heat input {first['heat_input_mmbtu']} mmBtu, EPA {first['co2_mass_tons']} t",
            },
        ],
    )


if __name__ == "__main__":
    main()
