"""Two CEMS instances in one code location, declared in YAML: each has its own keys, jobs, sensors,
schedule, PLC resource, folders and tables, and a DAHS file dropped for one lands only in its own table."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, build_sensor_context, instance_for_test

from gl_demo_plant.cems_dahs import write_day
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.config import PROJECT_ROOT
from gl_pipelines.resources.warehouse import table_name
from tests.components.project import SITE, load_project
from tests.components.test_instances import _load_error
from tests.epa_data import EPA_DIR
from tests.runs import run

DAY = date(2026, 3, 2)
LANGLEY = EPA_DIR / "langley_gulch_57028_CT1_2018_hourly.csv"  # EPA's published hours of one unit, 2018
LST = -6

CEMS = """type: gl_pipelines.components.cems.CemsComponent
attributes:
  lst_utc_offset_hours: -6
{folders}
  lookback_days: 2
  units:
  - {{unit_id: {unit}, fuel: natural_gas, fd_factor: 8710, fc_factor: 1040, moisture_method: measured,
     so2_mpc_ppm: 2.0, co2_mpc_pct: 12.0, nox_mpc_ppm: 150, nox_mer_lb_mmbtu: 0.3, flow_mpf_scfh: 2500000.0,
     max_load_mw: 12}}
{plc}"""

PLC = """  plc:
    name: plc_{unit}
    host: 127.0.0.1
    port: 5021
    device_id: 1
    points:
    - {{name: {unit}.hour_start_epoch, table: holding, address: 0, type: uint32, unit: s}}
    - {{name: {unit}.op_time, table: holding, address: 2, type: float32, unit: dimensionless}}
"""


def cems_yaml(unit: str, folder=None, plc: bool = False) -> str:
    folders = (
        "\n".join(
            f"  {field}: {folder / name}"
            for field, name in (("dahs_drop_folder", "drop"), ("quarantine_folder", "q"), ("accepted_folder", "acc"))
        )
        if folder
        else ""
    )
    return CEMS.format(folders=folders, unit=unit, plc=PLC.format(unit=unit) if plc else "")


def site_with_history(timezone: str, start: str) -> str:
    return SITE.format(timezone=timezone) + f"  history_start: {start}\n"


def test_two_cems_instances_are_named_apart_and_default_to_their_own_folders(tmp_path):
    defs = load_project(
        tmp_path,
        {
            "plant_c/site/defs.yaml": site_with_history("America/Chicago", "2026-01-01"),
            "plant_c/stack1/defs.yaml": cems_yaml("U1", plc=True),
            "plant_c/stack2/defs.yaml": cems_yaml("U2", plc=True),
        },
    )
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    for stack in ("stack1", "stack2"):
        assert {f"plant_c/{stack}/{name}" for name in ("cems_hourly_raw", "cems_hourly_emissions")} <= keys
        for job in ("cems_raw_job", "cems_daily_job"):
            defs.resolve_job_def(f"plant_c__{stack}__{job}")
        emissions = defs.resolve_assets_def(AssetKey(["plant_c", stack, "cems_hourly_emissions"]))
        assert emissions.asset_deps[emissions.key] == {AssetKey(["plant_c", stack, "cems_hourly_raw"])}
        # Partitions start on the site's history start: the instance does not set its own.
        assert emissions.partitions_def.get_first_partition_key() == "2026-01-01"
    assert not any(key.startswith("cems_") for key in keys)  # no short key left to collide
    assert {name for name in defs.resources if name.startswith("cems_plc")} == {
        "cems_plc__plant_c__stack1",
        "cems_plc__plant_c__stack2",
    }
    sensors = {sensor.name: sensor for sensor in defs.sensors if "cems" in sensor.name}
    assert set(sensors) == {
        f"plant_c__{s}__{n}" for s in ("stack1", "stack2") for n in ("cems_dahs_files", "cems_open_gaps")
    }
    assert sensors["plant_c__stack2__cems_dahs_files"].job_name == "plant_c__stack2__cems_raw_job"
    drop = PROJECT_ROOT / "data" / "cems" / "plant_c" / "stack2" / "dahs_drop"
    assert str(drop) in sensors["plant_c__stack2__cems_dahs_files"].description
    assert {schedule.name for schedule in defs.schedules} >= {
        "plant_c__stack1__cems_daily_job_schedule",
        "plant_c__stack2__cems_daily_job_schedule",
    }


def test_each_cems_instance_materializes_only_its_own_dahs_files(tmp_path):
    project = tmp_path / "project"
    defs = load_project(
        project,
        {
            "plant_c/site/defs.yaml": site_with_history("America/Chicago", "2026-01-01"),
            "plant_c/stack1/defs.yaml": cems_yaml("U1", tmp_path / "stack1"),
            "plant_c/stack2/defs.yaml": cems_yaml("U2", tmp_path / "stack2"),
        },
    )
    write_day(tmp_path / "stack1" / "drop", "U1", DAY, LST, faults=None)
    write_day(tmp_path / "stack2" / "drop", "U2", DAY, LST, faults=None, seed=7)
    warehouse = project / "w.duckdb"
    counts = {}
    with instance_for_test() as instance:
        for stack in ("stack1", "stack2"):
            sensor = defs.resolve_sensor_def(f"plant_c__{stack}__cems_dahs_files")
            tick = sensor(build_sensor_context(instance=instance, definitions=defs))
            (request,) = tick.run_requests
            assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
                "2026-03-02-00:00",
                "2026-03-02-23:00",
            )
            raw = AssetKey(["plant_c", stack, "cems_hourly_raw"])
            result = run(defs, instance, AssetSelection.assets(raw), tags=dict(request.tags))
            assert result.success
            checks = result.get_asset_check_evaluations()
            assert checks and all(check.passed and check.asset_key == raw for check in checks)
            emissions = AssetKey(["plant_c", stack, "cems_hourly_emissions"])
            assert run(defs, instance, AssetSelection.assets(emissions), partition_key=DAY.isoformat()).success
            with duckdb.connect(str(warehouse), read_only=True) as connection:
                counts[stack] = {
                    name: connection.execute(
                        f"SELECT unit_id, count(*) FROM plant.{table_name(key)} GROUP BY 1"
                    ).fetchall()
                    for name, key in (("raw", raw), ("emissions", emissions))
                }
    assert counts == {
        "stack1": {"raw": [("U1", 24)], "emissions": [("U1", 24)]},
        "stack2": {"raw": [("U2", 24)], "emissions": [("U2", 24)]},
    }
    # Each instance accepted only its own file into its own folder.
    assert [p.name for p in (tmp_path / "stack1" / "acc").rglob("*.csv")] != []
    assert not any("U2" in p.name for p in (tmp_path / "stack1" / "acc").rglob("*"))
    assert not any("U1" in p.name for p in (tmp_path / "stack2" / "acc").rglob("*"))


def test_two_cems_instances_on_one_folder_are_refused_naming_both_files(tmp_path):
    files = {
        "plant_c/site/defs.yaml": SITE.format(timezone="America/Chicago"),
        "plant_c/stack1/defs.yaml": cems_yaml("U1", tmp_path / "shared"),
        "plant_c/stack2/defs.yaml": cems_yaml("U2", tmp_path / "shared"),
    }
    message = _load_error(tmp_path / "project", files)
    assert "plant_c/stack1/defs.yaml: field 'dahs_drop_folder'" in message
    assert f"{tmp_path / 'shared' / 'drop'}" in message and "plant_c/stack2/defs.yaml" in message


@pytest.mark.skipif(not LANGLEY.exists(), reason="needs ../shared/data/epa (real EPA files)")
def test_epa_history_of_a_cems_instance_lands_in_its_own_tables(tmp_path):
    (tmp_path / "epa").mkdir()
    shutil.copy(LANGLEY, tmp_path / "epa" / LANGLEY.name)
    epa = f"  epa_folder: {tmp_path / 'epa'}\n  epa_history_start: 2018-01-01\n"
    project = tmp_path / "project"
    defs = load_project(
        project,
        {
            "plant_c/site/defs.yaml": SITE.format(timezone="America/Boise"),
            "plant_c/stack1/defs.yaml": cems_yaml("CT1", tmp_path / "stack1").replace(
                "  lookback_days", epa + "  lookback_days"
            ),
            "plant_c/stack2/defs.yaml": cems_yaml("U2", tmp_path / "stack2"),
        },
    )
    hourly, quarterly = (AssetKey(["plant_c", "stack1", name]) for name in ("cems_campd_hourly", "cems_epa_quarterly"))
    assert AssetKey(["plant_c", "stack2", "cems_campd_hourly"]) not in defs.resolve_asset_graph().get_all_asset_keys()
    with instance_for_test() as instance:
        assert run(defs, instance, AssetSelection.assets(hourly)).success
        assert run(defs, instance, AssetSelection.assets(quarterly), partition_key="2018-01-01").success
    with duckdb.connect(str(project / "w.duckdb"), read_only=True) as connection:
        hours = connection.execute(f"SELECT count(*), sum(co2_mass_tons) FROM plant.{table_name(hourly)}").fetchone()
        quarter = connection.execute(
            f"SELECT unit_id, present, expected, co2_mass_tons FROM plant.{table_name(quarterly)}"
        ).fetchall()
    assert hours[0] == 8760
    # The quarterly report read the instance's own hourly table: Q1 2018 (2,160 hours) of unit CT1.
    assert [(unit, present, expected) for unit, present, expected, _ in quarter] == [("CT1", 2160, 2160)]
    assert 0 < quarter[0][3] < hours[1]
