"""Charts for report materializations: a PNG that shows in the Dagster UI and can be saved to a file.

The UI renders markdown metadata, and markdown can carry an image as a base64 data URI, so a
chart travels with the materialization it describes: no file server, no broken links.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from dagster import MetadataValue  # noqa: E402


def figure_png(figure) -> bytes:
    """Render a matplotlib figure to PNG bytes and release it (pyplot keeps figures alive otherwise)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def bar_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> bytes:
    """Grouped bars: one group per label, one bar per series (e.g. per pollutant, per day)."""
    figure, axes = plt.subplots(figsize=(8, 3.5))
    count = max(len(series), 1)
    width = 0.8 / count
    for index, (name, values) in enumerate(series.items()):
        positions = [i + (index - (count - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, list(values), width=width, label=name)
    axes.set_xticks(range(len(labels)), list(labels), rotation=45 if len(labels) > 8 else 0, ha="right")
    _decorate(axes, title, ylabel, legend=len(series) > 1)
    return figure_png(figure)


def line_chart(x: Sequence, series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> bytes:
    """One line per series over a shared x axis (e.g. hourly values over a day)."""
    figure, axes = plt.subplots(figsize=(8, 3.5))
    for name, values in series.items():
        axes.plot(list(x), list(values), label=name)
    figure.autofmt_xdate()
    _decorate(axes, title, ylabel, legend=len(series) > 1)
    return figure_png(figure)


def _decorate(axes, title: str, ylabel: str, legend: bool) -> None:
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    if legend:
        axes.legend(fontsize="small")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chart_metadata(png: bytes, caption: str) -> MetadataValue:
    """Markdown metadata that the Dagster UI shows as the image itself."""
    return MetadataValue.md(f"![{caption}]({png_data_uri(png)})")
