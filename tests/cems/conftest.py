"""Shared CEMS fixtures: the real Idaho EPA hours, read once per session (the 24 zips take seconds to
import), and the drop-folder sensor on a temp folder with Dagster's sensor context."""

import pytest
from dagster import build_sensor_context, instance_for_test

from gl_pipelines.cems.epa_campd import read_epa_hourly
from gl_pipelines.config import load_site_config
from gl_pipelines.sensors.cems_files import build_cems_file_sensor
from tests.epa_data import EPA_DIR

IDAHO = sorted((EPA_DIR / "hourly_idaho_2017_2018").glob("*.zip"))


@pytest.fixture(scope="session")
def idaho_epa():
    """Every Idaho unit-hour of 2017-2018 as read_epa_hourly returns it (tests must not modify it)."""
    return read_epa_hourly(IDAHO)


@pytest.fixture
def source(tmp_path):
    """The demo CEMS source with its drop, quarantine and accepted folders in the test's temp folder."""
    cems = load_site_config().cems
    return cems.model_copy(
        update={
            "dahs_drop_folder": tmp_path / "drop",
            "quarantine_folder": tmp_path / "quarantine",
            "accepted_folder": tmp_path / "accepted",
        }
    )


@pytest.fixture(scope="module")
def instance():
    """One instance for the module: the sensor keeps its state in the cursor each test passes."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def tick(source, instance):
    """Evaluate the drop-folder sensor once, from the cursor given (None: the first tick)."""
    sensor = build_cems_file_sensor(source, "cems_raw_job")

    def evaluate(cursor=None):
        return sensor(build_sensor_context(instance=instance, cursor=cursor))

    return evaluate
