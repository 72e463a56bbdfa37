import pandas as pd

from gl_pipelines.checks.meters import missing_points, negative_consumption, out_of_range


def test_missing_points_name_the_reason():
    readings = pd.DataFrame(
        {"tag": ["A", "B"], "quality": ["good", "bad"], "status": ["ok", "exception 6 (DEVICE BUSY)"], "value": [1, 2]}
    )
    assert missing_points(readings, ["A", "B", "C"]) == {"B": "exception 6 (DEVICE BUSY)", "C": "no row"}


def test_out_of_range_ignores_bad_rows_and_open_bounds():
    readings = pd.DataFrame(
        {"tag": ["A", "A2", "B", "C"], "quality": ["good", "bad", "good", "good"], "value": [70.0, 99.0, -1.0, 5.0]}
    )
    ranges = {"A": (0, 60), "A2": (0, 60), "B": (0, None), "C": (None, None)}
    assert out_of_range(readings, ranges) == ["A = 70 (range 0..60)", "B = -1 (range 0..None)"]


def test_negative_consumption_unless_reset():
    frame = pd.DataFrame(
        {"meter": ["A", "B", "C"], "consumption": [-3.0, float("nan"), 4.0], "flag": ["ok", "reset", "ok"]}
    )
    assert negative_consumption(frame) == ["A = -3"]
