"""SVG charts: well-formed, scaled to the data, every value readable, nothing invented."""

import base64
import xml.etree.ElementTree as ET

import pytest

from gl_pipelines.assets.charts import bar_chart, chart_metadata, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[tuple[float, float, str]]:
    """(top y, height, tooltip) of each bar, from the parsed document."""
    root = ET.fromstring(svg)
    return [
        (float(r.get("y")), float(r.get("height")), r.find(f"{SVG}title").text)
        for r in root.iter(f"{SVG}rect")
        if r.find(f"{SVG}title") is not None
    ]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 0.87, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-20, 100.5, [-25, 0, 25, 50, 75, 100, 125]),
        (0, 3000, [0, 1000, 2000, 3000]),
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_nice_ticks_cover_the_range_with_round_steps(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_bars_are_proportional_and_carry_their_values():
    svg = bar_chart(["B1", "B2"], {"CO2": [100.0, 50.0]}, "CO2 per unit", "t")
    (y1, h1, tip1), (y2, h2, tip2) = bars(svg)
    assert h1 == pytest.approx(2 * h2, abs=0.1) and y1 + h1 == pytest.approx(y2 + h2)  # same zero line
    assert tip1 == "B1 CO2: 100 t" and tip2 == "B2 CO2: 50 t"


def test_missing_values_draw_no_bar_and_negatives_hang_below_zero():
    svg = bar_chart(["a", "b", "c"], {"x": [10.0, float("nan"), -5.0], "y": [None, 1.0, 2.0]}, "t", "u")
    drawn = bars(svg)
    assert [tip for *_, tip in drawn] == ["a x: 10 u", "c x: -5 u", "b y: 1 u", "c y: 2 u"]
    positive, negative = drawn[0], drawn[1]
    assert negative[0] == pytest.approx(positive[0] + positive[1], abs=0.1)  # starts where the positive bar ends


def test_labels_and_titles_are_escaped_and_long_axes_thinned():
    svg = bar_chart([f"<d{i}>" for i in range(365)], {"a & b": range(365)}, "x < y", "m³")
    root = ET.fromstring(svg)  # parses: every label escaped
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("<d")]
    assert 12 <= len(labels) <= 31 and labels[0] == "<d0>"
    assert len(bars(svg)) == 365 and root.find(f"{SVG}title").text == "x < y"


def test_empty_chart_says_so():
    assert "no data" in bar_chart([], {}, "t", "u")


def test_metadata_is_markdown_with_an_svg_data_uri():
    svg = bar_chart(["B1"], {"CO2": [1.0]}, "t", "u")
    value = chart_metadata(svg, "caption").value
    prefix = "![caption](data:image/svg+xml;base64,"
    assert value.startswith(prefix) and base64.b64decode(value[len(prefix) : -1]).decode() == svg
