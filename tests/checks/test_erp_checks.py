"""The ERP check rules as plain functions: each problem names the document and the value."""

from datetime import UTC, datetime

import pandas as pd

from gl_pipelines.checks.erp import duplicate_keys, missing_currency, negative_quantities, outside_window, unknown_units

KEYS = ("document", "item")
START, END = datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC)


def frame(**overrides) -> pd.DataFrame:
    base = {
        "document": ["1", "2", "3"],
        "item": ["0001", "0001", "0001"],
        "posting_date": pd.to_datetime(["2026-11-01 05:00"] * 3, utc=True),
        "quantity": [1.5, 2.0, 3.0],
        "unit": ["M3", "M3", "M3"],
        "currency": ["USD", "USD", "USD"],
    }
    return pd.DataFrame(base | overrides)


def test_good_frame_has_no_problems():
    good = frame()
    assert duplicate_keys(good, KEYS) == []
    assert negative_quantities(good, KEYS) == []
    assert unknown_units(good, ["M3"], KEYS) == []
    assert outside_window(good, "posting_date", START, END, KEYS) == []
    assert missing_currency(good, ["USD"], KEYS) == []
    assert negative_quantities(frame().iloc[0:0], KEYS) == []


def test_each_rule_names_the_document():
    assert duplicate_keys(frame(document=["1", "1", "3"]), KEYS) == ["1/0001"]
    assert negative_quantities(frame(quantity=[1.0, -0.001, 3.0]), KEYS) == ["2/0001: quantity -0.001"]
    assert unknown_units(frame(unit=["M3", None, "KG"]), ["M3"], KEYS) == ["2/0001: unit None", "3/0001: unit 'KG'"]
    late = pd.to_datetime(["2026-11-01 05:00", "2026-11-02 06:00", None], utc=True)
    assert outside_window(frame(posting_date=late), "posting_date", START, END, KEYS) == [
        "2/0001: posting_date 2026-11-02 06:00:00+00:00",
        "3/0001: posting_date NaT",
    ]
    assert missing_currency(frame(currency=["USD", "", None]), ["USD"], KEYS) == [
        "2/0001: currency ''",
        "3/0001: currency None",
    ]


def test_missing_quantity_is_a_problem_not_a_pass():
    # A receipt whose Quantity property was missing is stored as NULL: it must block, not drop out of the sums.
    assert negative_quantities(frame(quantity=[1.0, None, 3.0]), KEYS) == ["2/0001: quantity missing"]
