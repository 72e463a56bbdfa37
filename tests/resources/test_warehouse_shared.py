"""The shared warehouse (Iceberg, catalog in PostgreSQL): the same promises as the DuckDB file, with writers
in several processes at once."""

from __future__ import annotations

import pytest
from dagster import instance_for_test

from gl_pipelines.definitions import build_definitions
from tests.assets.test_wap import assert_wap_cycle, read
from tests.resources.shared_warehouse import scratch_catalog
from tests.runs import run


@pytest.fixture
def shared(tmp_path):
    with scratch_catalog(tmp_path / "lake") as settings:
        yield settings


def test_scada_write_audit_publish_on_the_shared_warehouse(site, shared, plant):
    hour = "2026-11-01-03:00"
    defs = build_definitions(site, shared)
    with instance_for_test() as instance:

        def materialize():
            return run(defs, instance, ["scada_readings"], partition_key=hour)

        def bad():
            plant.faults.out_of_range["Boiler1.SteamFlow"] = 999.0
            return materialize()

        def fix():
            plant.faults.out_of_range.clear()
            return materialize()

        before, quarantined = assert_wap_cycle(
            shared, "scada_readings", "tag, ts", materialize, bad, fix, ["scada_readings_expectations"], hour
        )
    assert len(before) == len(quarantined) == 6 * 360
    assert read(shared, "select count(*) as n from plant.scada_readings")["n"].item() == 6 * 360
