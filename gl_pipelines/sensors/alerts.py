"""Run-failure alerting: one concise JSON alert per failed run of this code location.

`build_alert` and `error_line` are plain functions over plain values so the payload can be tested
without a Dagster instance; the sensor only gathers those values from the failed run.
"""

import json
import os
import re
import time
from collections.abc import Mapping, Sequence, Set
from typing import Protocol

from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from gl_pipelines.resources.alerting import AlertWebhookError, AlertWebhookResource
from gl_pipelines.scrub import scrub

SOURCE = "gl-pipelines"
MAX_ERROR_CHARS = 500
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# An alert that could not be delivered is kept on its failed run (tags: visible in the UI, one run per key so
# the two sensors never overwrite each other) and posted again by `alert_redelivery` until delivered or expired.
ALERT_TAG = "gl/alert"
"""pending, delivered or expired (only set once a delivery failed)."""
ATTEMPTS_TAG = "gl/alert_attempts"
PAYLOAD_TAG = "gl/alert_payload"
REDELIVERY_INTERVAL_S = 60
ALERT_EXPIRY_S = 24 * 3600
"""An alert about a run that failed more than a day ago is stale: the run history has it."""
MAX_REDELIVERIES_PER_TICK = 50

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
    try:
        alert_webhook.post(payload)
    except AlertWebhookError:
        context.instance.add_run_tags(
            run.run_id, {ALERT_TAG: "pending", ATTEMPTS_TAG: "1", PAYLOAD_TAG: json.dumps(payload)}
        )
        raise  # the tick shows the delivery error; alert_redelivery posts it again


@sensor(
    name="alert_redelivery",
    minimum_interval_seconds=REDELIVERY_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts again every run-failure alert that could not be delivered, until delivered or a day old.",
)
def alert_redelivery(context: SensorEvaluationContext, alert_webhook: AlertWebhookResource) -> SkipReason:
    pending = context.instance.get_run_records(
        filters=RunsFilter(tags={ALERT_TAG: "pending"}), limit=MAX_REDELIVERIES_PER_TICK
    )
    delivered, expired, waiting = [], [], []
    for record in pending:
        run = record.dagster_run
        attempts = int(run.tags.get(ATTEMPTS_TAG, "1"))
        ended = record.end_time or record.create_timestamp.timestamp()
        if time.time() - ended > ALERT_EXPIRY_S:
            context.instance.add_run_tags(run.run_id, {ALERT_TAG: "expired"})
            expired.append(f"{run.run_id} after {attempts} attempt(s)")
            continue
        attempts += 1
        try:
            alert_webhook.post(json.loads(run.tags[PAYLOAD_TAG]))
        except AlertWebhookError as exc:
            context.instance.add_run_tags(run.run_id, {ATTEMPTS_TAG: str(attempts)})
            waiting.append(f"{run.run_id} ({attempts} attempts; {scrub(str(exc))})")
        else:
            context.instance.add_run_tags(run.run_id, {ALERT_TAG: "delivered", ATTEMPTS_TAG: str(attempts)})
            delivered.append(f"{run.run_id} at attempt {attempts}")
    if expired:
        context.log.warning(f"alerts expired undelivered: {'; '.join(expired)}")
    return SkipReason(
        f"{len(delivered)} alert(s) redelivered, {len(waiting)} still pending, {len(expired)} expired"
        + "".join(
            f"\n{label}: {'; '.join(items)}"
            for label, items in (("delivered", delivered), ("pending", waiting), ("expired", expired))
            if items
        )
    )


def _asset_keys(context: RunFailureSensorContext) -> Set[AssetKey]:
    """The run's asset selection; runs launched without one (materialize, whole-job runs) say it in their plan."""
    if context.dagster_run.asset_selection:
        return context.dagster_run.asset_selection
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    return {record.event_log_entry.dagster_event.asset_key for record in records}
