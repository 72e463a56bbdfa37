"""The code location: one Definitions object wiring assets, checks and resources for the site.

Loading this module reads the site's YAML file and nothing else: no network, no credentials.
Endpoints and the warehouse path can be overridden from the environment for the demo and tests.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from dagster import BetaWarning, Definitions, EnvVar, PreviewWarning, define_asset_job

from gl_pipelines.assets.scada import build_scada_assets
from gl_pipelines.checks.scada import build_scada_checks
from gl_pipelines.config import SiteConfig, load_site_config
from gl_pipelines.resources.opcua import OpcUaResource
from gl_pipelines.resources.warehouse import warehouse_io_manager

# Used on purpose and pinned to dagster 1.13: single-run backfill policies (beta) and partitioned
# asset checks (preview). The README lists them; the warnings would otherwise flood every run log.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

DEFAULT_WAREHOUSE = Path(__file__).resolve().parents[1] / "data" / "warehouse.duckdb"


def build_definitions(site: SiteConfig, warehouse_path: str | Path) -> Definitions:
    opcua = site.opcua
    return Definitions(
        assets=build_scada_assets(opcua),
        asset_checks=build_scada_checks(opcua, site.checks),
        jobs=[define_asset_job("scada_hourly_job", selection="scada_readings")],
        resources={
            "opcua": OpcUaResource(
                endpoint=os.environ.get("GL_OPCUA_ENDPOINT", opcua.endpoint),
                source_name=opcua.source_name,
                username=EnvVar("GL_OPCUA_USERNAME") if os.environ.get("GL_OPCUA_USERNAME") else None,
                password=EnvVar("GL_OPCUA_PASSWORD") if os.environ.get("GL_OPCUA_PASSWORD") else None,
            ),
            "warehouse": warehouse_io_manager(str(warehouse_path)),
        },
    )


def _warehouse_path() -> Path:
    path = Path(os.environ.get("GL_WAREHOUSE", DEFAULT_WAREHOUSE))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


defs = build_definitions(load_site_config(), _warehouse_path())
