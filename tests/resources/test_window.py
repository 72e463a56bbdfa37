"""The shared partition-window rule (resources/window.py) on plain frames."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from gl_pipelines.resources.window import keep_window

START = datetime(2026, 11, 1, 3, tzinfo=UTC)
END = START + timedelta(hours=1)


def frame(rows):
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([ts for ts, _ in rows], utc=True, format="ISO8601"),
            "tag": [tag for _, tag in rows],
            "value": range(len(rows)),
        }
    )


def test_keeps_start_drops_end_and_counts_per_tag():
    rows = [
        ("2026-11-01T02:59:59Z", "A"),  # the bounding value before the window
        ("2026-11-01T03:00:00Z", "A"),
        ("2026-11-01T03:59:59.999Z", "A"),
        ("2026-11-01T04:00:00Z", "A"),  # exactly at the end: the next hour's
        ("2026-11-01T03:30:00Z", "B"),
        ("2026-11-01T04:00:00Z", "B"),
        ("2026-11-01T04:59:00Z", "C"),  # well after, still within the tolerance
    ]
    kept = keep_window(frame(rows), START, END, source="test")
    assert kept.frame["value"].tolist() == [1, 2, 4]
    assert kept.frame["tag"].tolist() == ["A", "A", "B"]
    assert kept.dropped == {"A": 2, "B": 1, "C": 1}


def test_nothing_outside_returns_the_same_frame_and_no_counts():
    original = frame([("2026-11-01T03:00:00Z", "A"), ("2026-11-01T03:10:00Z", "B")])
    kept = keep_window(original, START, END, source="test")
    assert kept.frame is original and kept.dropped == {}


def test_values_far_outside_mean_the_window_was_ignored():
    rows = [
        ("2026-11-01T03:00:00Z", "A"),
        ("2026-10-31T00:00:00Z", "A"),
        ("2026-11-01T05:00:01Z", "B"),
        ("2026-11-01T05:00:00Z", "B"),
    ]
    with pytest.raises(RuntimeError) as caught:
        keep_window(frame(rows), START, END, source="opc.tcp://plant:4840", error=RuntimeError)
    assert str(caught.value) == (
        "opc.tcp://plant:4840: server ignored the requested window [2026-11-01T03:00:00+00:00, "
        "2026-11-01T04:00:00+00:00): 2 value(s) more than 1:00:00 outside it (earliest 2026-10-31T00:00:00+00:00), "
        "per tag A: 1, B: 1"
    )
