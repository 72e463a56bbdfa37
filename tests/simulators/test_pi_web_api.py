"""The demo PI Web API speaks the PI dialect: paths, WebIds, streamset shapes, limits and error bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gl_demo_plant.pi_web_api import Mark, web_id_of
from gl_demo_plant.plant_model import PROCESS_TAGS, sample_times

START = datetime(2026, 11, 1, 9, tzinfo=UTC)


def get(pi, path: str, params=None) -> httpx.Response:
    return httpx.get(pi.url + path, params=params, timeout=10)


def window(minutes: int) -> list[tuple[str, str]]:
    end = START + timedelta(minutes=minutes)
    return [("startTime", START.isoformat()), ("endTime", end.isoformat())]


def test_point_lookup_and_unknown_path(pi):
    found = get(pi, "/points", {"path": "\\\\DEMO-PI\\Boiler1.SteamFlow"})
    assert found.status_code == 200
    body = found.json()
    assert body["WebId"] == web_id_of("Boiler1.SteamFlow") and body["EngineeringUnits"] == "t/h"
    assert body["Path"] == "\\\\DEMO-PI\\Boiler1.SteamFlow"
    missing = get(pi, "/points", {"path": "\\\\DEMO-PI\\Nope"})
    assert missing.status_code == 404
    assert missing.json() == {"Errors": ["PI Point not found '\\\\DEMO-PI\\Nope'."]}


def test_streamset_recorded_shape_is_inclusive_and_consistent_with_the_model(pi):
    model = PROCESS_TAGS[0]
    params = [("webId", web_id_of(model.name)), ("webId", "P1DPbogus"), *window(1), ("maxCount", "1000")]
    response = get(pi, "/streamsets/recorded", params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    good, bad = response.json()["Items"]
    assert good["Name"] == model.name and good["WebId"] == web_id_of(model.name)
    stamps = [item["Timestamp"] for item in good["Items"]]
    assert stamps[0] == "2026-11-01T09:00:00Z" and stamps[-1] == "2026-11-01T09:01:00Z"  # both ends inclusive
    times = sample_times(START, START + timedelta(minutes=1, seconds=1))
    assert [item["Value"] for item in good["Items"]] == model.values(times).tolist()
    assert set(good["Items"][0]) == {
        "Timestamp",
        "Value",
        "UnitsAbbreviation",
        "Good",
        "Questionable",
        "Substituted",
        "Annotated",
    }
    assert bad["Errors"] and bad["Items"] == []


def test_max_count_cuts_streams_and_server_limit_refuses(pi):
    params = [("webId", web_id_of("Boiler1.SteamFlow")), *window(60), ("maxCount", "7")]
    assert len(get(pi, "/streamsets/recorded", params).json()["Items"][0]["Items"]) == 7
    pi.max_count = 5
    refused = get(pi, "/streamsets/recorded", params)
    assert refused.status_code == 400 and "server limit of 5" in refused.json()["Errors"][0]


def test_digital_state_shape(pi):
    pi.faults.marks = [Mark("Boiler1.SteamFlow", START, START + timedelta(seconds=20), "Shutdown")]
    items = get(pi, f"/streams/{web_id_of('Boiler1.SteamFlow')}/recorded", window(1)).json()["Items"]
    assert items[0]["Value"] == {"Name": "Shutdown", "Value": 254, "IsSystem": True} and items[0]["Good"] is False
    assert isinstance(items[2]["Value"], float)


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_content_type", "web_exception"])
def test_payload_faults(pi, fault):
    setattr(pi.faults, fault, 1)
    response = get(pi, f"/streams/{web_id_of('Boiler1.SteamFlow')}/recorded", window(1))
    if fault == "malformed_json":
        with pytest.raises(ValueError):
            response.json()
    elif fault == "wrong_content_type":
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.json()["WebException"]["StatusCode"] == 502
    assert get(pi, f"/streams/{web_id_of('Boiler1.SteamFlow')}/recorded", window(1)).json()["Items"]


def test_injected_status_with_retry_after(pi):
    pi.faults.statuses, pi.faults.retry_after = [429], "3"
    busy = get(pi, f"/streams/{web_id_of('Boiler1.SteamFlow')}/recorded", window(1))
    assert busy.status_code == 429 and busy.headers["retry-after"] == "3" and busy.json()["Errors"]
