"""Great Expectations validation of readings in the canonical long schema.

Every ingest path (OPC UA, Modbus, historian) lands readings as ``ts, tag, value, unit, quality,
status_code, source``; this module is the one gate that decides whether such a batch is fit to publish.
It is a pure function of the frame so asset checks, scripts and tests can all call it.

GX reports *that* an expectation failed and how often; plant engineers need *which sample*, so every
expectation is paired with a pandas mask mirroring it, used only to name offending tag/ts/value examples.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

# GX phones home on context creation unless told not to; there is no network on plant hosts.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
logging.getLogger("great_expectations").setLevel(logging.WARNING)  # INFO chatter on import and every run

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation import Expectation

QUALITIES = ("good", "uncertain", "bad")
SCHEMA = {
    "ts": "datetime64[ns, UTC]",
    "tag": "object",
    "value": "float64",
    "unit": "object",
    "quality": "object",
    "status_code": "int64",
    "source": "object",
}
MAX_EXAMPLES = 5

# Derived column: value scaled to its tag's [min, max], so one expectation covers all tags at once.
_RANGE_POSITION = "_position_in_tag_range"


@dataclass(frozen=True)
class ExpectationOutcome:
    """Result of one expectation, with a few offending samples a plant engineer can look up."""

    expectation: str
    success: bool
    unexpected_count: int
    examples: list[str]


@dataclass(frozen=True)
class ReadingsValidation:
    """Outcome of the whole suite; ``success`` only if every expectation passed."""

    success: bool
    outcomes: list[ExpectationOutcome]

    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def as_markdown(self) -> str:
        """Small table for Dagster check metadata and run logs."""
        lines = ["| expectation | ok | unexpected | examples |", "|---|---|---|---|"]
        for o in self.outcomes:
            examples = "; ".join(o.examples).replace("|", "\\|")
            lines.append(f"| {o.expectation} | {'✅' if o.success else '❌'} | {o.unexpected_count} | {examples} |")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Check:
    """A GX expectation plus the pandas mask of the rows it rejects (for examples only)."""

    name: str
    expectation: Expectation
    offending: pd.Series
    note: Callable[[pd.DataFrame], list[str]] | None = None


def validate_readings(
    df: pd.DataFrame,
    tag_ranges: dict[str, tuple[float, float]],
    window_start: datetime,
    window_end: datetime,
) -> ReadingsValidation:
    """Validate ``df`` against the readings contract for the half-open window [window_start, window_end).

    Raises ValueError for a naive window bound or a non-empty frame that does not match the schema:
    those are programming errors, not data-quality findings. ``df`` is not modified.
    """
    # Imported lazily: GX takes seconds to import, keep that off the code-location load path.
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must be timezone-aware")
    frame = _conform(df)
    frame[_RANGE_POSITION] = _range_position(frame, tag_ranges)
    start, end = pd.Timestamp(window_start), pd.Timestamp(window_end)
    ts, value, quality, position = frame["ts"], frame["value"], frame["quality"], frame[_RANGE_POSITION]
    expect = gx.expectations

    checks = [
        *(
            _Check(f"{col} not null", expect.ExpectColumnValuesToNotBeNull(column=col), frame[col].isna())
            for col in ("ts", "tag", "quality", "source")
        ),
        _Check(
            "value not null when quality good",
            expect.ExpectColumnValuesToNotBeNull(column="value", row_condition=Column("quality") == "good"),
            quality.eq("good") & value.isna(),
        ),
        _Check(
            "quality in good/uncertain/bad",
            expect.ExpectColumnValuesToBeInSet(column="quality", value_set=list(QUALITIES)),
            quality.notna() & ~quality.isin(QUALITIES),
            lambda rows: [f" (quality {q!r})" for q in rows["quality"]],
        ),
        _Check(
            "value within tag range",
            expect.ExpectColumnValuesToBeBetween(column=_RANGE_POSITION, min_value=0, max_value=1),
            position.notna() & ~position.between(0, 1),
            lambda rows: [_range_note(tag_ranges.get(t)) for t in rows["tag"]],
        ),
        _Check(
            "(ts, tag) unique",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["ts", "tag"]),
            frame.duplicated(["ts", "tag"], keep=False),
        ),
        _Check(
            "ts inside window",
            expect.ExpectColumnValuesToBeBetween(column="ts", min_value=start, max_value=end, strict_max=True),
            (ts < start) | (ts >= end),
        ),
    ]

    for check in checks:
        check.expectation.meta = {"check": check.name}  # matches results back to checks
    # Passing expectations to the constructor skips suite.add_expectation, which looks the suite up
    # in the context's store for every call (and needs a "current" context to exist at all).
    suite = gx.ExpectationSuite(name=f"readings-{uuid.uuid4()}", expectations=[c.expectation for c in checks])
    # Hand GX a consolidated copy: it slices the frame once per metric, and a frame with an appended
    # column re-merges its blocks on every slice (a third of the run time at 360k rows).
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame.copy()})
    results = {r.expectation_config.meta["check"]: r for r in batch.validate(suite).results}

    outcomes = [_outcome(check, results[check.name], frame) for check in checks]
    return ReadingsValidation(success=all(o.success for o in outcomes), outcomes=outcomes)


@cache
def _batch_definition() -> BatchDefinition:
    """One ephemeral GX context per process: building it (and importing GX) is the slow part."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX pins this module's logger to INFO on import, just to announce a temp dir for ephemeral docs.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # tqdm bars spam Dagster logs
    asset = context.data_sources.add_pandas("gl_readings").add_dataframe_asset("readings")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with ``value`` as float64 (None becomes NaN).

    A frame without rows (e.g. ``pd.DataFrame()`` from an idle source) carries no trustworthy dtypes, so it
    is replaced by an empty canonical one. A frame with rows must match the schema: a schema bug should
    crash loudly rather than show up as a data-quality finding.
    """
    if df.empty:
        return pd.DataFrame(columns=list(SCHEMA)).astype(SCHEMA)
    missing = [c for c in SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"readings frame is missing columns {missing}")
    if not isinstance(df["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError(f"readings ts must be timezone-aware datetime64, got {df['ts'].dtype}")
    return df.astype({"value": "float64"})


def _range_position(frame: pd.DataFrame, tag_ranges: dict[str, tuple[float, float]]) -> pd.Series:
    """(value - min) / (max - min): in-range values land in [0, 1], null values stay null (skipped).

    A min == max range gives 0/0 = NaN (skipped, i.e. accepted) for its one valid value and +-inf for
    any other. Rows of a tag without a configured range get +inf, so they fail instead of being skipped.
    """
    low = frame["tag"].map({t: float(lo) for t, (lo, _) in tag_ranges.items()})
    high = frame["tag"].map({t: float(hi) for t, (_, hi) in tag_ranges.items()})
    position = (frame["value"] - low) / (high - low)  # pandas silences numpy's divide-by-zero warning
    return position.mask(low.isna() & frame["tag"].notna(), np.inf)


def _range_note(limits: tuple[float, float] | None) -> str:
    return " (no range configured)" if limits is None else f" (range {limits[0]:g}..{limits[1]:g})"


def _outcome(check: _Check, result: ExpectationValidationResult, frame: pd.DataFrame) -> ExpectationOutcome:
    if "unexpected_count" not in result.result:
        # GX catches metric errors and nests them per metric id; with a conformed frame that is a bug here.
        messages = [i["exception_message"] for i in result.exception_info.values() if isinstance(i, dict)]
        raise RuntimeError(f"GX could not evaluate {check.name!r}: {messages or result.exception_info}")
    examples = [] if result.success else _examples(frame[check.offending], check.note)
    return ExpectationOutcome(check.name, bool(result.success), int(result.result["unexpected_count"]), examples)


def _examples(rows: pd.DataFrame, note: Callable[[pd.DataFrame], list[str]] | None) -> list[str]:
    """First offending sample of up to MAX_EXAMPLES distinct tags, as 'tag @ ts = value (note)'."""
    rows = rows.drop_duplicates("tag").head(MAX_EXAMPLES)
    notes = note(rows) if note else [""] * len(rows)
    return [
        f"{tag} @ {pd.Timestamp(ts).isoformat()} = {value}{suffix}"
        for tag, ts, value, suffix in zip(rows["tag"], rows["ts"], rows["value"], notes, strict=True)
    ]
