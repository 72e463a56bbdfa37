"""A backfill spread over several run workers writing the shared warehouse at once, through the real daemon.

The deployment (code server, daemon, webserver) on PostgreSQL, the warehouse switched to the shared one by the
environment ($GL_WAREHOUSE_KIND=iceberg, catalog in a scratch PostgreSQL database, Parquet files under
tmp_path) and one run per partition ($GL_BACKFILL_PARTITIONS_PER_RUN=1). The `duckdb_warehouse` pool is lifted
to the instance's run limit, as a deployment on the shared warehouse does. Each run is launched by the daemon
into its own worker process (the deployment's run launcher); the runs must overlap in time, and the
warehouse must hold every partition exactly once.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Deployment, pg_connect
from tests.e2e.test_ui_postgres import BACKFILL_DONE, LAUNCH_BACKFILL, RUN_DONE, _poll_backfill
from tests.resources.shared_warehouse import read_shared, scratch_catalog

pytestmark = pytest.mark.e2e

# One run worker per partition: 3 keep the test's CPU small on 2 cores and still show runs overlapping.
PARTITIONS = ["2026-11-01-00:00", "2026-11-01-01:00", "2026-11-01-02:00"]
WORKERS = 4  # dagster_home/dagster.yaml: concurrency.runs.max_concurrent_runs
ROWS_PER_HOUR = 6 * 360  # the demo site's 6 tags, one value per 10 s
SET_POOL_LIMIT = "mutation($key: String!, $limit: Int!) { setConcurrencyLimit(concurrencyKey: $key, limit: $limit) }"
KINDS = 'query { assetNodes(assetKeys: [{path: ["scada_readings"]}]) { kinds } }'


@pytest.fixture
def shared_warehouse(tmp_path, monkeypatch):
    """The environment the deployment (started after this fixture) selects the shared warehouse from."""
    with scratch_catalog(tmp_path / "lake") as settings:
        monkeypatch.setenv("GL_WAREHOUSE_KIND", "iceberg")
        monkeypatch.setenv("GL_ICEBERG_CATALOG", settings.catalog_dsn)
        monkeypatch.setenv("GL_ICEBERG_DATA", settings.data_path)
        monkeypatch.setenv("GL_BACKFILL_PARTITIONS_PER_RUN", "1")
        yield settings


def test_backfill_over_several_workers_stores_every_partition_once(shared_warehouse, deployment: Deployment):
    # The UI names the warehouse the code server was configured with.
    (node,) = deployment.graphql(KINDS)["assetNodes"]
    assert sorted(node["kinds"]) == ["iceberg", "opcua", "parquet"]
    assert deployment.graphql(SET_POOL_LIMIT, {"key": "duckdb_warehouse", "limit": WORKERS})["setConcurrencyLimit"]
    params = {"assetSelection": [{"path": ["scada_readings"]}], "partitionNames": PARTITIONS, "title": "workers"}
    launched = deployment.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    # Done when its runs have ended: the daemon marks the backfill itself done up to 30 s later.
    backfill = _poll_backfill(
        deployment,
        launched["backfillId"],
        lambda b: (
            b["status"] in BACKFILL_DONE
            or (len(b["runs"]) == len(PARTITIONS) and all(run["status"] in RUN_DONE for run in b["runs"]))
        ),
        timeout=240,
    )
    assert [run["status"] for run in backfill["runs"]] == ["SUCCESS"] * len(PARTITIONS), (
        backfill,
        deployment.log_tail(),
    )

    with pg_connect(deployment.env["GL_PG_DB"]) as con, con.cursor() as cur:
        cur.execute(
            "select r.start_time, r.end_time from runs r join run_tags t on t.run_id = r.run_id"
            " where t.key = 'dagster/backfill' and t.value = %s and r.status = 'SUCCESS'",
            (launched["backfillId"],),
        )
        spans = sorted(cur.fetchall())
    assert len(spans) == len(PARTITIONS)
    overlapping = max(sum(start <= other_start < end for other_start, _ in spans) for start, end in spans)
    assert overlapping >= 2, f"the runs never ran at the same time: {spans}"

    stored = read_shared(
        shared_warehouse,
        "select date_trunc('hour', ts) as hour, count(*) as n, count(distinct (tag, ts)) as distinct_rows "
        "from plant.scada_readings group by hour order by hour",
    )
    assert len(stored) == len(PARTITIONS)
    assert list(stored["n"]) == list(stored["distinct_rows"]) == [ROWS_PER_HOUR] * len(PARTITIONS)
