"""The code location: every instance declared under gl_pipelines/defs/, plus what all sites share.

Each `defs/<site>/<instance>/defs.yaml` names a component (OPC UA, Modbus, PI, OData, CEMS) and its
settings; Dagster validates the YAML against the component's schema and builds the instance's assets,
checks, jobs, schedules, sensors and resource. Loading reads YAML only: no network, no credentials.
A deployment that sets $GL_SITE_CONFIG loads that single-site file instead (`components.site_file`).
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ComponentTree, Definitions

import gl_pipelines.defs
from gl_pipelines.components.shared import shared_definitions, warehouse_settings
from gl_pipelines.components.site_file import build_definitions, site_from_environment
from gl_pipelines.config import SITE_CONFIG_ENV
from gl_pipelines.sensors.warehouse_maintenance import warehouse_maintenance_definitions

warehouse = warehouse_settings()
site = (
    build_definitions(site_from_environment(), warehouse)
    if os.environ.get(SITE_CONFIG_ENV)
    else Definitions.merge(
        # From the module, not load_from_defs_folder: that needs pyproject.toml, which an installed package lacks.
        ComponentTree.from_module(gl_pipelines.defs, project_root=Path(__file__).resolve().parent).build_defs(),
        shared_definitions(warehouse),
    )
)
defs = warehouse.with_storage_kinds(Definitions.merge(site, warehouse_maintenance_definitions(warehouse)))
