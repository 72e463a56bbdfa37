"""The monthly report as one self-contained HTML file: tables, and charts as inline SVG.

No external CSS, scripts or images, so the file can be mailed or archived and still opens the
same. The validation page renders the month's data-quality check results the same way.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.flag{background:#fde2e2}.pass{color:#176f2c}.fail{color:#b00020;font-weight:bold}
.note{color:#555;font-size:.9em}svg{max-width:100%;height:auto}
"""


def format_value(value) -> str:
    """How a cell is printed: numbers to 6 significant digits, instants in UTC, the rest as text."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.6g}"
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


@dataclass(frozen=True)
class Section:
    title: str
    frame: pd.DataFrame
    chart_svg: str | None = None
    note: str = ""
    flag_column: str | None = None
    """A boolean column whose False rows are highlighted (e.g. `within_tolerance`)."""


def table_html(frame: pd.DataFrame, flag_column: str | None = None) -> str:
    if frame.empty:
        return "<p class='note'>no rows</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        values = row._asdict()
        flagged = flag_column is not None and values.get(flag_column) is not None and not bool(values[flag_column])
        cells = "".join(f"<td>{html.escape(format_value(v))}</td>" for v in values.values())
        body.append(f"<tr{' class=flag' if flagged else ''}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(title: str, subtitle: str, sections: Sequence[Section], links: dict[str, str]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p class='note'>{html.escape(subtitle)}</p>"]
    if links:
        items = "".join(
            f"<li><a href='{html.escape(href)}'>{html.escape(label)}</a></li>" for label, href in links.items()
        )
        parts.append(f"<ul>{items}</ul>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{html.escape(section.note)}</p>")
        if section.chart_svg:
            parts.append(section.chart_svg)
        parts.append(table_html(section.frame, section.flag_column))
    return _page(title, "".join(parts))


def render_check_results(title: str, results: pd.DataFrame) -> str:
    """A browsable page of check evaluations: asset, check, partition, run, passed, description."""
    if results.empty:
        return _page(title, f"<h1>{html.escape(title)}</h1><p class='note'>no check results in this window</p>")
    passed = int(results["passed"].sum())
    summary = f"{passed} of {len(results)} evaluations passed"
    rows = []
    for row in results.itertuples(index=False):
        state = "<span class=pass>passed</span>" if row.passed else "<span class=fail>FAILED</span>"
        css = "" if row.passed else " class=flag"
        rows.append(
            f"<tr{css}><td>{html.escape(row.asset)}</td><td>{html.escape(row.check)}</td>"
            f"<td>{html.escape(str(row.partition or 'whole run'))}</td><td>{html.escape(row.run_id[:8])}</td>"
            f"<td>{state}</td><td style='text-align:left'>{html.escape(row.description or '')}</td></tr>"
        )
    head = "<tr><th>asset</th><th>check</th><th>partition</th><th>run</th><th>result</th><th>description</th></tr>"
    return _page(
        title,
        f"<h1>{html.escape(title)}</h1><p>{summary}</p><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>",
    )


def write_html(path: Path, text: str) -> Path:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
