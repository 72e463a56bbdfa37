"""The monthly HTML page: self-contained, escaped, flagged rows marked, numbers printed one way."""

import re

import pandas as pd

from gl_pipelines.assets.charts import bar_chart
from gl_pipelines.reporting.exports import read_parquet, write_exports
from gl_pipelines.reporting.html_report import Section, format_value, render_check_results, render_report

CHART = bar_chart(["B1"], {"CO2": [1.5]}, "CO2", "t")


def test_report_is_self_contained_escaped_and_flags_rows():
    frame = pd.DataFrame({"unit_name": ["<B1>", "B2"], "difference_pct": [1.23456789, -12.5], "ok": [True, False]})
    page = render_report("Plant & co", "June", [Section("CO2", frame, CHART, flag_column="ok")], {"checks": "c.html"})
    assert "&lt;B1&gt;" in page and "<B1>" not in page and "Plant &amp; co" in page
    assert CHART in page and "<script" not in page
    assert not re.search(r"(src|href)=['\"]?https?:", page)  # nothing fetched: the chart is inline SVG
    assert page.count("<tr class=flag>") == 1 and "-12.5" in page and "1.23457" in page


def test_format_value():
    assert format_value(54.43956123) == "54.4396"
    assert format_value(pd.Timestamp("2026-06-01 05:00", tz="UTC")) == "2026-06-01 05:00 UTC"
    assert format_value(float("nan")) == "" and format_value(True) == "yes"


def test_check_results_page_counts_failures():
    results = pd.DataFrame(
        {
            "asset": ["erp_fuel_receipts", "ghg_inventory"],
            "check": ["keys_unique", "ghg_no_negative_emissions"],
            "partition": ["2026-06-03", None],
            "run_id": ["abcdef123456", "0123456789ab"],
            "passed": [False, True],
            "description": ["2 duplicated keys", "ok"],
        }
    )
    page = render_check_results("June checks", results)
    assert "1 of 2 evaluations passed" in page and "FAILED" in page and "whole run" in page


def test_exports_replace_the_partition_file(tmp_path):
    first = write_exports(pd.DataFrame({"x": [1.0, 2.0]}), tmp_path, "r", "2026-06-01", csv=True)
    write_exports(pd.DataFrame({"x": [3.0]}), tmp_path, "r", "2026-06-01", csv=True)
    assert read_parquet(first["parquet"])["x"].tolist() == [3.0]
    assert first["csv"].read_text().splitlines() == ["x", "3.0"]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["r_2026-06-01.csv", "r_2026-06-01.parquet"]
