"""A CO2 gap running past the end of an LST day: filled from the hour before while the next day is
unknown, flagged, and recomputed with the hour after once the next day's DAHS file is stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from dagster import build_sensor_context, instance_for_test

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import lst_day_window, write_day
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.sensors.cems_gaps import GAP_TAG, build_cems_open_gap_sensor
from tests.assets.test_cems import LST, load_files, table
from tests.runs import run

DAY, NEXT = date(2026, 11, 1), date(2026, 11, 2)
NOW = datetime(2026, 11, 3, 12, tzinfo=UTC)


def gap_sensor_tick(defs, instance, source):
    sensor = build_cems_open_gap_sensor(source, "cems_daily_job", clock=lambda: NOW)
    return sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def()))


def co2(warehouse) -> pd.DataFrame:
    emissions = table(warehouse, "cems_hourly_emissions")
    return emissions.set_index(pd.to_datetime(emissions["hour_start_lst"]))[["co2_pct", "co2_method"]]


def test_gap_open_at_the_end_of_a_day_is_closed_when_the_next_day_arrives(cems_site, tmp_path):
    source = cems_site.cems
    start, end = lst_day_window(DAY, LST)
    last_two = [end - timedelta(hours=2), end - timedelta(hours=1)]  # 22:00 and 23:00 LST
    write_day(
        source.dahs_drop_folder,
        "B1",
        DAY,
        LST,
        faults=cems_model.CemsFaults(missing=dict.fromkeys(last_two, ("co2",))),
    )
    with instance_for_test() as instance:
        defs = build_definitions(cems_site, tmp_path / "w.duckdb")
        warehouse = tmp_path / "w.duckdb"
        _, runs = load_files(defs, instance)
        assert all(r.success for r in runs)
        first = run(defs, instance, ["cems_hourly_emissions", "cems_daily_emissions"], partition_key=f"{DAY}")
        assert first.success
        metadata = first.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["open_gaps_at_end"].value == ["B1/co2"] and metadata["following_rows"].value == 0

        before = co2(warehouse)
        hour_21 = before.loc[pd.Timestamp(f"{DAY} 21:00"), "co2_pct"]
        gap = before.loc[pd.Timestamp(f"{DAY} 22:00") :]
        assert (gap["co2_pct"] == hour_21).all() and gap["co2_method"].str.endswith("hour_before").all()
        assert gap_sensor_tick(defs, instance, source).run_requests == []  # the next day is not stored yet

        write_day(source.dahs_drop_folder, "B1", NEXT, LST, faults=None)
        _, runs = load_files(defs, instance, cursor=None)
        assert all(r.success for r in runs)
        requests = gap_sensor_tick(defs, instance, source).run_requests
        assert [(r.partition_key, r.tags[GAP_TAG]) for r in requests] == [(f"{DAY}", "B1/co2")]

        again = run(defs, instance, ["cems_hourly_emissions", "cems_daily_emissions"], partition_key=f"{DAY}")
        assert again.success
        metadata = again.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["open_gaps_at_end"].value == [] and metadata["following_rows"].value == 24
        after = co2(warehouse).loc[pd.Timestamp(f"{DAY} 00:00") : pd.Timestamp(f"{DAY} 23:00")]
        raw = table(warehouse, "cems_hourly_raw")
        next_first = raw.loc[raw["hour_start_utc"] == pd.Timestamp(end), "co2_pct"].item()  # as the DAHS file rounds it
        closed = after.loc[pd.Timestamp(f"{DAY} 22:00") :]
        assert closed["co2_pct"].to_numpy() == pytest.approx([(hour_21 + next_first) / 2] * 2)
        assert closed["co2_method"].str.endswith("avg_before_after").all()
        assert (after.drop(closed.index) == before.drop(gap.index)).all(axis=None)  # other hours unchanged
        assert gap_sensor_tick(defs, instance, source).run_requests == []  # closed: nothing more to do


def test_a_next_day_that_failed_its_checks_does_not_close_the_gap(cems_site, tmp_path):
    source = cems_site.cems
    _, end = lst_day_window(DAY, LST)
    last_two = [end - timedelta(hours=2), end - timedelta(hours=1)]
    faults = cems_model.CemsFaults(missing=dict.fromkeys(last_two, ("co2",)))
    write_day(source.dahs_drop_folder, "B1", DAY, LST, faults=faults)
    with instance_for_test() as instance:
        defs = build_definitions(cems_site, tmp_path / "w.duckdb")
        warehouse = tmp_path / "w.duckdb"
        load_files(defs, instance)
        assert run(defs, instance, ["cems_hourly_emissions"], partition_key=f"{DAY}").success
        before = co2(warehouse)

        # The next day's file says CO2 35 % (valid) at 00:00: stored, but its range check fails.
        (path,) = write_day(source.dahs_drop_folder, "B1", NEXT, LST, faults=None)
        lines = path.read_text().splitlines()
        column = lines[0].split(",").index("CO2_PCT")
        fields = lines[1].split(",")
        fields[column] = "35.0"
        path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
        _, runs = load_files(defs, instance, cursor=None)
        checks = {c.check_name: c.passed for r in runs for c in r.get_asset_check_evaluations()}
        assert checks["cems_raw_values_in_range"] is False

        requests = gap_sensor_tick(defs, instance, source).run_requests
        assert [r.partition_key for r in requests] == [f"{DAY}"]  # the next day is stored, so the day is re-run
        again = run(defs, instance, ["cems_hourly_emissions"], partition_key=f"{DAY}")
        metadata = again.get_asset_materialization_events()[0].materialization.metadata
        # ...but hours that failed their checks close nothing: the gap stays open, the values as they were.
        assert metadata["following_rows"].value == 0 and metadata["open_gaps_at_end"].value == ["B1/co2"]
        pd.testing.assert_frame_equal(co2(warehouse), before)
