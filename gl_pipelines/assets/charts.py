"""Charts for report materializations and the monthly HTML page, drawn as SVG text.

One chart is a few kilobytes of text built in about a millisecond. The Dagster UI shows it from
a markdown data URI (its sanitizer allows `data:` image sources), the HTML report inlines it, and
each bar carries its exact value as a tooltip. matplotlib drew the same charts as PNG in 50 to
1,800 ms each, which made a year's 53 charts 9 of the 12 s a report backfill took (bench/reports.py).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape

from dagster import MetadataValue

WIDTH, HEIGHT = 800, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 40, 72
MAX_LABELS = 31
"""More categories than this and only every n-th label is written, so labels never overlap."""
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 x 10^n) from at or below `low` to at or above `high`."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    ticks = [(first + i) * step for i in range(count * 3)]
    last = next(i for i, tick in enumerate(ticks) if tick >= high - step * 1e-9)
    return [round(tick, 12) for tick in ticks[: last + 1]]


def bar_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> str:
    """Grouped bars: one group per label, one bar per series (e.g. per pollutant, per day). A missing
    or NaN value draws no bar (it is not a zero); negative values hang below the zero line."""
    columns = {name: [_number(v) for v in values] for name, values in series.items()}
    known = [v for values in columns.values() for v in values if v is not None]
    ticks = nice_ticks(min([0.0, *known]), max([0.0, *known]))
    low, high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    parts = [_text(WIDTH / 2, 22, title, 'font-size="15" text-anchor="middle"')]
    middle = TOP + plot_h / 2
    parts.append(_text(16, middle, ylabel, f'text-anchor="middle" transform="rotate(-90 16 {middle:.1f})"'))
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(_text(LEFT - 6, y(tick) + 4, f"{tick:.6g}", 'text-anchor="end"'))
    if not labels:
        parts.append(_text(LEFT + plot_w / 2, TOP + plot_h / 2, "no data", 'text-anchor="middle" fill="#777"'))
    group = plot_w / max(len(labels), 1)
    bar = min(group * 0.8 / max(len(columns), 1), 60.0)  # a lone group gets bars, not walls
    inset = (group - bar * len(columns)) / 2
    zero = y(0.0)
    for index, (name, values) in enumerate(columns.items()):
        color = PALETTE[index % len(PALETTE)]
        for position, (label, value) in enumerate(zip(labels, values, strict=False)):
            if value is None:
                continue
            x = LEFT + group * position + inset + bar * index
            top = min(y(value), zero)
            tip = escape(f"{label} {name}: {value:.6g} {ylabel}")
            parts.append(
                f'<rect x="{x:.2f}" y="{top:.1f}" width="{bar:.2f}" height="{abs(y(value) - zero):.1f}" '
                f'fill="{color}"><title>{tip}</title></rect>'
            )
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#444"/>')
    every = math.ceil(len(labels) / MAX_LABELS) if labels else 1
    slanted = len(labels) > 8
    for position in range(0, len(labels), every):
        x, base = LEFT + group * (position + 0.5), TOP + plot_h + 14
        style = f'text-anchor="end" transform="rotate(-45 {x:.1f} {base})"' if slanted else 'text-anchor="middle"'
        parts.append(_text(x, base, str(labels[position]), style))
    if len(columns) > 1:
        x = WIDTH - RIGHT - 130
        box = 16 * len(columns) + 6
        parts.append(f'<rect x="{x - 6}" y="{TOP}" width="130" height="{box}" fill="#fff" opacity=".85"/>')
        for index, name in enumerate(columns):
            row = TOP + 4 + 16 * index
            parts.append(f'<rect x="{x}" y="{row}" width="10" height="10" fill="{PALETTE[index % len(PALETTE)]}"/>')
            parts.append(_text(x + 15, row + 9, name, ""))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'font-family="sans-serif" font-size="11" role="img"><title>{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>{"".join(parts)}</svg>'
    )


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(x: float, y: float, text: str, attributes: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {attributes}>{escape(text)}</text>'


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def chart_metadata(svg: str, caption: str) -> MetadataValue:
    """Markdown metadata that the Dagster UI shows as the image itself."""
    return MetadataValue.md(f"![{caption}]({svg_data_uri(svg)})")
