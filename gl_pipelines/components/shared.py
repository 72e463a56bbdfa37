"""What the whole code location shares, whatever its sites: the warehouse, alerting and automation."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from gl_pipelines.config import PROJECT_ROOT
from gl_pipelines.resources.alerting import AlertWebhookResource
from gl_pipelines.resources.warehouse_settings import WarehouseSettings
from gl_pipelines.sensors.alerts import alert_redelivery, run_failure_alert

# Used on purpose and pinned to dagster 1.13: single-run backfill policies (beta) and partitioned
# asset checks (preview). The README lists them; the warnings would otherwise flood every run log.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse.duckdb"


def secret_if_set(name: str) -> dg.EnvVar | None:
    """An EnvVar (read at launch, hidden in the UI) when the deployment sets it, else nothing."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def shared_definitions(warehouse: str | Path | WarehouseSettings) -> dg.Definitions:
    if not isinstance(warehouse, WarehouseSettings):
        warehouse = WarehouseSettings(path=str(warehouse))
    return dg.Definitions(
        # Steps of one run wait for the single DuckDB pool slot anyway; running them in the run's own
        # process saves a ~4 s process start per step (measured in bench/backfill_daemon.py).
        executor=dg.in_process_executor,
        sensors=[
            run_failure_alert,
            alert_redelivery,
            # Evaluates the assets' AutomationConditions (daily summary, hourly consumption).
            dg.AutomationConditionSensorDefinition(
                "plant_automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING
            ),
        ],
        resources={
            # `warehouse` (the IO manager), `warehouse_staging` (where source assets stage new rows for their
            # blocking checks, checks/wap.py) and `warehouse_reader` (reports reading their own window).
            **warehouse.resources(),
            "alert_webhook": AlertWebhookResource(
                url=secret_if_set("GL_ALERT_WEBHOOK_URL"), bearer_token=secret_if_set("GL_ALERT_WEBHOOK_TOKEN")
            ),
        },
    )


def warehouse_settings() -> WarehouseSettings:
    """The warehouse the environment selects ($GL_WAREHOUSE_KIND, $GL_WAREHOUSE, $GL_ICEBERG_*), by
    default the DuckDB file under data/."""
    return WarehouseSettings.from_environment(DEFAULT_WAREHOUSE)
