"""Pytest fixtures for the historian demo services (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.pi_web_api import DemoPiWebApi, PiFaults, PiStats
from gl_pipelines.config import SiteConfig, load_site_config

PI_SYNTHETIC = 20
PI_CLIENT_ID = "gl-pipelines"
PI_CLIENT_SECRET = "pi-Cl1ent-S3cret-do-not-log-4e1b"


@pytest.fixture(scope="session")
def pi_service():
    api = DemoPiWebApi(n_synthetic=PI_SYNTHETIC)
    with HttpServerThread(api.app, name="demo-pi") as server:
        server.api = api
        yield server


@pytest.fixture
def pi(pi_service) -> DemoPiWebApi:
    """The running demo PI Web API with faults, limits, stats and auth reset before and after each test."""
    api: DemoPiWebApi = pi_service.api

    def reset() -> None:
        api.faults, api.stats = PiFaults(), PiStats()
        api.max_count = 150_000
        api.oauth_clients = {}
        api.token_lifetime_s = 3600
        api.revoke_tokens()

    reset()
    api.url = pi_service.url + "/piwebapi"
    yield api
    reset()


@pytest.fixture
def historian_site(pi) -> SiteConfig:
    """The demo site with its historian pointing at the demo PI Web API on its free port."""
    demo = load_site_config()
    return demo.model_copy(update={"historian": demo.historian.model_copy(update={"base_url": pi.url})})
