"""The package as a user gets it: the sdist and wheel built from this tree, installed into a fresh virtual
environment at the versions uv.lock pins (from uv's cache when it has them), and the code location loaded there
with no source checkout on the path."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gl_pipelines.config import DEMO_SITE_CONFIG, SITE_CONFIG_ENV

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    work_dir: Path

    def run(self, code: str, **env: str) -> subprocess.CompletedProcess:
        """`code` in the fresh environment, from a folder outside the checkout, nothing of ours on PYTHONPATH."""
        clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", SITE_CONFIG_ENV, "GL_WAREHOUSE"}}
        return subprocess.run(
            [str(self.python), "-c", code],
            cwd=self.work_dir,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run scripts/setup")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("packaging")
    uv = _uv()

    def run(*args: str) -> None:
        done = subprocess.run([uv, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    # The wheel is built from the sdist, as a package index user would get it: files missing from the sdist show.
    run("build", "--quiet", "--out-dir", str(tmp / "dist"))
    (wheel,) = (tmp / "dist").glob("gl_pipelines-*.whl")
    # Installed at the locked versions: the lock's export constrains the resolution, so it is what CI tested.
    run("export", "--quiet", "--frozen", "--no-emit-project", "--no-hashes", "-o", str(tmp / "locked.txt"))
    run("venv", "--quiet", "--python", sys.executable, str(tmp / "venv"))
    python = tmp / "venv" / "bin" / "python"
    run("pip", "install", "--quiet", "--python", str(python), "-c", str(tmp / "locked.txt"), str(wheel))
    work_dir = tmp / "site"
    work_dir.mkdir()
    yield Installed(wheel, python, work_dir)


def test_wheel_ships_the_report_data_and_no_tests(installed: Installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for data in ("gwp.csv", "part98_table_c1_c2.csv", "README.md"):
        assert f"gl_pipelines/reporting/data/{data}" in names
    assert "demo_plant/gl_demo_plant/opcua_server.py" in names
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]


def _graph_keys(defs) -> list[str]:
    graph = defs.resolve_asset_graph()
    return sorted(key.to_user_string() for key in [*graph.get_all_asset_keys(), *graph.asset_check_keys])


def _installed_graph(installed: Installed, **env: str) -> dict:
    code = f"""
import json, gl_pipelines
from dagster import Definitions
from gl_pipelines.components.shared import DEFAULT_WAREHOUSE
from gl_pipelines.definitions import defs
from gl_pipelines.reporting.factors import factor_table, gwp_table
assert "site-packages" in gl_pipelines.__file__, gl_pipelines.__file__
Definitions.validate_loadable(defs)
{inspect.getsource(_graph_keys)}
rows = len(factor_table()) + len(gwp_table())
print(json.dumps({{"keys": _graph_keys(defs), "warehouse": str(DEFAULT_WAREHOUSE), "data_rows": rows}}))
"""
    done = installed.run(code, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_installed_package_loads_the_shipped_defs_folder(installed: Installed):
    """Without $GL_SITE_CONFIG the installed package loads the defs folder it ships (the demo's instances): the
    same assets and checks as this checkout's, the Part 98 factors read from the installed data files."""
    from dagster import ComponentTree, Definitions

    import gl_pipelines.defs
    from gl_pipelines.components.shared import shared_definitions

    loaded = _installed_graph(installed)
    tree = ComponentTree.from_module(gl_pipelines.defs, project_root=REPO / "gl_pipelines")
    local = Definitions.merge(tree.build_defs(), shared_definitions(installed.work_dir / "w.duckdb"))
    assert loaded["keys"] == _graph_keys(local)
    assert any(key.startswith("demo_plant/") for key in loaded["keys"]), loaded["keys"][:5]
    assert loaded["data_rows"] > 0
    # Relative paths come from the working directory, not from site-packages.
    assert Path(loaded["warehouse"]) == installed.work_dir / "data" / "warehouse.duckdb"


def test_installed_package_loads_a_site_file(installed: Installed):
    """$GL_SITE_CONFIG: the single-site file, the same assets and checks as this checkout builds from it."""
    from gl_pipelines.components.site_file import build_definitions
    from gl_pipelines.config import load_site_config

    loaded = _installed_graph(installed, **{SITE_CONFIG_ENV: str(DEMO_SITE_CONFIG)})
    local = build_definitions(load_site_config(DEMO_SITE_CONFIG), installed.work_dir / "w.duckdb")
    assert loaded["keys"] == _graph_keys(local)
