"""ErpResource against the demo SAP OData service in its own process: a year of 200,000 goods receipts.

In one run, best of `--repeats` with the order alternating:

- `erp_rows_per_second`: rows per wall second of `ErpResource.read` for the plant year (posting-date
  $filter, $select, $top windows of `--top` fetched concurrently, each following the server's
  `__next` pages of `--server-page`), typed to UTC dates and exact DECIMAL(18,3); pages fetched
  printed alongside;
- `erp_resource_vs_raw_next`: that wall time ÷ a raw baseline in the same run: plain httpx following
  `__next` one page after another with the same query, JSON parsed, nothing typed or checked.

Run: `python bench/erp.py`. Prints one JSON object per figure per line and writes them to
bench/results/erp.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from _common import Samples, emit, quiet, started_process

BENCH = "erp"
N_DOCUMENTS = 200_000
YEAR = ("2025-01-01T06:00:00", "2026-01-01T06:00:00")  # plant year 2025 in America/Chicago, as UTC


@contextmanager
def odata_service(server_page: int):
    """The demo ERP in its own process, 200,000 receipts over the year; yields (root URL, pid)."""
    interval = (datetime.fromisoformat(YEAR[1]) - datetime.fromisoformat(YEAR[0])).total_seconds() / N_DOCUMENTS
    command = [
        sys.executable,
        "-m",
        "gl_demo_plant.sap_odata",
        "--port",
        "0",
        "--page-size",
        str(server_page),
    ]
    command += ["--receipt-interval-s", repr(interval), "--start", YEAR[0], "--end", YEAR[1]]
    with started_process(command, "sap odata ready on", timeout_s=60) as (proc, line):
        yield line.split("ready on ")[1].split(" ")[0], proc.pid


def raw_next(root: str, query: dict) -> tuple[int, int]:
    """Baseline: one page after another through `__next`, JSON parsed, rows kept as dicts."""
    import httpx

    from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TOKEN_PATH

    origin = root.split("/sap/")[0]
    with httpx.Client(timeout=60) as client:
        token = client.post(
            origin + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        rows, pages = [], 0
        url, params = root + "GoodsReceiptSet", query
        while url:
            body = client.get(url, params=params, headers=headers).json()["d"]
            rows += body["results"]
            pages += 1
            url, params = body.get("__next"), None
    return len(rows), pages


def main(repeats: int, server_page: int, top: int) -> None:
    quiet()
    import psutil

    from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TOKEN_PATH, metadata_xml
    from gl_pipelines.assets.erp import entity_query
    from gl_pipelines.config import load_site_config
    from gl_pipelines.resources.erp import ErpResource
    from gl_pipelines.resources.odata import parse_metadata, window_filter

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    site = load_site_config()
    query = entity_query("fuel_receipts", site.erp.fuel_receipts)
    window = tuple(datetime.fromisoformat(b).replace(tzinfo=UTC) for b in YEAR)
    with odata_service(server_page) as (root, pid):
        server = psutil.Process(pid)
        resource = ErpResource(
            base_url=root,
            source_name="bench-erp",
            auth_mode="oauth2",
            token_url=root.split("/sap/")[0] + TOKEN_PATH,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            page_size=top,
            timezone=site.site.timezone,
            read_timeout_s=120,
        )
        entity = parse_metadata(metadata_xml())["GoodsReceiptSet"]
        raw_query = {
            "$format": "json",
            "$select": ",".join(dict.fromkeys(query.fields.values())),
            "$filter": f"{query.filter} and "
            + window_filter(entity.properties["PostingDate"], *window, ZoneInfo(site.site.timezone)),
        }
        samples = {"resource": Samples(), "raw": Samples()}
        seen: dict[str, tuple[int, int]] = {}

        def ours() -> tuple[int, int]:
            extract = resource.read(query, window)
            return len(extract.frame), extract.pages

        runs = {"resource": ours, "raw": lambda: raw_next(root, raw_query)}
        for rep in range(repeats):
            for name in runs if rep % 2 == 0 else list(runs)[::-1]:
                server_cpu, cpu, wall = sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
                rows, pages = runs[name]()
                samples[name].wall.append(time.perf_counter() - wall)
                samples[name].cpu.append(time.process_time() - cpu)
                samples[name].server_cpu.append(sum(server.cpu_times()[:2]) - server_cpu)
                if rows != N_DOCUMENTS:
                    raise RuntimeError(f"{name}: {rows} rows, expected {N_DOCUMENTS}")
                seen[name] = (rows, pages)
    context = {
        "stat": f"best wall of {repeats}; cpu = least CPU seconds of the reader / of the service process",
        "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    best = samples["resource"].best
    emit(
        BENCH,
        [
            {
                "figure": "erp_rows_per_second",
                "value": round(N_DOCUMENTS / best, 1),
                "unit": "rows/s",
                "target": "report",
                "rows": N_DOCUMENTS,
                "pages": seen["resource"][1],
                "server_page": server_page,
                "top": top,
                "resource": samples["resource"].summary(),
                **context,
            },
            {
                "figure": "erp_resource_vs_raw_next",
                "value": round(best / samples["raw"].best, 3),
                "unit": "ratio",
                "target": "report",
                "raw_pages": seen["raw"][1],
                "resource": samples["resource"].summary(),
                "raw": samples["raw"].summary(),
                **context,
            },
        ],
    )
    print(f"# {BENCH}: pages fetched {seen['resource'][1]} (raw baseline {seen['raw'][1]})", file=sys.stderr)
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--server-page", type=int, default=1000, help="the service's __next page size")
    parser.add_argument("--top", type=int, default=5000, help="the resource's $top window")
    args = parser.parse_args()
    main(args.repeats, args.server_page, args.top)
