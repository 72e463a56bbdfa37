"""Great Expectations validation of readings in the canonical long schema, inside DuckDB.

Every ingest path (OPC UA, Modbus, historian) lands readings as ``ts, tag, value, unit, quality, source``
(plus source-specific columns); this module is the one gate that decides whether such a batch is fit to
publish. GX validates the rows where they are staged, through its SQL execution engine (SQLAlchemy with
duckdb_engine): no frame is built for the validation, so an 8.7 M-row day costs a few scans in DuckDB
instead of pandas copies of the whole frame (bench/checks_scale.py measures both).

Two derived columns let one expectation cover a rule GX would otherwise evaluate expensively: the
value's position in its tag's [min, max] (one range expectation for all tags), and the number of rows
sharing the row's (ts, tag), counted once by a GROUP BY (GX's own compound-unique SQL joins the table
back to its group counts on every column: 29.5 s at 8.7 M rows against 2.5 s for the GROUP BY).

GX reports *that* an expectation failed and how often; plant engineers need *which sample*, so every
expectation is paired with a SQL predicate mirroring it, used only to name offending tag/ts/value examples.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gl_pipelines.resources.warehouse import connect_warehouse, stage_rows

# GX phones home on context creation unless told not to; there is no network on plant hosts.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
logging.getLogger("great_expectations").setLevel(logging.WARNING)  # INFO chatter on import and every run

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation import Expectation

QUALITIES = ("good", "uncertain", "bad")
REQUIRED = {"ts": "datetime64[ns, UTC]", "tag": "object", "value": "float64", "quality": "object", "source": "object"}
MAX_EXAMPLES = 5
_POSITION = "_position_in_tag_range"
_SHARING = "_rows_with_same_ts_tag"
_DIALECT = "duckdb.gl_audit"


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
    """A GX expectation plus the SQL predicate of the rows it rejects (for examples only)."""

    name: str
    expectation: Expectation
    offending: str
    note: Callable[[pd.DataFrame], list[str]] | None = None


def validate_readings(
    df: pd.DataFrame,
    tag_ranges: dict[str, tuple[float, float]],
    window_start: datetime,
    window_end: datetime,
) -> ReadingsValidation:
    """Validate ``df`` against the readings contract for the half-open window [window_start, window_end).

    Stages the frame in a temporary DuckDB file and runs `validate_staged` on it. Raises ValueError for a
    naive window bound or a non-empty frame that does not match the schema: those are programming errors,
    not data-quality findings. ``df`` is not modified.
    """
    _require_aware(window_start, window_end)
    frame = _conform(df)
    with tempfile.TemporaryDirectory(prefix="gl-readings-") as folder:
        database = str(Path(folder) / "readings.duckdb")
        table = stage_rows(database, "readings", frame)
        return validate_staged(database, table, tag_ranges, window_start, window_end)


def validate_staged(
    database: str,
    table: str,
    tag_ranges: dict[str, tuple[float, float]],
    window_start: datetime,
    window_end: datetime,
) -> ReadingsValidation:
    """Validate the readings staged in `table` of the DuckDB file `database` (see `validate_readings`)."""
    # Imported lazily: GX takes seconds to import, keep that off the code-location load path.
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    _require_aware(window_start, window_end)
    start, end = pd.Timestamp(window_start).isoformat(), pd.Timestamp(window_end).isoformat()
    expect = gx.expectations
    checks = [
        *(
            _Check(f"{col} not null", expect.ExpectColumnValuesToNotBeNull(column=col), f"{col} IS NULL")
            for col in ("ts", "tag", "quality", "source")
        ),
        _Check(
            "value not null when quality good",
            expect.ExpectColumnValuesToNotBeNull(column="value", row_condition=Column("quality") == "good"),
            "quality = 'good' AND value IS NULL",
        ),
        _Check(
            "quality in good/uncertain/bad",
            expect.ExpectColumnValuesToBeInSet(column="quality", value_set=list(QUALITIES)),
            f"quality IS NOT NULL AND quality NOT IN {QUALITIES}",
            lambda rows: [f" (quality {q!r})" for q in rows["quality"]],
        ),
        _Check(
            "value within tag range",
            expect.ExpectColumnValuesToBeBetween(column=_POSITION, min_value=0, max_value=1),
            f"{_POSITION} IS NOT NULL AND NOT ({_POSITION} BETWEEN 0 AND 1)",
            lambda rows: [_range_note(tag_ranges.get(t)) for t in rows["tag"]],
        ),
        _Check(
            "(ts, tag) unique",
            expect.ExpectColumnValuesToBeBetween(column=_SHARING, min_value=1, max_value=1),
            f"{_SHARING} > 1",
        ),
        _Check(
            "ts inside window",
            expect.ExpectColumnValuesToBeBetween(column="ts", min_value=start, max_value=end, strict_max=True),
            f"ts < '{start}' OR ts >= '{end}'",
        ),
    ]
    for check in checks:
        check.expectation.meta = {"check": check.name}  # matches results back to checks
    # Passing expectations to the constructor skips suite.add_expectation, which looks the suite up
    # in the context's store for every call (and needs a "current" context to exist at all).
    suite = gx.ExpectationSuite(name=f"readings-{uuid.uuid4()}", expectations=[c.expectation for c in checks])

    # One connection for the whole validation; GX works on cursors of it, and closing it closes them (GX
    # keeps its connections in reference cycles, and DuckDB refuses another configuration of the file
    # in this process while one is open).
    connection = connect_warehouse(database)
    try:
        query = _audit_query(connection, table, tag_ranges)
        context = _gx_context()
        source = context.data_sources.add_sql(
            f"warehouse-{uuid.uuid4().hex}",
            connection_string=f"{_DIALECT.replace('.', '+')}:///{database}",
            kwargs={"creator": lambda: _wrapped(connection.cursor())},
        )
        try:
            batch = source.add_query_asset("readings", query=query).add_batch_definition_whole_table("all").get_batch()
            validation = batch.validate(suite, result_format="BASIC")
        finally:
            context.data_sources.delete(source.name)
        results = {r.expectation_config.meta["check"]: r for r in validation.results}
        failing = [c for c in checks if not results[c.name].success]
        examples = _examples(connection, query, failing)
        connection.execute(f"DROP TABLE IF EXISTS {table}__ranges; DROP TABLE IF EXISTS {table}__shared")
    finally:
        connection.close()
    outcomes = [_outcome(check, results[check.name], examples.get(check.name, [])) for check in checks]
    return ReadingsValidation(success=all(o.success for o in outcomes), outcomes=outcomes)


def _audit_query(connection, table: str, tag_ranges: dict[str, tuple[float, float]]) -> str:
    """The staged rows with the two derived columns; writes the helper tables next to them (tag ranges,
    duplicated (ts, tag)), which the caller drops."""
    ranges = pd.DataFrame(
        [(tag, float(low), float(high)) for tag, (low, high) in tag_ranges.items()], columns=["tag", "low", "high"]
    )
    connection.register("_ranges", ranges)
    connection.execute(f"CREATE OR REPLACE TABLE {table}__ranges (tag VARCHAR, low DOUBLE, high DOUBLE)")
    connection.execute(f"INSERT INTO {table}__ranges SELECT * FROM _ranges")
    connection.unregister("_ranges")
    connection.execute(
        f"CREATE OR REPLACE TABLE {table}__shared AS SELECT ts, tag, count(*) AS n FROM {table} "
        "GROUP BY ts, tag HAVING count(*) > 1"
    )
    # Null value: skipped. Tag without a range: +inf, so it fails. A min == max range accepts only its value.
    return f"""SELECT s.rowid AS _row, s.ts, s.tag, s.value, s.quality, s.source,
    CASE WHEN s.tag IS NOT NULL AND r.tag IS NULL THEN 'inf'::DOUBLE
         WHEN s.value IS NULL THEN NULL
         WHEN r.high = r.low THEN CASE WHEN s.value = r.low THEN NULL ELSE 'inf'::DOUBLE END
         ELSE (s.value - r.low) / (r.high - r.low) END AS {_POSITION},
    coalesce(d.n, 1) AS {_SHARING}
FROM {table} s
LEFT JOIN {table}__ranges r ON s.tag = r.tag
LEFT JOIN {table}__shared d ON s.ts IS NOT DISTINCT FROM d.ts AND s.tag IS NOT DISTINCT FROM d.tag"""


@cache
def _gx_context():
    """One ephemeral GX context per process: building it (and importing GX) is the slow part."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from sqlalchemy.dialects import registry

    # GX pins this module's logger to INFO on import, just to announce a temp dir for ephemeral docs.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    registry.register(_DIALECT, __name__, "AuditDuckDBDialect")
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # tqdm bars spam Dagster logs
    return context


def __getattr__(name: str):
    """`AuditDuckDBDialect`, built on first use so duckdb_engine/SQLAlchemy load only with GX."""
    if name != "AuditDuckDBDialect":
        raise AttributeError(name)
    from duckdb_engine import Dialect

    class AuditDuckDBDialect(Dialect):
        """duckdb_engine for GX's read-only validation queries. GX reads each result after returning its
        connection to the pool, and the rollback on return empties a DuckDB result (GX issue #11579,
        duckdb_engine #734); validation never writes, so no transaction is begun or ended."""

        supports_statement_cache = False

        def do_begin(self, dbapi_connection) -> None:
            pass

        def do_rollback(self, dbapi_connection) -> None:
            pass

        def do_commit(self, dbapi_connection) -> None:
            pass

    globals()[name] = AuditDuckDBDialect
    return AuditDuckDBDialect


def _wrapped(connection):
    from duckdb_engine import ConnectionWrapper

    return ConnectionWrapper(connection)


def _require_aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None for moment in moments):
        raise ValueError("window_start and window_end must be timezone-aware")


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``value`` as float64, ready to stage.

    A frame without rows (e.g. ``pd.DataFrame()`` from an idle source) carries no trustworthy dtypes, so it
    is replaced by an empty canonical one. A frame with rows must match the schema: a schema bug should
    crash loudly rather than show up as a data-quality finding.
    """
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if t == "object" else t) for c, t in REQUIRED.items()})
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"readings frame is missing columns {missing}")
    if not isinstance(df["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError(f"readings ts must be timezone-aware datetime64, got {df['ts'].dtype}")
    return df.astype({"value": "float64"})


def _range_note(limits: tuple[float, float] | None) -> str:
    return " (no range configured)" if limits is None else f" (range {limits[0]:g}..{limits[1]:g})"


def _examples(connection, query: str, failing: Sequence[_Check]) -> dict[str, list[str]]:
    """First offending sample of up to MAX_EXAMPLES distinct tags per failed check, as 'tag @ ts = value (note)'."""
    examples = {}
    for check in failing:
        rows = connection.execute(
            f"SELECT tag, ts, value, quality FROM ({query}) WHERE {check.offending} "
            f"QUALIFY row_number() OVER (PARTITION BY tag ORDER BY _row) = 1 ORDER BY _row LIMIT {MAX_EXAMPLES}"
        ).fetchdf()
        notes = check.note(rows) if check.note else [""] * len(rows)
        examples[check.name] = [
            f"{tag} @ {_utc(ts)} = {value}{suffix}"
            for tag, ts, value, suffix in zip(rows["tag"], rows["ts"], rows["value"], notes, strict=True)
        ]
    return examples


def _utc(ts) -> str:
    moment = pd.Timestamp(ts)
    return moment.isoformat() if moment is pd.NaT else moment.tz_convert("UTC").isoformat()


def _outcome(check: _Check, result: ExpectationValidationResult, examples: list[str]) -> ExpectationOutcome:
    if "unexpected_count" not in result.result:
        # GX catches metric errors and nests them per metric id; with a conformed frame that is a bug here.
        messages = [i["exception_message"] for i in result.exception_info.values() if isinstance(i, dict)]
        raise RuntimeError(f"GX could not evaluate {check.name!r}: {messages or result.exception_info}")
    return ExpectationOutcome(check.name, bool(result.success), int(result.result["unexpected_count"] or 0), examples)
