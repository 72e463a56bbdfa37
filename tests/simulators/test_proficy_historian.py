"""The demo Proficy Historian serves the plant model: the same value at the same time as OPC UA and PI, read by our
Proficy resource over its UAA token and count paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.plant_model import PROCESS_TAGS, UNCERTAIN_RATE, sample_times
from gl_demo_plant.proficy_historian import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, ROOT, TOKEN_PATH, DemoProficyHistorian
from gl_pipelines.resources.proficy import ProficySource, proficy_from_source

START = datetime(2026, 11, 1, 5, tzinfo=UTC)  # midnight in Chicago, the demo day
TAG = {model.name: model for model in PROCESS_TAGS}["Boiler1.FeedwaterTemp"]


@pytest.fixture(scope="module")
def historian():
    service = DemoProficyHistorian()
    with HttpServerThread(service.app, name="demo-proficy") as server:
        service.url = server.url
        yield service


def test_a_day_read_by_the_resource_is_the_plant_model(historian):
    source = ProficySource(
        base_url=historian.url + ROOT,
        sample_interval_s=10,
        token_url=TOKEN_PATH,
        client_id=DEMO_CLIENT_ID,
        max_count=5000,
        tags=[{"name": TAG.name, "unit": TAG.unit, "min": 0, "max": 200}],
    )
    end = START + timedelta(hours=25)  # the fall-back day
    read = proficy_from_source(source, client_secret=DEMO_CLIENT_SECRET).read_raw(source.proficy_tags(), START, end)
    times = sample_times(START, end)
    frame = read.frame
    assert len(frame) == len(times) == 9000 and read.pages == 2  # 9,001 samples with the end one: 5,000 + 4,001
    assert (frame["ts"].astype("int64") // 10**9 == times).all()
    assert np.allclose(frame["value"], TAG.values(times), rtol=0, atol=1e-9)
    uncertain = TAG.status_codes(times) != 0
    assert (frame["quality"] == np.where(uncertain, "uncertain", "good")).all()
    assert 0 < uncertain.sum() < 5 * UNCERTAIN_RATE * len(times)


def test_data_needs_a_token_and_an_unknown_tag_has_its_error_code(historian):
    window = "2026-11-01T05:00:00.000Z/2026-11-01T05:01:00.000Z"
    url = f"{historian.url}{ROOT}datapoints/raw/Boiler1.StackTemp;NoSuch.Tag/{window}/0/10"
    refused = httpx.get(url)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    wrong = httpx.post(
        historian.url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, "x")
    )
    assert wrong.status_code == 401
    token = httpx.post(
        historian.url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    ).json()["access_token"]
    body = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()
    stack, unknown = body["Data"]
    assert body["ErrorCode"] == 0 and unknown["ErrorCode"] == -8 and unknown["Samples"] == []
    assert [sample["TimeStamp"] for sample in stack["Samples"]][:2] == [
        "2026-11-01T05:00:00.000Z",
        "2026-11-01T05:00:10.000Z",
    ]
    assert len(stack["Samples"]) == 7 and all(isinstance(sample["Value"], str) for sample in stack["Samples"])
