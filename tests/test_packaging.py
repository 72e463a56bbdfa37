"""The package as a user gets it: the sdists and wheels built from this tree (gl-pipelines and the demo plant's
own distribution, gl-demo-plant), installed into fresh virtual environments at the versions uv.lock pins (from
uv's cache when it has them), and the code location loaded there with no source checkout on the path. A
production install is gl-pipelines alone: it must load without the demo plant."""

from __future__ import annotations

import ast
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
DEMO_PACKAGE = "gl_demo_plant"


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


@dataclass(frozen=True)
class Built:
    runtime_wheel: Path
    demo_wheel: Path
    constraints: Path


def _install(tmp: Path, name: str, built: Built, *wheels: Path) -> Installed:
    """A fresh venv under `tmp` with `wheels` installed at the locked versions."""
    uv = _uv()
    for args in (
        ("venv", "--quiet", "--python", sys.executable, str(tmp / name)),
        ("pip", "install", "--quiet", "--python", str(tmp / name / "bin" / "python"), "-c", str(built.constraints))
        + tuple(str(wheel) for wheel in wheels),
    ):
        done = subprocess.run([uv, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    work_dir = tmp / f"{name}-site"
    work_dir.mkdir()
    return Installed(wheels[0], tmp / name / "bin" / "python", work_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("packaging")
    uv = _uv()

    def run(*args: str) -> None:
        done = subprocess.run([uv, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    # Each wheel is built from its sdist, as a package index user would get it: files missing from an sdist show.
    run("build", "--quiet", "--all-packages", "--out-dir", str(tmp / "dist"))
    (runtime_wheel,) = (tmp / "dist").glob("gl_pipelines-*.whl")
    (demo_wheel,) = (tmp / "dist").glob("gl_demo_plant-*.whl")
    # Installed at the locked versions: the lock's export (both members' dependencies, not the members
    # themselves) constrains the resolution, so it is what CI tested.
    constraints = tmp / "locked.txt"
    run("export", "--quiet", "--frozen", "--all-packages", "--no-emit-workspace", "--no-hashes", "-o", str(constraints))
    return Built(runtime_wheel, demo_wheel, constraints)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """gl-pipelines alone, as production installs it."""
    yield _install(tmp_path_factory.mktemp("runtime"), "venv", built, built.runtime_wheel)


@pytest.fixture(scope="module")
def installed_with_demo(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The demo plant's wheel installed beside gl-pipelines' (the root's `demo` extra, from wheels)."""
    yield _install(tmp_path_factory.mktemp("demo"), "venv", built, built.demo_wheel, built.runtime_wheel)


def test_wheel_ships_the_report_data_and_no_tests(installed: Installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for data in ("gwp.csv", "part98_table_c1_c2.csv", "README.md"):
        assert f"gl_pipelines/reporting/data/{data}" in names
    # Only the runtime package: no demo plant (its own wheel), no tests, no benches.
    assert not [name for name in names if not name.startswith(("gl_pipelines/", "gl_pipelines-"))], sorted(names)
    assert not [name for name in names if "simulators" in name or DEMO_PACKAGE in name]


def test_runtime_package_never_imports_the_demo_plant():
    """No module of gl_pipelines imports gl_demo_plant (the demo depends on the runtime, never the reverse)."""
    offenders = []
    for path in sorted((REPO / "gl_pipelines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(REPO)}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] == DEMO_PACKAGE
            ]
    assert not offenders, offenders


def test_production_install_has_no_demo_plant(installed: Installed):
    """gl-pipelines' wheel alone: the demo plant is not importable, its commands are absent, and the
    distribution asks for it only under the `demo` extra."""
    done = installed.run(
        "import importlib.metadata as m, importlib.util as u, json, shutil;"
        f"print(json.dumps([u.find_spec({DEMO_PACKAGE!r}) is None, shutil.which('gl-demo-plant'),"
        " m.requires('gl-pipelines')]))",
        PATH=f"{installed.python.parent}{os.pathsep}/usr/bin:/bin",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    absent, command, requires = json.loads(done.stdout)
    assert absent and command is None
    assert [r for r in requires if r.startswith("gl-demo-plant")] == ['gl-demo-plant; extra == "demo"']


def test_demo_wheel_installs_beside_the_runtime_and_runs(installed_with_demo: Installed, built: Built):
    names = set(zipfile.ZipFile(built.demo_wheel).namelist())
    assert f"{DEMO_PACKAGE}/opcua_server.py" in names and f"{DEMO_PACKAGE}/demo.py" in names
    assert not [name for name in names if not name.startswith((f"{DEMO_PACKAGE}/", "gl_demo_plant-"))]
    bin_dir = installed_with_demo.python.parent
    for command in ("gl-demo-plant", "gl-demo"):
        done = subprocess.run(
            [str(bin_dir / command), "--help"],
            cwd=installed_with_demo.work_dir,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"usage: {command}" in done.stdout
    done = installed_with_demo.run(f"import {DEMO_PACKAGE}, gl_pipelines; print({DEMO_PACKAGE}.__file__)")
    assert done.returncode == 0 and "site-packages" in done.stdout, done.stderr[-3000:]


def test_installed_demo_plant_serves_without_a_checkout(installed_with_demo: Installed):
    """The installed plant reads its register layouts from gl-pipelines' installed defs folder, not the checkout:
    it starts every server on free ports from a folder outside the checkout."""
    plant = subprocess.Popen(
        [str(installed_with_demo.python.parent / "gl-demo-plant"), "--synthetic-tags=0"]
        + [f"--{name}-port=0" for name in ("opcua", "opcua2", "modbus", "pi", "odata", "cems-plc")],
        cwd=installed_with_demo.work_dir,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [plant.stdout.readline() for _ in range(3)]
    finally:
        plant.terminate()
        _, stderr = plant.communicate(timeout=30)
    assert lines[0].startswith("demo plant ready: OPC UA opc.tcp://127.0.0.1:"), stderr[-3000:]
    assert "(3 devices), CEMS PLC 127.0.0.1:" in lines[0] and ", second OPC UA opc.tcp://" in lines[0]
    assert lines[1].startswith("PI Web API http://127.0.0.1:") and lines[2].startswith("SAP OData http://127.0.0.1:")


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
