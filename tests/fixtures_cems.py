"""Pytest fixtures for the cems demo services (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from gl_demo_plant.cems_plc import ThreadedCemsPlcServer
from gl_pipelines.config import SiteConfig

DEMO_LST_OFFSET = -6


@pytest.fixture(scope="session")
def demo_cems_plc(request):
    """The demo CEMS PLC (Modbus TCP, last-completed-hour block) on a free loopback port."""
    from gl_pipelines.config import load_site_config

    with ThreadedCemsPlcServer(source=load_site_config().cems, port=0) as server:
        yield server


@pytest.fixture
def cems_site(site: SiteConfig, demo_cems_plc, tmp_path) -> SiteConfig:
    """The demo site with its CEMS folders under tmp_path and the PLC at the demo PLC's port."""
    cems = site.cems
    cems = cems.model_copy(
        update={
            "dahs_drop_folder": tmp_path / "drop",
            "quarantine_folder": tmp_path / "quarantine",
            "accepted_folder": tmp_path / "accepted",
            "epa_folder": tmp_path / "epa",
            "plc": cems.plc.model_copy(update={"host": "127.0.0.1", "port": demo_cems_plc.port}),
        }
    )
    (tmp_path / "drop").mkdir()
    return site.model_copy(update={"cems": cems})
