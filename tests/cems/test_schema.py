"""The cems_hourly_raw contract: a good frame passes, each kind of bad input is named."""

import pandas as pd
import pytest

from gl_pipelines.cems.schema import RAW_COLUMNS, CemsSchemaError, empty_raw_frame, validate_raw_frame


def raw_frame(hours: int = 3) -> pd.DataFrame:
    utc = pd.date_range("2024-03-10 06:00", periods=hours, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "unit_id": "U1",
            "hour_start_utc": utc,
            "hour_start_lst": utc.tz_localize(None) - pd.Timedelta(hours=7),
            "op_time": 1.0,
            "gross_load_mw": 100.0,
            "stack_flow_scfh": 1.0e7,
            "co2_pct": 5.0,
            "o2_pct": 13.0,
            "so2_ppm": None,
            "nox_ppm": 3.0,
            "nox_rate_lb_mmbtu": None,
            "moisture_pct": None,
            "so2_status": "missing",
            "co2_status": "valid",
            "o2_status": "valid",
            "nox_status": "valid",
            "flow_status": "valid",
            "moisture_status": "missing",
            "source": "dahs",
            "source_ref": [f"U1_20240310.csv:{i + 2}" for i in range(hours)],
        }
    )


def test_good_frame_passes_with_contract_dtypes():
    out = validate_raw_frame(raw_frame(), "U1_20240310.csv")
    assert list(out.columns) == RAW_COLUMNS
    assert str(out["hour_start_utc"].dtype) == "datetime64[ns, UTC]"
    assert str(out["so2_ppm"].dtype) == "float64"
    assert list(empty_raw_frame().columns) == RAW_COLUMNS


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("op_time", 1.5, "column 'op_time' value 1.5: outside [0.0, 1.0] (row 1, U1_20240310.csv:3)"),
        ("co2_status", "bad", "column 'co2_status' value 'bad'"),
        ("co2_pct", "abc", "column 'co2_pct' value 'abc': not a number (row 1, U1_20240310.csv:3)"),
        ("stack_flow_scfh", -5.0, "column 'stack_flow_scfh' value -5.0: outside"),
        ("co2_pct", None, "co2_status is 'valid' but the value is empty (row 1"),
        ("unit_id", "", "column 'unit_id' value '': must be a non-empty string"),
    ],
)
def test_bad_value_is_named(column, value, message):
    frame = raw_frame().astype({column: object})
    frame.loc[1, column] = value
    with pytest.raises(CemsSchemaError) as error:
        validate_raw_frame(frame, "U1_20240310.csv")
    assert str(error.value).startswith("U1_20240310.csv: ")
    assert message in str(error.value)


def test_missing_and_extra_columns_duplicates_and_daylight_time():
    with pytest.raises(CemsSchemaError, match="column 'source_ref' value None: column missing"):
        validate_raw_frame(raw_frame().drop(columns="source_ref"), "f")
    with pytest.raises(CemsSchemaError, match="column 'extra' value None: column not in cems_hourly_raw"):
        validate_raw_frame(raw_frame().assign(extra=1), "f")
    doubled = pd.concat([raw_frame(), raw_frame().iloc[[0]]], ignore_index=True)
    with pytest.raises(CemsSchemaError, match="duplicated unit-hour"):
        validate_raw_frame(doubled, "f")
    shifted = raw_frame()
    shifted.loc[2, "hour_start_lst"] += pd.Timedelta(hours=1)  # a daylight-time clock, not standard time
    with pytest.raises(CemsSchemaError, match="column 'hour_start_lst'.*differs from the unit's"):
        validate_raw_frame(shifted, "f")
    naive = raw_frame().assign(hour_start_utc=lambda f: f["hour_start_utc"].dt.tz_localize(None))
    with pytest.raises(CemsSchemaError, match="must be timezone-aware"):
        validate_raw_frame(naive, "f")
    off_hour = raw_frame()
    off_hour.loc[0, "hour_start_utc"] += pd.Timedelta(minutes=5)
    with pytest.raises(CemsSchemaError, match="must be a whole hour"):
        validate_raw_frame(off_hour, "f")
