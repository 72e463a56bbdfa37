"""The deployment setup end to end: `dagster dev` on dagster_home/dagster.yaml (PostgreSQL storage, run queue,
pools), a backfill launched through GraphQL, its results in Postgres, and the UI in a headless chromium.
"""

from __future__ import annotations

import os
import time

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from playwright.sync_api import expect, sync_playwright

from tests.e2e.conftest import REPO, DagsterDev, pg_connect

pytestmark = pytest.mark.e2e

ASSET = "scada_readings"
CHECKS = ("scada_readings_completeness", "scada_readings_expectations")
# Six past hours of an ordinary day: contiguous keys whether hours are UTC or plant-local (2026-11-01 is the
# US DST change, where a plant-local `01:00-0600` key would split the range into two runs).
PARTITIONS = [f"2026-11-02-{hour:02d}:00" for hour in range(6)]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } runs(limit: 50) { runId status } }
    ... on PythonError { message }
  }
}
"""
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _launch_backfill(dev: DagsterDev) -> str:
    params = {"assetSelection": [{"path": [ASSET]}], "partitionNames": PARTITIONS, "title": "e2e backfill"}
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _poll_backfill(dev: DagsterDev, backfill_id: str, done, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        backfill = dev.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if done(backfill):
            return backfill
        if time.monotonic() > deadline:
            pytest.fail(f"backfill {backfill_id} not done after {timeout:.0f} s: {backfill}\n{dev.log_tail()}")
        time.sleep(1)


def _runs_finished(backfill: dict) -> bool:
    runs = backfill["runs"]
    return backfill["status"] in BACKFILL_DONE or (runs and all(run["status"] in RUN_DONE for run in runs))


def _assert_stored_in_postgres(database: str, run_ids: list[str]) -> None:
    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(
            "select r.run_id, r.status from runs r join run_tags t on t.run_id = r.run_id"
            " where t.key = 'dagster/backfill' and t.value = (select value from run_tags"
            " where run_id = %s and key = 'dagster/backfill')",
            (run_ids[0],),
        )
        runs = dict(cur.fetchall())
        cur.execute(
            "select partition from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' and asset_key = %s",
            (AssetKey(ASSET).to_string(),),
        )
        materialized = sorted(row[0] for row in cur.fetchall())
    # Single-run backfill policy: six contiguous hours are one run.
    assert runs == {run_ids[0]: "SUCCESS"}, runs
    assert materialized == PARTITIONS


def _assert_materialized_and_checked(dev: DagsterDev, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read back through Dagster's own instance API, on the same Postgres instance config."""
    for key in ("DAGSTER_HOME", "GL_PG_HOST", "GL_PG_PORT", "GL_PG_USER", "GL_PG_PASSWORD", "GL_PG_DB"):
        monkeypatch.setenv(key, dev.env[key])
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert set(instance.get_materialized_partitions(AssetKey(ASSET))) == set(PARTITIONS)
        for name in CHECKS:
            history = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey(ASSET), name), limit=50
            )
            # A single-run backfill records one run-wide evaluation (per-partition records stay "planned").
            evaluations = [
                record.event.asset_check_evaluation
                for record in history
                if record.run_id == run_id and record.event and record.event.asset_check_evaluation
            ]
            assert len(evaluations) == 1, f"{name}: {history}"
            assert evaluations[0].passed, f"{name}: {evaluations[0].description}"


def _screenshot_ui(url: str) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: run scripts/ci-services")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            # The group's own lineage page: the global one collapses groups once there are several.
            page.goto(f"{url}/locations/gl_pipelines/asset-groups/scada/lineage")
            for name in (ASSET, "scada_daily_summary"):
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Loading...")).to_have_count(0, timeout=30_000)  # the cards' live data
            page.screenshot(path=ARTIFACTS / "e2e-asset-graph.png", full_page=True)

            page.goto(f"{url}/assets/{ASSET}?view=checks")
            for name in CHECKS:
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=30_000)
            page.screenshot(path=ARTIFACTS / "e2e-scada-readings-checks.png", full_page=True)
        except Exception:
            page.screenshot(path=ARTIFACTS / "e2e-failure.png", full_page=True)
            raise
        finally:
            browser.close()


def test_backfill_on_postgres_and_ui(dagster_dev: DagsterDev, pg_database: str, monkeypatch: pytest.MonkeyPatch):
    backfill_id = _launch_backfill(dagster_dev)
    backfill = _poll_backfill(dagster_dev, backfill_id, _runs_finished, timeout=150)
    run_ids = [run["runId"] for run in backfill["runs"]]
    assert run_ids, backfill

    _assert_stored_in_postgres(pg_database, run_ids)
    _assert_materialized_and_checked(dagster_dev, run_ids[0], monkeypatch)
    _screenshot_ui(dagster_dev.url)

    # The backfill daemon ticks every 30 s, so it marks the backfill done a little after its run ends.
    backfill = _poll_backfill(dagster_dev, backfill_id, lambda b: b["status"] in BACKFILL_DONE, timeout=60)
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert [run["runId"] for run in backfill["runs"]] == run_ids
