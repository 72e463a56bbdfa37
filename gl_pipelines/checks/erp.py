"""Blocking checks on the ERP documents: a bad receipt never reaches the fuel or GHG reports.

The rules are plain functions returning readable problems ("document 5000000001/0001: quantity
-5.0"); the Dagster checks only load the partition and report them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    multi_asset_check,
)

from gl_pipelines.assets.partitions import WAREHOUSE_POOL, site_daily_partitions, utc_window
from gl_pipelines.config import ERP_KEYS, ErpSource

MAX_LISTED = 10


def _label(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """'5000000001/0001' for each row: the document key as people quote it."""
    return ["/".join(str(part) for part in row) for row in frame[list(keys)].itertuples(index=False)]


def duplicate_keys(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Keys that occur more than once."""
    dupes = frame[frame.duplicated(subset=list(keys), keep=False)]
    return sorted(set(_label(dupes, keys)))


def negative_quantities(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Rows whose quantity is negative, missing or not a number (a missing one would vanish from sums)."""
    quantity = pd.to_numeric(frame["quantity"], errors="coerce")
    bad = frame[quantity.isna() | (quantity < 0)]
    return [
        f"{label}: quantity {'missing' if pd.isna(value) else value}"
        for label, value in zip(_label(bad, keys), bad["quantity"], strict=True)
    ]


def unknown_units(frame: pd.DataFrame, units: Sequence[str], keys: Sequence[str], column: str = "unit") -> list[str]:
    """Rows whose unit is missing or not one the site config allows."""
    bad = frame[~frame[column].isin(list(units))]
    return [f"{label}: {column} {value!r}" for label, value in zip(_label(bad, keys), bad[column], strict=True)]


def outside_window(frame: pd.DataFrame, column: str, start: datetime, end: datetime, keys: Sequence[str]) -> list[str]:
    """Rows whose date is null or outside [start, end)."""
    when = pd.to_datetime(frame[column], utc=True)
    bad = frame[when.isna() | (when < start) | (when >= end)]
    return [f"{label}: {column} {value}" for label, value in zip(_label(bad, keys), bad[column], strict=True)]


def missing_currency(frame: pd.DataFrame, currencies: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Rows with an amount but no currency, or a currency the site does not allow."""
    bad = frame[frame["currency"].isna() | (frame["currency"] == "") | ~frame["currency"].isin(list(currencies))]
    return [f"{label}: currency {value!r}" for label, value in zip(_label(bad, keys), bad["currency"], strict=True)]


def _result(name: str, problems: list[str], ok: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems[:MAX_LISTED])
        + (f" (+{len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else "")
        if problems
        else ok,
        metadata={"problems": len(problems)},
    )


def _document_checks(asset: str, source: ErpSource, timezone: str, currency: bool) -> AssetChecksDefinition:
    kind = asset.removeprefix("erp_")
    keys = ERP_KEYS[kind]
    units = list(source.units)
    names = {rule: f"{asset}_{rule}" for rule in ("keys_unique", "quantity_non_negative", "units_known", "in_window")}
    if currency:
        names["currency_present"] = f"{asset}_currency_present"
    descriptions = {
        "keys_unique": f"One row per key ({', '.join(keys)}).",
        "quantity_non_negative": "No negative or missing quantity.",
        "units_known": f"Every unit is one of the site's ERP units ({', '.join(units)}).",
        "in_window": "Every posting date is inside the partition's plant day.",
        "currency_present": f"Every amount has a currency in {', '.join(source.currencies)}.",
    }
    daily = site_daily_partitions(timezone)

    @multi_asset_check(
        name=f"{asset}_checks",
        specs=[
            AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=daily, description=descriptions[rule])
            for rule, name in names.items()
        ],
        ins={"frame": AssetIn(key=asset)},
        pool=WAREHOUSE_POOL,
    )
    def _checks(context, frame: pd.DataFrame) -> Iterator[AssetCheckResult]:
        start, end = utc_window(context.op_execution_context.partition_time_window)
        yield _result(names["keys_unique"], duplicate_keys(frame, keys), f"{len(frame)} rows, keys unique")
        yield _result(
            names["quantity_non_negative"], negative_quantities(frame, keys), "quantities all set, none negative"
        )
        yield _result(names["units_known"], unknown_units(frame, units, keys), "all units known")
        yield _result(
            names["in_window"],
            outside_window(frame, "posting_date", start, end, keys),
            f"all posting dates in [{start.isoformat()}, {end.isoformat()})",
        )
        if currency:
            yield _result(names["currency_present"], missing_currency(frame, source.currencies, keys), "currency set")

    return _checks


def _master_checks(asset: str, keys: Sequence[str], unit_column: str | None, units: Sequence[str]):
    specs = [AssetCheckSpec(f"{asset}_keys_unique", asset=asset, blocking=True, description="One row per key.")]
    if unit_column:
        specs.append(
            AssetCheckSpec(
                f"{asset}_units_known", asset=asset, blocking=True, description="Every base unit is a site ERP unit."
            )
        )

    @multi_asset_check(name=f"{asset}_checks", specs=specs, ins={"frame": AssetIn(key=asset)}, pool=WAREHOUSE_POOL)
    def _checks(frame: pd.DataFrame) -> Iterator[AssetCheckResult]:
        yield _result(f"{asset}_keys_unique", duplicate_keys(frame, keys), f"{len(frame)} rows, keys unique")
        if unit_column:
            yield _result(f"{asset}_units_known", unknown_units(frame, units, keys, unit_column), "all units known")

    return _checks


def build_erp_checks(source: ErpSource, timezone: str) -> list[AssetChecksDefinition]:
    return [
        _document_checks("erp_fuel_receipts", source, timezone, currency=True),
        _document_checks("erp_production", source, timezone, currency=False),
        _master_checks("erp_materials", ERP_KEYS["materials"], "base_unit", list(source.units)),
        _master_checks("erp_plants", ERP_KEYS["plants"], None, []),
    ]
