"""A throwaway dg project with the given defs.yaml files, loaded the way the code location loads its own."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from dagster import Definitions, load_from_defs_folder

from gl_pipelines.components.shared import shared_definitions


def write_project(root: Path, files: dict[str, str]) -> tuple[Path, str]:
    """`files`: path under defs/ -> text. Returns (project root, package name)."""
    package = f"gl_test_{uuid.uuid4().hex[:8]}"
    (root / package / "defs").mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "defs" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{package}"\nversion = "0"\n\n[tool.dg]\ndirectory_type = "project"\n\n'
        f'[tool.dg.project]\nroot_module = "{package}"\ndefs_module = "{package}.defs"\n'
    )
    for relative, text in files.items():
        path = root / package / "defs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root, package


def load_project(root: Path, files: dict[str, str]) -> Definitions:
    """The instances plus the shared resources (warehouse under `root`), merged as definitions.py does."""
    root, _ = write_project(root, files)
    sys.path.insert(0, str(root))
    try:
        return Definitions.merge(load_from_defs_folder(path_within_project=root), shared_definitions(root / "w.duckdb"))
    finally:
        sys.path.remove(str(root))


SITE = """type: gl_pipelines.components.base.SiteComponent
attributes:
  timezone: {timezone}
"""

OPCUA = """type: gl_pipelines.components.opcua.OpcUaComponent
attributes:
  endpoint: {endpoint}
  sample_interval_s: 10
  tags:
    - {{name: Boiler1.SteamFlow, node_id: "ns=2;s=Boiler1.SteamFlow", unit: t/h, min: 0, max: 60}}
"""
