"""The accepted-file store and the drop-folder sensor, on a real folder with dagster's sensor context."""

from __future__ import annotations

import json
from datetime import date

import pytest
from dagster import build_sensor_context, instance_for_test

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import lst_day_window, write_day, write_malformed
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.cems.dahs_store import current_entries, rows_for_window
from gl_pipelines.sensors.cems_files import build_cems_file_sensor

DAY, LST = date(2026, 11, 1), -6


def test_per_hour_files_each_ask_for_their_own_hour(source, tick):
    paths = write_day(source.dahs_drop_folder, "B1", DAY, LST, per_hour=True)[:3]
    for extra in write_day(source.dahs_drop_folder, "B1", DAY, LST, per_hour=True)[3:]:
        extra.unlink()
    result = tick()
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests] == [
        ("2026-11-01-00:00", "2026-11-01-00:00"),
        ("2026-11-01-01:00", "2026-11-01-01:00"),
        ("2026-11-01-02:00", "2026-11-01-02:00"),
    ]
    cursor = json.loads(result.cursor)
    assert sorted(cursor) == [p.name for p in paths] and all(len(v) == 3 for v in cursor.values())


def test_hidden_partial_files_wait_and_nothing_is_requested_twice(source, tick):
    source.dahs_drop_folder.mkdir(parents=True)
    (source.dahs_drop_folder / ".GLDAHS_B1_20261101.csv.partial").write_text("UNIT_ID,OP_DA")
    first = tick()
    assert not first.run_requests and not source.quarantine_folder.exists()
    write_day(source.dahs_drop_folder, "B1", DAY, LST)
    second = tick(first.cursor)
    assert len(second.run_requests) == 1
    assert not tick(second.cursor).run_requests


def test_quarantine_never_overwrites_and_a_fixed_file_is_accepted(source, tick):
    path, line = write_malformed(source.dahs_drop_folder, "B1", DAY, LST, "non_numeric")
    first = tick()
    write_malformed(source.dahs_drop_folder, "B1", DAY, LST, "out_of_order")
    second = tick(first.cursor)
    reasons = sorted(source.quarantine_folder.glob("*.reason.txt"))
    assert len(reasons) == 2 and len(list(source.quarantine_folder.iterdir())) == 4
    assert "out of order" in second.skip_reason.skip_message
    write_day(source.dahs_drop_folder, "B1", DAY, LST)
    assert len(tick(second.cursor).run_requests) == 1
    assert [entry.name for entry in current_entries(source.accepted_folder)] == [path.name]


def test_later_file_wins_an_hour_and_a_rewrite_supersedes_its_old_version(source, tick):
    start, end = lst_day_window(DAY, LST)
    hours = cems_model.hour_starts(start, end)
    write_day(source.dahs_drop_folder, "B1", DAY, LST)  # daily file, demo faults
    cursor = tick().cursor
    # A correction for one hour, in its own file, accepted later.
    (correction,) = [p for p in write_day(source.dahs_drop_folder, "B1", DAY, LST, faults=None, per_hour=True)][7:8]
    for other in source.dahs_drop_folder.glob("GLDAHS_B1_20261101_*.csv"):
        if other != correction:
            other.unlink()
    cursor = tick(cursor).cursor
    rows, used = rows_for_window(source.accepted_folder, start, end, LST, ["B1"])
    assert len(rows) == 24 and len(used) == 2
    assert rows.loc[rows["hour_start_lst"].dt.hour == 7, "co2_status"].item() == "valid"  # the correction
    assert rows.loc[rows["hour_start_lst"].dt.hour == 7, "source_ref"].item().startswith(correction.name)

    # The DAHS rewrites the daily file with 12 hours dropped: its old version no longer counts at all.
    faults = cems_model.CemsFaults(dropped_hours=frozenset(hours[12:]))
    write_day(source.dahs_drop_folder, "B1", DAY, LST, faults=faults)
    assert len(tick(cursor).run_requests) == 1
    rows, _ = rows_for_window(source.accepted_folder, start, end, LST, ["B1"])
    assert len(rows) == 12


def test_a_tampered_accepted_copy_is_refused(source, tick):
    write_day(source.dahs_drop_folder, "B1", DAY, LST)
    tick()
    (copy,) = (source.accepted_folder / "files").iterdir()
    copy.write_bytes(copy.read_bytes().replace(b"1.00,", b"0.50,", 1))
    start, end = lst_day_window(DAY, LST)
    with pytest.raises(RuntimeError, match="does not match its hash"):
        rows_for_window(source.accepted_folder, start, end, LST, ["B1"])


def test_a_rewrite_that_drops_hours_reruns_the_hours_of_the_version_it_replaces(source):
    """Before: the run covered only the new version's hours (00..11), so hours 12..23 kept the old
    version's rows in the warehouse although that version no longer counts."""
    sensor = build_cems_file_sensor(source, "cems_raw_job")
    start, end = lst_day_window(DAY, LST)
    hours = cems_model.hour_starts(start, end)
    with instance_for_test() as instance:
        write_day(source.dahs_drop_folder, "B1", DAY, LST)
        first = sensor(build_sensor_context(instance=instance))
        write_day(
            source.dahs_drop_folder, "B1", DAY, LST, faults=cems_model.CemsFaults(dropped_hours=frozenset(hours[12:]))
        )
        second = sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    (request,) = second.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-01-00:00", "2026-11-01-23:00")
