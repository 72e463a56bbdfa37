"""Proficy Historian REST resource and asset against the demo plant's Historian REST service
(gl_demo_plant/proficy_historian.py, shaped from the Historian REST reference), serving this file's samples:
at most `count` samples per tag from the start, end included; tokens from its UAA endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.proficy_historian import ROOT, TOKEN_PATH, DemoProficyHistorian
from gl_pipelines.assets.proficy import build_proficy_assets
from gl_pipelines.config import CheckThresholds
from gl_pipelines.resources.historian import HistorianError
from gl_pipelines.resources.http import HttpResponseFormatError
from gl_pipelines.resources.proficy import ProficyHistorianResource, ProficySource, proficy_from_source
from gl_pipelines.resources.warehouse import WarehouseStaging, table_name, warehouse_io_manager
from tests.components.project import SITE, load_project
from tests.resources.vendor_auth import CLIENT_ID, CLIENT_SECRET

START = datetime(2026, 11, 2, 6, tzinfo=UTC)  # midnight in Chicago: the plant day 2026-11-02
END = START + timedelta(days=1)
INTERVAL_S = 60
TAGS = [
    {"name": "Boiler1.SteamFlow", "path": "PLANT1.BLR1.FT101.F_CV", "unit": "t/h", "min": 0, "max": 500},
    {"name": "Boiler1.DrumPressure", "path": "PLANT1.BLR1.PT104.F_CV", "unit": "bar", "min": 0, "max": 200},
]


def value(tag: str, k: int) -> float:
    return (100.0 if "FT" in tag else 50.0) + (k % 60) * 0.25


def quality(k: int) -> int:
    """Sample k's DataQuality StatusType: every 40th Uncertain (1), every 97th NA (2), else Good (3)."""
    return 1 if k % 40 == 39 else 2 if k % 97 == 96 else 3


class Historian(DemoProficyHistorian):
    """The demo plant's Proficy service with this file's samples: one a minute from START, the end included,
    Quality by `quality(k)`, sample 777 without a value; tags named NOPE... do not exist."""

    def __init__(self) -> None:
        super().__init__(clients={CLIENT_ID: CLIENT_SECRET})

    def samples(self, name: str, since: datetime, until: datetime, count: int) -> list[dict] | None:
        if name.startswith("NOPE"):
            return None
        samples = []
        for k in range(max(0, int((since - START).total_seconds() // INTERVAL_S)), 2000):
            stamp = START + timedelta(seconds=k * INTERVAL_S)
            if since <= stamp <= until and len(samples) < count:
                text = "" if k == 777 else f"{value(name, k)}"
                samples.append({"TimeStamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "Value": text,
                                "Quality": quality(k)})  # fmt: skip
        return samples


@pytest.fixture
def historian():
    service = Historian()
    with HttpServerThread(service.app, name="proficy-like") as server:
        service.url = server.url
        yield service


def source(service: Historian, tags=TAGS) -> ProficySource:
    return ProficySource(
        base_url=service.url + ROOT,
        source_name="proficy-test",
        sample_interval_s=INTERVAL_S,
        token_url=service.url + TOKEN_PATH,
        client_id=CLIENT_ID,
        max_count=500,
        tags=tags,
    )


def resource(service: Historian, tags=TAGS) -> ProficyHistorianResource:
    return proficy_from_source(source(service, tags), client_secret=CLIENT_SECRET)


def test_a_day_of_raw_samples_paged_by_count_in_the_canonical_schema(historian):
    api = resource(historian)
    read = api.read_raw(source(historian).proficy_tags(), START, END)
    frame = read.frame
    assert list(frame.columns) == ["ts", "tag", "value", "unit", "quality", "status", "source"]
    assert len(frame) == 2 * 1440 and read.dropped_outside_window == {t["name"]: 1 for t in TAGS}  # end sample
    flow = frame[frame["tag"] == "Boiler1.SteamFlow"].reset_index(drop=True)
    assert flow["ts"].iloc[0] == START and flow["ts"].iloc[-1] == END - timedelta(minutes=1)
    assert flow["value"].iloc[5] == value("FT", 5) and flow["unit"].iloc[0] == "t/h"
    assert (flow["quality"].iloc[[39, 96, 0]] == ["uncertain", "bad", "good"]).all()
    assert flow["quality"].iloc[777] == "bad" and flow["status"].iloc[777] == "Good, non-numeric value ''"
    # Both tags per call, ';' between the names; 1441 samples at count=500 are 3 pages, a 4th page when the
    # third came back full.
    assert historian.stats.calls[0][0] == ["PLANT1.BLR1.FT101.F_CV", "PLANT1.BLR1.PT104.F_CV"]
    assert read.pages == 3 and historian.stats.token_requests == 1


def test_bad_answers_name_the_instance_and_the_tags(historian):
    unknown = [*TAGS, {"name": "Boiler1.Ghost", "path": "NOPE.TAG", "unit": "bar", "min": 0, "max": 1}]
    tags = source(historian, unknown).proficy_tags()
    with pytest.raises(HistorianError, match=r"proficy-test: Historian returned errors for Boiler1.Ghost \(NOPE.TAG\): "
                       "ErrorCode -8"):  # fmt: skip
        resource(historian, unknown).read_raw(tags, START, END)
    tags = source(historian).proficy_tags()
    historian.faults.error = (-12, "Not authorized to read data")
    with pytest.raises(HistorianError, match="proficy-test: Historian ErrorCode -12 for tags Boiler1.SteamFlow, "
                       "Boiler1.DrumPressure: Not authorized to read data"):  # fmt: skip
        resource(historian).read_raw(tags, START, END)
    historian.faults.error = None
    historian.faults.malformed_samples = True
    with pytest.raises(HistorianError, match=r"proficy-test: .*Boiler1.SteamFlow \(PLANT1.BLR1.FT101.F_CV\): Samples"):
        resource(historian).read_raw(tags, START, END)
    historian.faults.malformed_samples = False
    historian.faults.html_login_page = True
    with pytest.raises(HttpResponseFormatError, match="proficy-test: GET .*/datapoints/raw/.* expected a JSON"):
        resource(historian).read_raw(tags, START, END)


def test_an_expired_token_is_replaced_once(historian):
    historian.faults.expire_next_token = True
    read = resource(historian).read_raw(source(historian).proficy_tags(), START, START + timedelta(hours=1))
    assert len(read.frame) == 120 and historian.stats.token_requests == 2


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_the_asset_stores_the_day_with_the_historian_checks(historian, tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    result = materialize(
        build_proficy_assets(source(historian), CheckThresholds(), "America/Chicago"),
        resources={
            "proficy": resource(historian),
            "warehouse": warehouse_io_manager(warehouse),
            "warehouse_staging": WarehouseStaging(database=warehouse),
        },
        partition_key="2026-11-02",
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"proficy_recorded_expectations": True, "proficy_recorded_completeness": True}
    with duckdb.connect(warehouse, read_only=True) as con:
        stored = con.execute("select count(*), count(*) filter (where quality = 'good') from plant.proficy_recorded")
        assert stored.fetchall() == [(2880, 2880 - 2 * (36 + 14 + 1))]


PROFICY_INSTANCE = """type: gl_pipelines.components.proficy.ProficyComponent
attributes:
  base_url: {url}
  source_name: proficy-yaml
  sample_interval_s: 60
  token_url: {token_url}
  client_id: {client_id}
  client_secret_env: GL_TEST_PROFICY_SECRET
  max_count: 500
  chunk_values: 720
  tags:
    - {{name: Boiler1.SteamFlow, path: PLANT1.BLR1.FT101.F_CV, unit: t/h, min: 0, max: 500}}
"""


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
def test_a_proficy_instance_declared_in_yaml_stores_its_day(historian, tmp_path, monkeypatch):
    monkeypatch.setenv("GL_TEST_PROFICY_SECRET", CLIENT_SECRET)
    instance = PROFICY_INSTANCE.format(
        url=historian.url + ROOT, token_url=historian.url + TOKEN_PATH, client_id=CLIENT_ID
    )
    defs = load_project(
        tmp_path / "project",
        {"north/site/defs.yaml": SITE.format(timezone="America/Chicago"), "north/hist/defs.yaml": instance},
    )
    key = AssetKey(["north", "hist", "proficy_recorded"])
    assert {job.name for job in defs.jobs} >= {"north__hist__proficy_daily_job"}
    result = materialize(
        [defs.resolve_assets_def(key)], instance=DagsterInstance.ephemeral(), partition_key="2026-11-02"
    )
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    query = result.get_asset_materialization_events()[0].materialization.metadata["query"].value
    assert "2 chunks of at most ~720 values" in query  # the instance's chunk_values: the day in two time slices
    with duckdb.connect(str(tmp_path / "project" / "w.duckdb"), read_only=True) as con:
        assert con.execute(f"select count(*) from plant.{table_name(key)}").fetchall() == [(1440,)]


@pytest.mark.parametrize(
    ("fault", "stopped"),
    [
        (
            "repeat_first_page",
            r"page 2 \(asked from 2026-11-02T14:19:00\+00:00, reached 2026-11-02T14:19:00\+00:00\): the page made "
            "no progress",
        ),
        (
            "past_end",
            r"page 3 \(asked from 2026-11-02T22:38:00\+00:00, reached 2026-11-03T06:57:00\+00:00\): past the window "
            r"end 2026-11-03T06:00:00\+00:00",
        ),
    ],
)
def test_a_server_that_keeps_paging_is_stopped_at_the_page_that_goes_nowhere(historian, fault, stopped):
    setattr(historian.faults, fault, True)
    with pytest.raises(
        HistorianError, match=rf"^proficy-test: tag Boiler1.SteamFlow \(PLANT1.BLR1.FT101.F_CV\), {stopped}"
    ):
        resource(historian).read_raw(source(historian).proficy_tags(), START, END)
    assert len(historian.stats.calls) <= 3  # stopped at once, not after paging until killed


def test_a_read_past_max_pages_is_stopped(historian):
    capped = proficy_from_source(source(historian).model_copy(update={"max_pages": 2}), client_secret=CLIENT_SECRET)
    with pytest.raises(HistorianError, match=r"Boiler1.SteamFlow .*page 2 .*still paging after max_pages=2 pages"):
        capped.read_raw(source(historian).proficy_tags(), START, END)
    assert len(historian.stats.calls) == 2
