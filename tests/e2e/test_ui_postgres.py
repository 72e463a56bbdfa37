"""The deployment end to end: a gRPC code server, `dagster-daemon` and `dagster-webserver` as separate processes
on dagster_home/dagster.yaml (PostgreSQL storage, run queue, pools); a backfill of one plant day (hours -> daily
summary -> energy balance report) launched through GraphQL, its results in Postgres, and the UI in a headless
chromium: the readings' blocking checks shown passed for the backfilled hours, down to the report's chart image.
"""

from __future__ import annotations

import os
import time

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from playwright.sync_api import expect, sync_playwright

from gl_pipelines.checks.reports import REPORT_BLOCKING_CHECKS
from tests.e2e.conftest import REPO, Deployment, pg_connect

pytestmark = pytest.mark.e2e

ASSET = "scada_readings"
SUMMARY = "scada_daily_summary"
REPORT = "plant_energy_balance"
CHECKS = {
    ASSET: ("scada_readings_completeness", "scada_readings_expectations"),
    REPORT: REPORT_BLOCKING_CHECKS[REPORT],
}
# One ordinary plant day, 24 plant-local hours (2026-11-01 is the US DST change, with 25). The backfill names
# the hours of its root asset; Dagster maps them to the day for the daily assets downstream.
DAY = "2026-11-02"
PARTITIONS = [f"{DAY}-{hour:02d}:00" for hour in range(24)]
# Single-run backfill policies: the 24 hours are one run; the summary and the report, daily assets with the
# same policy, are requested together once the hours are in, and share the second run.
EXPECTED_RUNS = 2
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


def _launch_backfill(dev: Deployment) -> str:
    selection = [{"path": [name]} for name in (ASSET, SUMMARY, REPORT)]
    params = {"assetSelection": selection, "partitionNames": PARTITIONS, "title": "e2e backfill"}
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _poll_backfill(dev: Deployment, backfill_id: str, done, timeout: float) -> dict:
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
    """Every run the backfill will launch has ended (the daemon marks the backfill done up to 30 s later)."""
    runs = backfill["runs"]
    finished = len(runs) == EXPECTED_RUNS and all(run["status"] in RUN_DONE for run in runs)
    return backfill["status"] in BACKFILL_DONE or finished


def _assert_stored_in_postgres(database: str, run_ids: list[str]) -> None:
    materialized = {}
    with pg_connect(database) as con, con.cursor() as cur:
        cur.execute(
            "select r.run_id, r.status from runs r join run_tags t on t.run_id = r.run_id"
            " where t.key = 'dagster/backfill' and t.value = (select value from run_tags"
            " where run_id = %s and key = 'dagster/backfill')",
            (run_ids[0],),
        )
        runs = dict(cur.fetchall())
        for name in (ASSET, SUMMARY, REPORT):
            cur.execute(
                "select partition from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
                " and asset_key = %s",
                (AssetKey(name).to_string(),),
            )
            materialized[name] = sorted(row[0] for row in cur.fetchall())
    assert runs == dict.fromkeys(run_ids, "SUCCESS"), runs
    assert materialized == {ASSET: PARTITIONS, SUMMARY: [DAY], REPORT: [DAY]}, materialized


def _assert_materialized_and_checked(dev: Deployment, run_ids: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Read back through Dagster's own instance API, on the same Postgres instance config."""
    for key in ("DAGSTER_HOME", "GL_PG_HOST", "GL_PG_PORT", "GL_PG_USER", "GL_PG_PASSWORD", "GL_PG_DB"):
        monkeypatch.setenv(key, dev.env[key])
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert set(instance.get_materialized_partitions(AssetKey(ASSET))) == set(PARTITIONS)
        for asset_name in (SUMMARY, REPORT):
            assert instance.get_materialized_partitions(AssetKey(asset_name)) == {DAY}
        for asset_name, names in CHECKS.items():
            for name in names:
                history = instance.event_log_storage.get_asset_check_execution_history(
                    AssetCheckKey(AssetKey(asset_name), name), limit=50
                )
                # A single-run backfill: Dagster's run-wide evaluation and, for the readings' partitioned checks,
                # one per hour (checks.wap); the report's checks are not partitioned.
                evaluations = [
                    record.event.asset_check_evaluation
                    for record in history
                    if record.run_id in run_ids and record.event and record.event.asset_check_evaluation
                ]
                assert all(e.passed for e in evaluations), f"{name}: {[e.description for e in evaluations]}"
                by_partition = sorted(e.partition for e in evaluations if e.partition is not None)
                assert [e.partition for e in evaluations if e.partition is None] == [None], name
                assert by_partition == (PARTITIONS if asset_name == ASSET else []), f"{name}: {by_partition}"


def _screenshot_ui(dev: Deployment) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: run scripts/ci-services")
    ARTIFACTS.mkdir(exist_ok=True)
    url = dev.url
    # What the "Join the Dagster community" dialog's Skip button records: on 127.0.0.1 the UI opens that dialog
    # a second after a page loads until it is dismissed, over the pages screenshot below.
    assert dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            # The group's own lineage page: the global one collapses groups once there are several.
            page.goto(f"{url}/locations/gl_pipelines/asset-groups/scada/lineage")
            for name in (ASSET, SUMMARY):
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Loading...")).to_have_count(0, timeout=30_000)  # the cards' live data
            # The readings' two blocking checks passed in the single-run backfill, hour by hour: the card says so
            # (it said "0 / 2 Passed" while Dagster recorded the result for the whole range only).
            expect(page.get_by_text("2 / 2 Passed", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_text("0 / 2 Passed", exact=True)).to_have_count(0)
            page.screenshot(path=ARTIFACTS / "e2e-asset-graph.png", full_page=True)

            page.goto(f"{url}/assets/{ASSET}?view=checks")
            for name in CHECKS[ASSET]:
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=30_000)
            page.screenshot(path=ARTIFACTS / "e2e-scada-readings-checks.png", full_page=True)

            _open_report_chart(page, url)
            page.screenshot(path=ARTIFACTS / "e2e-report-chart.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "e2e-failure.png", full_page=True)
            raise
        finally:
            browser.close()


def _open_report_chart(page, url: str) -> None:
    """The report's latest materialization (Events tab) and its `chart` metadata: markdown of 1,000
    characters or more sits behind "[Show Markdown]", which opens it rendered in a dialog."""
    page.goto(f"{url}/assets/{REPORT}?view=events")
    row = page.locator("tr", has=page.get_by_text("chart", exact=True))
    row.get_by_text("[Show Markdown]").click()
    image = page.get_by_role("dialog").locator('img[src^="data:image/svg+xml;base64,"]')
    expect(image).to_be_visible(timeout=60_000)
    expect(image).to_have_attribute("alt", f"{REPORT} {DAY}")
    # decode() rejects for an image the browser cannot decode; a dropped or broken src has no natural size.
    width, height = image.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert width > 0 and height > 0, (width, height)
    # The dialog fades in; wait for its opacity to settle so the screenshot shows the chart, not the page through it.
    page.wait_for_function(
        "el => getComputedStyle(el).opacity === '1'", arg=page.get_by_role("dialog").element_handle(), timeout=10_000
    )


def test_backfill_on_postgres_and_ui(deployment: Deployment, pg_database: str, monkeypatch: pytest.MonkeyPatch):
    backfill_id = _launch_backfill(deployment)
    backfill = _poll_backfill(deployment, backfill_id, _runs_finished, timeout=300)
    run_ids = [run["runId"] for run in backfill["runs"]]
    assert len(run_ids) == EXPECTED_RUNS, backfill

    _assert_stored_in_postgres(pg_database, run_ids)
    _assert_materialized_and_checked(deployment, run_ids, monkeypatch)
    assert (deployment.reports / REPORT / f"{REPORT}_{DAY[:7]}.parquet").is_file()
    _screenshot_ui(deployment)

    # The backfill daemon ticks every 30 s, so it marks the backfill done a little after its run ends.
    backfill = _poll_backfill(deployment, backfill_id, lambda b: b["status"] in BACKFILL_DONE, timeout=60)
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert [run["runId"] for run in backfill["runs"]] == run_ids
