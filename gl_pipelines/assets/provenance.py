"""Materialization metadata that lets an auditor trace a stored number back to its source."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from dagster import MetadataValue

from gl_pipelines.checks.readings import staged_profile


def provenance_metadata(
    *,
    endpoint: str,
    window: tuple[datetime, datetime],
    query: str,
    payload_sha256: str,
    resource_version: str,
    duration_s: float,
    frame: pd.DataFrame,
    dropped_outside_window: dict[str, int] | None = None,
) -> dict[str, object]:
    """`dropped_outside_window`: per tag, values the source sent outside the window and we did not
    store (see resources/window.py); recorded so a server's bound behaviour stays visible."""
    start, end = window
    counts = frame["quality"].value_counts().to_dict() if "quality" in frame else {}
    return {
        "source_endpoint": endpoint,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "query": query,
        "payload_sha256": payload_sha256,
        "resource_version": resource_version,
        "extraction_seconds": round(duration_s, 3),
        "dagster/row_count": len(frame),
        **{f"rows_{quality}": int(counts.get(quality, 0)) for quality in ("good", "uncertain", "bad")},
        "preview": MetadataValue.md(preview_markdown(frame)),
    } | (
        {"dropped_outside_window": MetadataValue.json(dropped_outside_window)}
        if dropped_outside_window is not None
        else {}
    )


def preview_markdown(frame: pd.DataFrame, rows: int = 10) -> str:
    if frame.empty:
        return "_no rows_"
    return frame.head(rows).to_markdown(index=False)


def staged_provenance_metadata(staged, staging_database: str, **provenance) -> dict[str, object]:
    """`provenance_metadata` of a chunked read staged in DuckDB: the row and quality counts and the preview come
    from the staged table, since no frame holds the window (`provenance` as for provenance_metadata, no frame)."""
    qualities, preview = staged_profile(staging_database, staged.table)
    metadata = provenance_metadata(frame=preview, **provenance)
    counts = {f"rows_{quality}": qualities.get(quality, 0) for quality in ("good", "uncertain", "bad")}
    return {**metadata, "dagster/row_count": staged.rows, **counts}
