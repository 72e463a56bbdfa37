"""Completeness: did we get the samples the plant should have produced, and were they good?

A sensor that went quiet or a gateway that marks everything Bad yields "valid" rows that still
must not reach a report. Pure functions, so tests and other sources reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd


@dataclass(frozen=True)
class Completeness:
    expected: int
    present: int
    rows: int
    good: int
    min_expected_share: float
    min_good_share: float
    worst_tags: dict[str, float]
    """Up to five tags with the lowest share of expected samples present, for the operator."""

    @property
    def expected_share(self) -> float:
        return self.present / self.expected if self.expected else 1.0

    @property
    def good_share(self) -> float:
        return self.good / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        return self.expected_share >= self.min_expected_share and self.good_share >= self.min_good_share

    def describe(self) -> str:
        return (
            f"{self.present}/{self.expected} expected samples present ({self.expected_share:.1%}, "
            f"need {self.min_expected_share:.0%}); {self.good_share:.1%} good (need {self.min_good_share:.0%})"
        )


def completeness(
    readings: pd.DataFrame,
    tags: list[str],
    window: tuple[datetime, datetime],
    sample_interval_s: float,
    min_expected_share: float,
    min_good_share: float,
) -> Completeness:
    """Shares of expected samples present (per configured tag) and of present samples that are good."""
    return completeness_of_counts(
        readings.groupby("tag").size(),
        int(readings["quality"].eq("good").sum()),
        tags,
        window,
        sample_interval_s,
        min_expected_share,
        min_good_share,
    )


def completeness_of_counts(
    per_tag: pd.Series,
    good: int,
    tags: list[str],
    window: tuple[datetime, datetime],
    sample_interval_s: float,
    min_expected_share: float,
    min_good_share: float,
) -> Completeness:
    """`completeness` from the row count per tag and the count of good rows (e.g. counted by SQL)."""
    start, end = window
    per_tag_expected = int((end - start).total_seconds() // sample_interval_s)
    counts = per_tag.reindex(tags, fill_value=0)
    shares = (counts.clip(upper=per_tag_expected) / per_tag_expected) if per_tag_expected else counts * 0.0
    worst = shares.sort_values().head(5)
    return Completeness(
        expected=per_tag_expected * len(tags),
        present=int(counts.clip(upper=per_tag_expected).sum()),
        rows=int(per_tag.sum()),
        good=good,
        min_expected_share=min_expected_share,
        min_good_share=min_good_share,
        worst_tags={tag: round(float(share), 4) for tag, share in worst.items()},
    )
