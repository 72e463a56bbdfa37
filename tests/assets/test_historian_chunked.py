"""Chunked historian extraction against the demo PI Web API and the demo Proficy Historian: the rows stored, the
payload digest and the audit's verdict do not depend on `chunk_values`, a check failing in the last chunk
quarantines the whole day, and a re-run replaces the day."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from dagster import instance_for_test, materialize

from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.pi_web_api import Mark
from gl_pipelines.assets.proficy import build_proficy_assets
from gl_pipelines.config import CheckThresholds
from gl_pipelines.resources.proficy import proficy_from_source
from gl_pipelines.resources.warehouse import WarehouseStaging, warehouse_io_manager
from tests.assets.test_historian import DAY_UTC, run, stored
from tests.assets.test_scada import step_failure_message
from tests.assets.test_scada_chunked import metadata_of, tables_in
from tests.resources.test_proficy import TAGS, Historian, source
from tests.resources.vendor_auth import CLIENT_SECRET

ONE_READ = 1_000_000
PI_DAY_ROWS = 5 * 25 * 360  # the demo site's 5 PI points over the 25-hour fall-back day at 10 s
PROFICY_DAY_ROWS = 2 * 1440  # test_proficy's 2 tags over a plant day at 60 s
PROFICY_DAY = "2026-11-02"

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def with_chunks(site, chunk_values: int):
    return site.model_copy(update={"historian": site.historian.model_copy(update={"chunk_values": chunk_values})})


def quarantined(warehouse, table: str, run_id: str) -> tuple[int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f"select count(*), count(distinct tag) from quarantine.{table} where _wap_run_id = ?", [run_id]
        ).fetchall()[0]


def test_a_pi_day_in_chunks_stores_what_one_read_stores_and_reruns_replace(historian_site, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    one = run(with_chunks(historian_site, ONE_READ), warehouse, instance)
    assert one.success
    whole, whole_metadata = stored(warehouse), metadata_of(one)
    assert len(whole) == PI_DAY_ROWS and "1 chunks of at most ~1000000 values" in whole_metadata["query"]
    # 9000 values: one point's day per chunk; 4000: each point's day in three time slices of 4000 values.
    for chunk_values, chunks in ((9000, 5), (4000, 15)):
        result = run(with_chunks(historian_site, chunk_values), warehouse, instance)
        assert result.success and all(check.passed for check in result.get_asset_check_evaluations())
        metadata = metadata_of(result)
        assert f"{chunks} chunks of at most ~{chunk_values} values" in metadata["query"]
        assert metadata["payload_sha256"] == whole_metadata["payload_sha256"]
        assert metadata["dagster/row_count"] == PI_DAY_ROWS
        pd.testing.assert_frame_equal(stored(warehouse), whole)  # the same rows, replaced rather than appended
    assert tables_in(warehouse, "staging") == []


def test_a_pi_check_failing_in_the_last_chunk_quarantines_every_chunk_and_keeps_the_stored_day(
    historian_site, tmp_path, instance, pi
):
    warehouse = tmp_path / "w.duckdb"
    site = with_chunks(historian_site, 9000)  # one point per chunk
    assert run(site, warehouse, instance).success
    before = stored(warehouse)

    last = site.historian.tags[-1].name  # read in the fifth and last chunk
    pi.faults.marks = [Mark(last, *DAY_UTC, "I/O Timeout")]
    failed = run(site, warehouse, instance)
    checks = {check.check_name: check for check in failed.get_asset_check_evaluations()}
    assert not checks["historian_recorded_completeness"].passed
    pd.testing.assert_frame_equal(stored(warehouse), before)
    # The first four chunks' good rows too: the day is one verdict.
    assert quarantined(warehouse, "historian_recorded", failed.run_id) == (PI_DAY_ROWS, 5)
    assert tables_in(warehouse, "staging") == []


class SpikingHistorian(Historian):
    """test_proficy's Historian; with `spike` set, Boiler1.DrumPressure's sample 1400 is 9999 bar (range 0-200)."""

    spike = False

    def samples(self, name, since, until, count):
        samples = super().samples(name, since, until, count)
        if self.spike and samples and "PT104" in name:
            for sample in samples:
                if sample["TimeStamp"] == "2026-11-03T05:20:00.000Z":  # sample 1400 of the day from 06:00 UTC
                    sample["Value"] = "9999"
        return samples


@pytest.fixture
def proficy():
    service = SpikingHistorian()
    with HttpServerThread(service.app, name="proficy-chunks") as server:
        service.url = server.url
        yield service


def run_proficy(service, warehouse, instance, chunk_values: int):
    declared = source(service).model_copy(update={"chunk_values": chunk_values})
    return materialize(
        build_proficy_assets(declared, CheckThresholds(), "America/Chicago"),
        resources={
            "proficy": proficy_from_source(declared, client_secret=CLIENT_SECRET),
            "warehouse": warehouse_io_manager(str(warehouse)),
            "warehouse_staging": WarehouseStaging(database=str(warehouse)),
        },
        instance=instance,
        partition_key=PROFICY_DAY,
        raise_on_error=False,
    )


def proficy_stored(warehouse) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select * from plant.proficy_recorded order by tag, ts").df()


def test_a_proficy_day_in_chunks_stores_what_one_read_stores_through_one_token(proficy, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    one = run_proficy(proficy, warehouse, instance, ONE_READ)
    assert one.success
    whole, whole_metadata = proficy_stored(warehouse), metadata_of(one)
    assert len(whole) == PROFICY_DAY_ROWS
    # 1440: one tag's day per chunk; 500: each tag's day in three time slices of 500 samples.
    for chunk_values, chunks in ((1440, 2), (500, 6)):
        tokens = proficy.stats.token_requests
        result = run_proficy(proficy, warehouse, instance, chunk_values)
        assert result.success and all(check.passed for check in result.get_asset_check_evaluations())
        metadata = metadata_of(result)
        assert f"{chunks} chunks of at most ~{chunk_values} values" in metadata["query"]
        assert metadata["payload_sha256"] == whole_metadata["payload_sha256"]
        assert metadata["dagster/row_count"] == PROFICY_DAY_ROWS
        assert proficy.stats.token_requests == tokens + 1  # every chunk through the one client of the read
        pd.testing.assert_frame_equal(proficy_stored(warehouse), whole)
    assert tables_in(warehouse, "staging") == []


def test_a_proficy_check_failing_in_the_last_chunk_quarantines_every_chunk_and_keeps_the_stored_day(
    proficy, tmp_path, instance
):
    warehouse = tmp_path / "w.duckdb"
    assert run_proficy(proficy, warehouse, instance, 1440).success
    before = proficy_stored(warehouse)

    proficy.spike = True  # in the second and last chunk (Boiler1.DrumPressure)
    failed = run_proficy(proficy, warehouse, instance, 1440)
    checks = {check.check_name: check for check in failed.get_asset_check_evaluations()}
    assert not checks["proficy_recorded_expectations"].passed
    assert "Boiler1.DrumPressure" in checks["proficy_recorded_expectations"].metadata["results"].value
    pd.testing.assert_frame_equal(proficy_stored(warehouse), before)
    assert quarantined(warehouse, "proficy_recorded", failed.run_id) == (PROFICY_DAY_ROWS, len(TAGS))
    assert tables_in(warehouse, "staging") == []


def test_a_proficy_server_that_repeats_its_page_fails_the_step_and_keeps_the_stored_day(proficy, tmp_path, instance):
    warehouse = tmp_path / "w.duckdb"
    assert run_proficy(proficy, warehouse, instance, 1440).success
    before = proficy_stored(warehouse)

    proficy.faults.repeat_first_page = True
    failed = run_proficy(proficy, warehouse, instance, 1440)
    assert not failed.success
    assert "proficy-test: tag Boiler1.SteamFlow (PLANT1.BLR1.FT101.F_CV), page 2" in step_failure_message(failed)
    assert "the page made no progress" in step_failure_message(failed)
    pd.testing.assert_frame_equal(proficy_stored(warehouse), before)
    assert tables_in(warehouse, "staging") == []
