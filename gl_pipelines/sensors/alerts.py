"""Run-failure alerting: one concise JSON alert per failed run of this code location.

`build_alert` and `error_line` are plain functions over plain values so the payload can be tested
without a Dagster instance; the sensor only gathers those values from the failed run.
"""

import os
import re
from collections.abc import Mapping, Sequence, Set
from typing import Protocol

from dagster import AssetKey, DagsterEventType, DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from gl_pipelines.resources.alerting import AlertWebhookResource
from gl_pipelines.scrub import scrub

SOURCE = "gl-pipelines"
MAX_ERROR_CHARS = 500
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# A serialized error message starts with the exception's qualified name: "pkg.mod.OpcUaError: ...".
_QUALIFIED_PREFIX = re.compile(r"^[\w.]+\.(?=\w+: )")


class ErrorInfo(Protocol):
    """What `error_line` reads of Dagster's SerializableErrorInfo (not exported at the top level)."""

    @property
    def message(self) -> str: ...

    @property
    def cause(self) -> "ErrorInfo | None": ...


def error_line(error: ErrorInfo) -> str:
    """One line naming what went wrong: Dagster's step wrapper dropped, the user error and its causes kept."""
    while error.cause is not None and error.message.startswith("dagster."):
        error = error.cause
    parts = []
    current: ErrorInfo | None = error
    while current is not None:
        parts.append(_QUALIFIED_PREFIX.sub("", " ".join(current.message.split())))
        current = current.cause
    return " (caused by ".join(parts) + ")" * (len(parts) - 1)


def partition_of(tags: Mapping[str, str]) -> str | None:
    """The run's partition key, or "start..end" for a single-run backfill of a partition range."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
    return None


def build_alert(
    *,
    run_id: str,
    job: str,
    assets: Sequence[str],
    tags: Mapping[str, str],
    error: str,
    failed_steps: Sequence[str],
    webserver_url: str | None = None,
) -> dict:
    """The alert payload: enough to triage from a phone, with a link to the run for the rest.
    The error is scrubbed: it leaves the plant in the alert body."""
    error = scrub(error)
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    payload = {
        "source": SOURCE,
        "run_id": run_id,
        "job": job,
        "assets": sorted(assets),
        "partition": partition_of(tags),
        "error": error,
        "failed_steps": list(failed_steps),
    }
    if webserver_url:
        payload["dagster_url"] = f"{webserver_url.rstrip('/')}/runs/{run_id}"
    return payload


@run_failure_sensor(
    name="run_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts a short JSON alert to the `alert_webhook` resource for every failed run in this code location.",
)
def run_failure_alert(context: RunFailureSensorContext, alert_webhook: AlertWebhookResource) -> None:
    # Returning anything but None makes Dagster stop this tick after one run, delaying other alerts.
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    if step_failures and step_failures[0].step_failure_data.error:
        error = error_line(step_failures[0].step_failure_data.error)
    else:
        failure = context.failure_event.job_failure_data
        error = error_line(failure.error) if failure and failure.error else context.failure_event.message or ""
    payload = build_alert(
        run_id=run.run_id,
        job=run.job_name,
        assets=[key.to_user_string() for key in _asset_keys(context)],
        tags=run.tags,
        error=error,
        failed_steps=[event.step_key for event in step_failures if event.step_key],
        webserver_url=os.environ.get("DAGSTER_WEBSERVER_URL"),
    )
    context.log.info(f"run {run.run_id} of {run.job_name} failed: {payload['error']}")
    alert_webhook.post(payload)


def _asset_keys(context: RunFailureSensorContext) -> Set[AssetKey]:
    """The run's asset selection; runs launched without one (materialize, whole-job runs) say it in their plan."""
    if context.dagster_run.asset_selection:
        return context.dagster_run.asset_selection
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    return {record.event_log_entry.dagster_event.asset_key for record in records}
