"""Pytest fixtures for the erp demo services (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.sap_odata import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SERVICE_PATH,
    TOKEN_PATH,
    DemoSapODataService,
)
from gl_pipelines.config import SiteConfig, load_site_config
from gl_pipelines.resources.erp import ErpResource

ERP_SERVER_PAGE = 7  # server-driven page size: a plant day (23-25 receipts) spans several pages


@pytest.fixture
def erp_service():
    """A fresh demo SAP OData service (its own documents, faults and tokens) on a free loopback port."""
    service = DemoSapODataService(page_size=ERP_SERVER_PAGE)
    with HttpServerThread(service.app, name="demo-sap-odata") as server:
        service.url = server.url
        yield service


@pytest.fixture
def erp_resource(erp_service) -> ErpResource:
    """ErpResource on the demo service: OAuth2 client credentials, $top windows of 10, quick retries."""
    return ErpResource(
        base_url=erp_service.url + SERVICE_PATH,
        source_name="test-erp",
        auth_mode="oauth2",
        token_url=erp_service.url + TOKEN_PATH,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        page_size=10,
        timezone="America/Chicago",
        backoff_initial_s=0.01,
        backoff_max_s=2.0,
        max_attempts=3,
    )


@pytest.fixture
def erp_site(erp_service, monkeypatch) -> SiteConfig:
    """The demo site with its ERP on the demo service ($top windows of 10); credentials only in the environment."""
    monkeypatch.setenv("GL_ERP_CLIENT_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GL_ERP_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    site = load_site_config()
    erp = site.erp.model_copy(update={"service_url": erp_service.url + SERVICE_PATH, "page_size": 10})
    return site.model_copy(update={"erp": erp})
