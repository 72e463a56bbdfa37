"""The code location: every instance declared under gl_pipelines/defs/, plus what all sites share.

Each `defs/<site>/<instance>/defs.yaml` names a component (OPC UA, Modbus, PI, OData, CEMS) and its
settings; Dagster validates the YAML against the component's schema and builds the instance's assets,
checks, jobs, schedules, sensors and resource. Loading reads YAML only: no network, no credentials.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from dagster import BetaWarning, Definitions, PreviewWarning, load_from_defs_folder

from gl_pipelines.components.shared import shared_definitions, warehouse_path

# Used on purpose and pinned to dagster 1.13: single-run backfill policies (beta) and partitioned
# asset checks (preview). The README lists them; the warnings would otherwise flood every run log.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

defs = Definitions.merge(
    load_from_defs_folder(path_within_project=Path(__file__).parent), shared_definitions(warehouse_path())
)
