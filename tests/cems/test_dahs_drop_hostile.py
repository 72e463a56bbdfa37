"""The drop-folder sensor against hostile entries, in a real temp folder with Dagster's sensor context:
symlinks, special files, odd names, implausible or oversized files, and a tick whose result was lost.
Each case sits beside a valid export, which must still load."""

from __future__ import annotations

import json
import os
import re
from datetime import date

import pytest

from gl_demo_plant.cems_dahs import write_day
from gl_pipelines.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from gl_pipelines.cems.dahs_store import entries
from gl_pipelines.sensors.cems_files import FILE_TAG, MAX_FILE_BYTES

DAY, LST = date(2026, 11, 1), -6
SECRET = "Sup3rS3cretEnvValue-4411"
VALID = "GLDAHS_B1_20261101.csv"
STAMP = r"\d{8}T\d{12}Z_"


@pytest.fixture
def tick(tick, source):
    write_day(source.dahs_drop_folder, "B1", DAY, LST)  # the valid export every case sits beside
    return tick


def quarantined(source) -> dict[str, str]:
    """Quarantined entry name -> its reason."""
    folder = source.quarantine_folder
    return {
        path.name.removesuffix(".reason.txt"): path.read_text(encoding="utf-8").rstrip("\n")
        for path in folder.glob("*.reason.txt")
    }


def only_valid_file_requested(result) -> bool:
    return [r.tags[FILE_TAG] for r in result.run_requests] == [VALID]


def test_symlink_to_an_env_file_is_quarantined_unread(source, tick, tmp_path, capfd):
    """Before: the sensor followed the link and quoted the env file's first line (the secret) in the log,
    the event log and the quarantine reason."""
    env = tmp_path / "site.env"
    env.write_text(f"GL_ERP_PASSWORD={SECRET}\nOTHER=1\n")
    (source.dahs_drop_folder / "evil.csv").symlink_to(env)
    result = tick()
    log = capfd.readouterr().err  # the sensor context's log handler writes to stderr
    assert only_valid_file_requested(result)
    ((name, reason),) = quarantined(source).items()
    assert re.fullmatch(STAMP + "evil.csv", name)
    assert reason == "'evil.csv' is a symbolic link, not a regular file: not read"
    assert os.path.islink(source.quarantine_folder / name)  # the link moved, its target untouched
    assert env.read_text().startswith("GL_ERP_PASSWORD=")
    (event,) = result.asset_events
    assert event.metadata["error"].value == reason
    texts = [log, reason, json.dumps({k: str(v.value) for k, v in event.metadata.items()}), result.cursor]
    assert "symbolic link" in log
    assert not [text for text in texts if SECRET in text]


def test_dangling_symlink_directory_and_long_name_are_quarantined_beside_a_valid_file(source, tick):
    """Before: each crashed every tick (FileNotFoundError, IsADirectoryError, 'File name too long')."""
    drop = source.dahs_drop_folder
    (drop / "dangling.csv").symlink_to(drop / "gone.csv")
    (drop / "folder.csv").mkdir()
    (drop / "folder.csv" / "inner.csv").write_text("x")
    long_name = "GLDAHS_B1_" + "x" * 230 + ".csv"
    (drop / long_name).write_text("not,a,dahs,file\n")
    result = tick()
    assert only_valid_file_requested(result)
    found = quarantined(source)
    assert sorted(re.sub(STAMP, "", name) for name in found) == sorted(
        ["dangling.csv", "folder.csv", "GLDAHS_B1_" + "x" * 110 + "~" + found_hash(found, "GLDAHS_B1_x")]
    )
    reasons = sorted(found.values())
    assert reasons == sorted(
        [
            "'dangling.csv' is a symbolic link, not a regular file: not read",
            "'folder.csv' is a directory, not a regular file: not read",
            f"GLDAHS_B1_{'x' * 110}…, line 1, column #1: 'not' bad header: expected 'UNIT_ID' (19 columns)",
        ]
    )
    assert all(len(name.encode()) + len(".reason.txt") <= 255 for name in found)
    assert (source.quarantine_folder / next(n for n in found if n.endswith("folder.csv")) / "inner.csv").exists()
    assert not list(drop.iterdir())[1:]  # only the valid file is left
    assert json.loads(result.cursor).keys() == {VALID}


def found_hash(found: dict[str, str], prefix: str) -> str:
    (name,) = [re.sub(STAMP, "", n) for n in found if re.sub(STAMP, "", n).startswith(prefix)]
    return name.rsplit("~", 1)[1]


def test_fifo_never_blocks_the_tick(source, tick):
    """Before: reading the FIFO blocked the tick for good (no writer ever comes)."""
    os.mkfifo(source.dahs_drop_folder / "pipe.csv")
    result = tick()
    assert only_valid_file_requested(result)
    assert list(quarantined(source).values()) == ["'pipe.csv' is a FIFO (named pipe), not a regular file: not read"]


def test_newline_in_a_name_is_escaped_and_hidden_names_are_reported(source, tick, capfd):
    """Before: the raw newline split log lines and the skip reason; hidden files were skipped silently."""
    drop = source.dahs_drop_folder
    (drop / "bad\nINFO fake log line.csv").write_text("UNIT_ID,OP_DATE\n")
    (drop / ".hidden.csv").write_text("x")
    first = tick()
    log = capfd.readouterr().err
    second = tick(first.cursor)
    (name,) = quarantined(source)
    assert re.fullmatch(STAMP + r"bad_INFO_fake_log_line\.csv~[0-9a-f]{12}", name)
    assert list(quarantined(source).values()) == [
        "bad\\nINFO fake log line.csv, line 1, column #3: bad header: expected 'OP_HOUR' (19 columns)"
    ]
    (rejected,) = [line for line in log.splitlines() if "rejected" in line]
    assert rejected.endswith(
        "bad\\nINFO fake log line.csv, line 1, column #3: bad header: expected 'OP_HOUR' (19 columns)"
    )
    assert not [line for line in log.splitlines() if line.startswith("INFO fake log line")]
    assert only_valid_file_requested(first)
    assert second.skip_reason.skip_message == (
        "1 hidden entry not loaded (names starting with '.' are files still being written or not exports): "
        "'.hidden.csv'"
    )
    assert "\n" not in first.asset_events[0].metadata["error"].value


def test_implausible_hours_are_refused_quickly(source, tick):
    """Before: a file with an hour in the year 2256 was accepted (and a long one took 64.7 s and 4.6 GB)."""
    drop = source.dahs_drop_folder
    lines = (drop / VALID).read_text().splitlines()
    far = lines[-1].replace("2026-11-01,", "2256-11-01,").replace("2026-11-02T", "2256-11-02T")
    (drop / "GLDAHS_B1_future.csv").write_text("\n".join([*lines[:3], far]) + "\n")
    result = tick()
    assert only_valid_file_requested(result)
    (reason,) = quarantined(source).values()
    assert reason.startswith(
        "GLDAHS_B1_future.csv, line 4, column HOUR_START_UTC: '2256-11-02T05:00:00Z' implausible hour: outside "
        "1990-01-01 .. "
    )
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests] == [
        ("2026-11-01-00:00", "2026-11-01-23:00")
    ]


def test_oversized_file_is_refused_unread(source, tick):
    big = source.dahs_drop_folder / "GLDAHS_B1_big.csv"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    result = tick()
    assert only_valid_file_requested(result)
    assert list(quarantined(source).values()) == [
        f"'GLDAHS_B1_big.csv' is {MAX_FILE_BYTES + 1:,} bytes, more than the {MAX_FILE_BYTES:,} allowed: not read"
    ]


def test_a_tick_whose_result_was_lost_asks_for_the_same_run_and_indexes_once(source, tick):
    """Before: the index entry was written during the tick; a tick repeated from the old cursor (its result
    never stored: a crash, a timeout) wrote a second entry and asked for a second run under a new key."""
    lost = tick()
    repeated = tick()  # same (empty) cursor: Dagster never stored the first tick's result
    assert [r.run_key for r in repeated.run_requests] == [r.run_key for r in lost.run_requests]
    assert [e.name for e in entries(source.accepted_folder)] == [VALID]
    assert not tick(repeated.cursor).run_requests
