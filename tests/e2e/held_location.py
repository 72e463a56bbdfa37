"""A code location for the dead-run test and bench: runs that hold the `duckdb_warehouse` pool slot.

Its sensor asks for two runs of one job as soon as the daemon starts; each run's single step joins the
warehouse pool (limit 1, as deployed) and then sleeps, so one run holds the slot and the other waits for
it. The project's own run_failure_alert sensor posts to $GL_ALERT_WEBHOOK_URL.
"""

import time

from dagster import (
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    RunRequest,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL
from gl_pipelines.resources.alerting import AlertWebhookResource
from gl_pipelines.sensors.alerts import run_failure_alert

RUN_KEYS = ("first", "second")
HOLD_S = 3600


@asset(pool=WAREHOUSE_POOL)
def warehouse_holder() -> None:
    time.sleep(HOLD_S)


holder_job = define_asset_job("holder_job", selection="warehouse_holder")


@sensor(job=holder_job, default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=5)
def two_holders():
    for key in RUN_KEYS:
        yield RunRequest(run_key=key)


defs = Definitions(
    assets=[warehouse_holder],
    jobs=[holder_job],
    sensors=[two_holders, run_failure_alert],
    resources={"alert_webhook": AlertWebhookResource(url=EnvVar("GL_ALERT_WEBHOOK_URL"), retry_initial_wait_s=0)},
    executor=in_process_executor,
)
