"""Each expectation of the readings suite must pass on clean data and fail, naming the sample, on bad data."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gl_pipelines.checks.expectations import ReadingsValidation, validate_readings

START = datetime(2026, 11, 1, 3, tzinfo=UTC)
END = START + timedelta(hours=1)
RANGES = {"Boiler1.O2": (0.0, 21.0), "Boiler1.Steam": (0.0, 500.0)}


def readings(*rows: tuple[str, str, float | None, str]) -> pd.DataFrame:
    """Canonical frame from (ts, tag, value, quality) tuples; the other columns are filler."""
    ts, tag, value, quality = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(list(ts), utc=True),
            "tag": list(tag),
            "value": pd.array(value, dtype="float64"),
            "unit": "%",
            "quality": list(quality),
            "status_code": 0,
            "source": "opcua:boiler1",
        }
    )


def clean() -> pd.DataFrame:
    """In-window, in-range, unique readings, including range edges and a bad sample without a value."""
    return readings(
        ("2026-11-01T03:00:00Z", "Boiler1.O2", 0.0, "good"),
        ("2026-11-01T03:00:10Z", "Boiler1.O2", 3.5, "good"),
        ("2026-11-01T03:00:20Z", "Boiler1.O2", 21.0, "uncertain"),
        ("2026-11-01T03:59:59Z", "Boiler1.O2", None, "bad"),
        ("2026-11-01T03:00:00Z", "Boiler1.Steam", 250.0, "good"),
    )


def validate(df: pd.DataFrame) -> ReadingsValidation:
    return validate_readings(df, RANGES, START, END)


def only_failure(result: ReadingsValidation):
    """The single failed outcome; crafted frames must break exactly one expectation."""
    assert not result.success
    assert len(result.failed()) == 1, result.as_markdown()
    return result.failed()[0]


def test_clean_frame_passes():
    result = validate(clean())

    assert result.success
    assert result.failed() == []
    assert len(result.outcomes) == 9
    assert all(o.unexpected_count == 0 and o.examples == [] for o in result.outcomes)


@pytest.mark.parametrize("column", ["ts", "tag", "quality", "source"])
def test_required_column_null_fails(column):
    df = clean()
    df.loc[1, column] = None

    failed = only_failure(validate(df))

    assert failed.expectation == f"{column} not null"
    assert failed.unexpected_count == 1
    assert failed.examples[0].endswith(" = 3.5")


def test_null_ts_example_names_tag():
    df = clean()
    df.loc[1, "ts"] = None

    assert only_failure(validate(df)).examples == ["Boiler1.O2 @ NaT = 3.5"]


def test_good_sample_without_value_fails():
    df = clean()
    df.loc[1, "value"] = np.nan

    failed = only_failure(validate(df))

    assert failed.expectation == "value not null when quality good"
    assert failed.examples == ["Boiler1.O2 @ 2026-11-01T03:00:10+00:00 = nan"]


def test_unknown_quality_fails():
    df = clean()
    df.loc[4, "quality"] = "Good"

    failed = only_failure(validate(df))

    assert failed.expectation == "quality in good/uncertain/bad"
    assert failed.examples == ["Boiler1.Steam @ 2026-11-01T03:00:00+00:00 = 250.0 (quality 'Good')"]


@pytest.mark.parametrize("value", [21.001, -0.5, np.inf])
def test_value_outside_tag_range_fails(value):
    df = clean()
    df.loc[1, "value"] = value

    failed = only_failure(validate(df))

    assert failed.expectation == "value within tag range"
    assert failed.unexpected_count == 1
    assert failed.examples == [f"Boiler1.O2 @ 2026-11-01T03:00:10+00:00 = {value} (range 0..21)"]


def test_tag_missing_from_ranges_fails():
    df = pd.concat([clean(), readings(("2026-11-01T03:00:00Z", "Boiler2.CO", 12.0, "good"))])

    failed = only_failure(validate(df))

    assert failed.expectation == "value within tag range"
    assert failed.examples == ["Boiler2.CO @ 2026-11-01T03:00:00+00:00 = 12.0 (no range configured)"]


def test_examples_name_at_most_five_distinct_tags():
    tags = [f"Unknown{i}" for i in range(7)]
    df = readings(*[(f"2026-11-01T03:00:{s:02d}Z", tag, 1.0, "good") for tag in tags for s in (0, 10)])

    failed = only_failure(validate(df))

    assert failed.unexpected_count == 14
    assert [e.split(" @ ")[0] for e in failed.examples] == tags[:5]


def test_degenerate_range_accepts_only_its_value():
    ranges = {"Pump1.Mode": (2.0, 2.0)}
    ok = readings(("2026-11-01T03:00:00Z", "Pump1.Mode", 2.0, "good"))
    bad = readings(("2026-11-01T03:00:00Z", "Pump1.Mode", 3.0, "good"))

    assert validate_readings(ok, ranges, START, END).success
    assert only_failure(validate_readings(bad, ranges, START, END)).examples == [
        "Pump1.Mode @ 2026-11-01T03:00:00+00:00 = 3.0 (range 2..2)"
    ]


def test_duplicate_ts_tag_fails():
    df = pd.concat([clean(), readings(("2026-11-01T03:00:10Z", "Boiler1.O2", 3.6, "good"))])

    failed = only_failure(validate(df))

    assert failed.expectation == "(ts, tag) unique"
    assert failed.unexpected_count == 2
    assert failed.examples == ["Boiler1.O2 @ 2026-11-01T03:00:10+00:00 = 3.5"]


@pytest.mark.parametrize("ts", ["2026-11-01T04:00:00Z", "2026-11-01T02:59:59Z"])
def test_ts_outside_window_fails_and_window_end_is_exclusive(ts):
    df = pd.concat([clean(), readings((ts, "Boiler1.Steam", 260.0, "good"))])

    failed = only_failure(validate(df))

    assert failed.expectation == "ts inside window"
    assert failed.examples == [f"Boiler1.Steam @ {pd.Timestamp(ts).isoformat()} = 260.0"]


@pytest.mark.parametrize("df", [clean().iloc[:0], pd.DataFrame()], ids=["no-rows", "no-columns"])
def test_empty_frame_passes(df):
    result = validate(df)

    assert result.success
    assert all(o.unexpected_count == 0 for o in result.outcomes)


def test_input_frame_is_not_modified():
    df = clean()
    before = df.copy()

    validate(df)

    pd.testing.assert_frame_equal(df, before)


def test_markdown_lists_failures_with_examples():
    df = clean()
    df.loc[1, "value"] = 42.0

    markdown = validate(df).as_markdown()

    assert markdown.splitlines()[0] == "| expectation | ok | unexpected | examples |"
    assert "| value within tag range | ❌ | 1 | Boiler1.O2 @ 2026-11-01T03:00:10+00:00 = 42.0 (range 0..21) |" in (
        markdown.splitlines()
    )
    assert "| ts not null | ✅ | 0 |  |" in markdown.splitlines()


def test_naive_window_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_readings(clean(), RANGES, START.replace(tzinfo=None), END)


def test_frame_missing_columns_is_rejected():
    with pytest.raises(ValueError, match="source"):
        validate(clean().drop(columns="source"))
