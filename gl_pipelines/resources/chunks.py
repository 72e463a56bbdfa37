"""Chunk planning shared by every chunked time-series read (OPC UA, PI Web API, Proficy).

A plant-size window is read in pieces of about `chunk_values` values, so one step never holds the window's
rows at once: tags in batches whose whole window fits, or one tag at a time in time slices when it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

DEFAULT_CHUNK_VALUES = 1_000_000
"""Values one chunked read holds at once unless the source says otherwise (about 0.5 KB a value)."""


def chunk_plan(
    tags: Sequence[T], start: datetime, end: datetime, sample_interval_s: float, chunk_values: int
) -> list[tuple[Sequence[T], datetime, datetime]]:
    """(tags, slice start, slice end) reads of about `chunk_values` values each, covering [start, end) for every
    tag: whole-window reads of as many tags as fit, or, when one tag's window alone is larger, one tag at a time
    in time slices of `chunk_values` samples. A tag's slices follow each other in time (per-tag digests need it)."""
    per_tag = max(1, math.ceil((end - start).total_seconds() / sample_interval_s))
    if per_tag <= chunk_values:
        slices = [(start, end)]
        batch = max(1, chunk_values // per_tag)
    else:
        step = timedelta(seconds=chunk_values * sample_interval_s)
        bounds = [start + k * step for k in range(math.ceil((end - start) / step))] + [end]
        slices = list(zip(bounds[:-1], bounds[1:], strict=True))
        batch = 1
    return [
        (tags[i : i + batch], slice_start, slice_end)
        for i in range(0, len(tags), batch)
        for slice_start, slice_end in slices
    ]
