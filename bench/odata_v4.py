"""ODataV4Resource against SAP's own OData v4 mock server (@sap-ux/fe-mockserver-core): 200,000 receipts.

The S/4HANA Cloud-like service of tests/interop/odata_v4_mock.py with 200,000 goods receipts over a plant
year (548 per day, Edm.Date posting dates, decimals half as JSON strings, half as JSON numbers). The
mock server sends no @odata.nextLink, so both readers page with `$top`/`$skip` windows of `--top`. It
spends seconds per request on the whole set whatever the window, so the windows are large (50,000
rows), and each read gets a freshly started server (started outside the timing).
In one run, best of `--repeats` with the order alternating:

- `odata_v4_rows_per_second`: rows per wall second of `ODataV4Resource.read` for the year ($filter on
  the Edm.Date, $select, $count, windows fetched concurrently), typed to UTC dates and DECIMAL(18,3);
- `odata_v4_vs_plain_httpx`: that wall time ÷ a plain httpx loop over the same windows, one after
  another, JSON parsed, nothing typed or checked (target <= 1.5).

Run: `python bench/odata_v4.py`. Prints one JSON object per figure per line and writes them to
bench/results/odata_v4.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from _common import Samples, emit, quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from gl_pipelines.resources.erp import EntityQuery  # noqa: E402
from gl_pipelines.resources.odata_v4 import V4_ACCEPT, ODataV4Resource  # noqa: E402
from tests.interop.odata_v4_mock import RECEIPT_FIELDS, SERVER_DIR, odata_v4_mock_server  # noqa: E402

BENCH = "odata_v4"
N_RECEIPTS = 200_000
PER_DAY = 548  # 200,000 receipts over 365 plant days
ZONE = ZoneInfo("America/Chicago")
YEAR = (datetime(2026, 11, 1, tzinfo=ZONE), datetime(2027, 11, 1, tzinfo=ZONE))
QUERY = EntityQuery("MaterialDocumentItem", RECEIPT_FIELDS, ("document", "item"), "posting_date")


def plain_httpx(url: str, params: dict, top: int) -> tuple[int, int]:
    """Baseline: the same `$top` windows one after another (the first one's @odata.count says how many),
    JSON parsed, rows kept as dicts."""
    rows: list[dict] = []
    pages, count = 0, None
    with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client:
        while count is None or len(rows) < count:
            window = {**params, "$top": top, "$skip": len(rows)}
            body = client.get(url, params=window, headers={"Accept": V4_ACCEPT}).json()
            count = body["@odata.count"] if count is None else count
            rows += body["value"]
            pages += 1
    return len(rows), pages


def measured(name: str, top: int) -> tuple[int, int, float, float, float]:
    """One read by `name` on a freshly started mock server: (rows, pages, wall s, our CPU s, server CPU s).

    A fresh server per read: fe-mockserver's memory grows by most of a GB per large request, and a
    server that has grown slows (and at ~4 GB kills) whatever is measured after it."""
    import psutil

    with odata_v4_mock_server(receipts=N_RECEIPTS, per_day=PER_DAY, confirmations=1) as service:
        (server_pid,) = [p.pid for p in psutil.Process().children() if p.name() == "node"]
        server = psutil.Process(server_pid)
        resource = ODataV4Resource(
            base_url=service.url, source_name="bench-v4", page_size=top, timezone="America/Chicago", read_timeout_s=600
        )
        entity = resource.metadata()["MaterialDocumentItem"]
        params = {
            "$select": ",".join(RECEIPT_FIELDS.values()),
            "$orderby": "MaterialDocument,MaterialDocumentItem",
            "$filter": resource.window_filter(entity.properties["PostingDate"], *YEAR),
            "$count": "true",
        }
        server_cpu, cpu, wall = sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
        if name == "resource":
            extract = resource.read(QUERY, YEAR)
            rows, pages = len(extract.frame), extract.pages
        else:
            rows, pages = plain_httpx(service.url + QUERY.entity_set, params, top)
        took = time.perf_counter() - wall, time.process_time() - cpu, sum(server.cpu_times()[:2]) - server_cpu
    if rows != N_RECEIPTS:
        raise RuntimeError(f"{name}: {rows} rows, expected {N_RECEIPTS}")
    return rows, pages, *took


def main(repeats: int, top: int) -> None:
    quiet()
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    samples = {"resource": Samples(), "plain_httpx": Samples()}
    seen: dict[str, tuple[int, int]] = {}
    for rep in range(repeats):
        for name in samples if rep % 2 == 0 else list(samples)[::-1]:
            rows, pages, wall, cpu, server_cpu = measured(name, top)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
            samples[name].server_cpu.append(server_cpu)
            seen[name] = (rows, pages)
    package = json.loads((SERVER_DIR / "package.json").read_text())["dependencies"]
    context = {
        "server": f"@sap-ux/fe-mockserver-core {package['@sap-ux/fe-mockserver-core']}",
        "stat": f"best wall of {repeats}; cpu = least CPU seconds of the reader / of the mock server",
        "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    best = samples["resource"].best
    emit(
        BENCH,
        [
            {
                "figure": "odata_v4_rows_per_second",
                "value": round(N_RECEIPTS / best, 1),
                "unit": "rows/s",
                "target": "report",
                "rows": N_RECEIPTS,
                "pages": seen["resource"][1],
                "top": top,
                "resource": samples["resource"].summary(),
                **context,
            },
            {
                "figure": "odata_v4_vs_plain_httpx",
                "value": round(best / samples["plain_httpx"].best, 3),
                "unit": "ratio",
                "target": "<= 1.5",
                "plain_httpx_pages": seen["plain_httpx"][1],
                "resource": samples["resource"].summary(),
                "plain_httpx": samples["plain_httpx"].summary(),
                **context,
            },
        ],
    )
    print(f"# {BENCH}: {time.perf_counter() - began:.0f} s wall", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    # The mock server copies and filters the whole set on every request (7-25 s for 200,000 rows on a
    # busy 2-core machine), so a few large windows keep one run to minutes.
    parser.add_argument("--top", type=int, default=50_000, help="$top window of both readers")
    args = parser.parse_args()
    main(args.repeats, args.top)
