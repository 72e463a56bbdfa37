"""The real Idaho EPA hours, read once per test session (the 24 zips take seconds to import)."""

import pytest

from gl_pipelines.cems.epa_campd import read_epa_hourly
from tests.epa_data import EPA_DIR

IDAHO = sorted((EPA_DIR / "hourly_idaho_2017_2018").glob("*.zip"))


@pytest.fixture(scope="session")
def idaho_epa():
    """Every Idaho unit-hour of 2017-2018 as read_epa_hourly returns it (tests must not modify it)."""
    return read_epa_hourly(IDAHO)
