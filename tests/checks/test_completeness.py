from datetime import UTC, datetime, timedelta

import pandas as pd

from gl_pipelines.checks.completeness import completeness

START = datetime(2026, 11, 1, 3, tzinfo=UTC)
WINDOW = (START, START + timedelta(hours=1))


def readings(tag: str, n: int, quality: str = "good") -> pd.DataFrame:
    ts = pd.date_range(START, periods=n, freq="10s", tz="UTC")
    return pd.DataFrame({"ts": ts, "tag": tag, "quality": quality})


def test_full_hour_passes():
    frame = pd.concat([readings("a", 360), readings("b", 360)])
    result = completeness(frame, ["a", "b"], WINDOW, 10, 0.95, 0.9)
    assert result.passed and result.expected == 720 and result.expected_share == 1.0


def test_silent_tag_fails_and_is_named():
    result = completeness(readings("a", 360), ["a", "b"], WINDOW, 10, 0.95, 0.9)
    assert not result.passed
    assert result.expected_share == 0.5
    assert result.worst_tags["b"] == 0.0


def test_extra_rows_do_not_hide_a_missing_tag():
    frame = pd.concat([readings("a", 360), readings("a", 360)])
    result = completeness(frame, ["a", "b"], WINDOW, 10, 0.95, 0.9)
    assert result.present == 360 and not result.passed


def test_bad_quality_share_fails():
    frame = pd.concat([readings("a", 300), readings("a", 60, quality="bad")])
    result = completeness(frame, ["a"], WINDOW, 10, 0.95, 0.9)
    assert result.expected_share == 1.0 and not result.passed
    assert "83.3% good (need 90%)" in result.describe()
