"""The one partition-window rule every extractor applies: a window holds exactly start <= ts < end.

Servers disagree at the bounds (node-opcua and PI return a value stamped exactly at the end time;
some return the bounding value before the start), so values just outside the window are dropped
and counted per tag, never a failure: the neighbouring partition stores them. A value further
than FAR_OUTSIDE from the window means the server ignored the window altogether; that is an
error naming each tag and its count, since the read cannot be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

FAR_OUTSIDE = timedelta(hours=1)
"""Beyond this distance from [start, end) a value is not a bound the server added but a server
that ignored the window. One hour is longer than any raw sample interval we read and shorter than
the smallest partition, so a wrong answer cannot pass as a neighbouring hour's bound."""


@dataclass(frozen=True)
class Windowed:
    """The rows inside the window and, per tag, how many outside it were dropped."""

    frame: pd.DataFrame
    dropped: dict[str, int]


def inside_window(
    ts: pd.Series,
    tags: pd.Series,
    start: datetime,
    end: datetime,
    *,
    source: str,
    error: type[Exception] = ValueError,
    tolerance: timedelta = FAR_OUTSIDE,
) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean mask of rows with start <= ts < end, and the per-tag count of the others.

    Raises `error` when any value lies more than `tolerance` outside the window."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    keep = ((ts >= lo) & (ts < hi)).to_numpy(dtype=bool)
    if keep.all():
        return keep, {}
    out_ts, out_tags = ts[~keep], tags[~keep]
    far = ((out_ts < lo - tolerance) | (out_ts > hi + tolerance)).to_numpy(dtype=bool)
    if far.any():
        counts = out_tags[far].value_counts().sort_index()
        listed = ", ".join(f"{tag}: {count}" for tag, count in counts.head(10).items())
        more = f" and {len(counts) - 10} more tags" if len(counts) > 10 else ""
        first = out_ts[far].min()
        raise error(
            f"{source}: server ignored the requested window [{lo.isoformat()}, {hi.isoformat()}): "
            f"{int(far.sum())} value(s) more than {tolerance} outside it (earliest {first.isoformat()}), "
            f"per tag {listed}{more}"
        )
    dropped = {str(tag): int(count) for tag, count in out_tags.value_counts().sort_index().items()}
    return keep, dropped


def keep_window(
    frame: pd.DataFrame,
    start: datetime,
    end: datetime,
    *,
    source: str,
    error: type[Exception] = ValueError,
    tolerance: timedelta = FAR_OUTSIDE,
) -> Windowed:
    """`frame` (columns ts, tag) cut to start <= ts < end; see inside_window."""
    keep, dropped = inside_window(
        frame["ts"], frame["tag"], start, end, source=source, error=error, tolerance=tolerance
    )
    if not dropped:
        return Windowed(frame, {})
    return Windowed(frame.loc[keep].reset_index(drop=True), dropped)
