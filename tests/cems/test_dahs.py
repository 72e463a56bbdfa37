"""The DAHS export parser: the demo files load exactly; every malformed file is refused whole, named."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import (
    MALFORMED_KINDS,
    dahs_lines,
    lst_day_window,
    write_day,
    write_hour,
    write_malformed,
)
from gl_pipelines.cems.dahs import DAHS_COLUMNS, DahsFormatError, parse_dahs_csv, parse_dahs_file
from gl_pipelines.cems.schema import RAW_COLUMNS, RAW_DTYPES

DAY, LST = date(2026, 11, 1), -6
HEADER = ",".join(DAHS_COLUMNS)
ROW = "B1,2026-11-01,0,2026-11-01T06:00:00Z,1.00,6.71,1263929,V,8.472,V,3.391,V,0.294,V,43.04,0.0534,V,15.45,V"


def parse(*lines: str) -> pd.DataFrame:
    return parse_dahs_csv(("\n".join(lines) + "\n").encode(), "f.csv", LST, {"B1"})


def test_demo_day_parses_to_the_raw_schema_with_the_model_values(tmp_path):
    (path,) = write_day(tmp_path, "B1", DAY, LST)
    frame = parse_dahs_file(path, LST, {"B1"})
    assert list(frame.columns) == RAW_COLUMNS and frame.dtypes.astype(str).to_dict() == RAW_DTYPES
    assert len(frame) == 24
    assert frame["hour_start_utc"].iloc[0] == pd.Timestamp("2026-11-01T06:00Z")
    assert frame["hour_start_lst"].iloc[0] == pd.Timestamp("2026-11-01T00:00")
    start, end = lst_day_window(DAY, LST)
    model = cems_model.cems_hours("B1", start, end, cems_model.demo_faults(cems_model.hour_starts(start, end), LST))
    valid = frame["co2_status"] == "valid"
    assert frame.loc[valid, "co2_pct"].to_numpy() == pytest.approx(model.loc[valid, "co2_pct"].to_numpy(), abs=5e-4)
    assert frame["stack_flow_scfh"].isna().sum() == 2 and (frame["flow_status"] == "missing").sum() == 2
    assert frame.loc[frame["hour_start_lst"].dt.hour == 7, "co2_status"].item() == "calibration_failed"
    assert frame["source_ref"].iloc[0] == f"{path.name}:2" and (frame["source"] == "dahs").all()


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_names_file_and_line(tmp_path, kind):
    path, line = write_malformed(tmp_path, "B1", DAY, LST, kind)
    with pytest.raises(DahsFormatError) as error:
        parse_dahs_file(path, LST, {"B1"})
    assert error.value.file == path.name and error.value.line == line
    assert str(error.value).startswith(f"{path.name}, line {line}")


@pytest.mark.parametrize(
    ("lines", "line", "column", "text"),
    [
        ((HEADER,), 2, None, "no data rows"),
        ((HEADER, ROW.replace("B1,", "B9,", 1)), 2, "UNIT_ID", "not a configured unit"),
        ((HEADER, ROW.replace(",0,2026", ",24,2026")), 2, "OP_HOUR", "not an hour 0-23"),
        ((HEADER, ROW.replace("06:00:00Z", "07:00:00Z")), 2, "HOUR_START_UTC", "is not OP_DATE"),
        ((HEADER, ROW.replace("06:00:00Z", "06:00:00")), 2, "HOUR_START_UTC", "has no UTC offset"),
        ((HEADER, ROW.replace(",1263929,V,", ",,V,")), 2, "FLOW_SCFH", "value required when FLOW_MDC is V"),
        ((HEADER, ROW.replace(",1.00,", ",,")), 2, "OP_TIME", "value required"),
        ((HEADER, ROW.replace(",8.472,", ",nan,")), 2, "CO2_PCT", "not a finite number"),
        (
            (HEADER, ROW, ROW.replace(",1.00,", ",1.50,").replace("T06", "T07").replace(",0,", ",1,")),
            3,
            None,
            "op_time",
        ),
        ((HEADER + ",EXTRA", ROW), 1, "#20", "extra column"),
    ],
)
def test_bad_content_is_refused_with_line_and_column(lines, line, column, text):
    with pytest.raises(DahsFormatError) as error:
        parse(*lines)
    assert (error.value.line, error.value.column) == (line, column) and text in str(error.value)


def test_a_missing_code_may_leave_the_value_blank_and_codes_map_to_statuses():
    row = ROW.replace(",0.294,V,", ",,M,").replace(",8.472,V,", ",9.1,C,").replace(",3.391,V,", ",3.4,O,")
    frame = parse(HEADER, row)
    assert frame[["so2_status", "co2_status", "o2_status"]].iloc[0].tolist() == [
        "missing",
        "calibration_failed",
        "out_of_control",
    ]
    assert pd.isna(frame["so2_ppm"].iloc[0]) and frame["co2_pct"].iloc[0] == 9.1


def test_not_utf8_and_blank_file():
    with pytest.raises(DahsFormatError, match=r"f\.csv, line 2: not UTF-8"):
        parse_dahs_csv((HEADER + "\n").encode() + b"\xff\xfe\n", "f.csv", LST)
    with pytest.raises(DahsFormatError, match="empty file"):
        parse_dahs_csv(b"", "f.csv", LST)


def test_writer_round_trips_two_units_and_per_hour_files(tmp_path):
    start, end = lst_day_window(DAY, LST)
    frame = pd.concat([cems_model.cems_hours(u, start, end) for u in ("B1", "B2")], ignore_index=True)
    parsed = parse_dahs_csv(("\n".join(dahs_lines(frame, LST)) + "\n").encode(), "two.csv", LST, {"B1", "B2"})
    assert parsed.groupby("unit_id").size().to_dict() == {"B1": 24, "B2": 24}
    paths = write_day(tmp_path, "B1", DAY, LST, per_hour=True)
    assert len(paths) == 24 and paths[0].name == "GLDAHS_B1_20261101_00.csv"
    hour = parse_dahs_file(paths[5], LST)
    assert hour["hour_start_utc"].item() == datetime(2026, 11, 1, 11, tzinfo=UTC)


def test_live_hour_export_matches_the_day_file(tmp_path):
    hour = datetime(2026, 11, 1, 13, tzinfo=UTC)  # 07:00 LST: the demo's failed CO2 calibration
    path = write_hour(tmp_path / "live", "B1", hour, LST)
    assert path.name == "GLDAHS_B1_20261101_07.csv"
    live = parse_dahs_file(path, LST)
    day = parse_dahs_file(write_day(tmp_path / "day", "B1", DAY, LST)[0], LST)
    expected = day[day["hour_start_utc"] == pd.Timestamp(hour)].drop(columns="source_ref").reset_index(drop=True)
    pd.testing.assert_frame_equal(live.drop(columns="source_ref"), expected)
    assert live["co2_status"].item() == "calibration_failed"
