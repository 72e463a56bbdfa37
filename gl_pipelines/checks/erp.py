"""Blocking checks on the ERP documents: a bad receipt never reaches the fuel or GHG reports.

The rules are plain functions returning readable problems ("document 5000000001/0001: quantity
-5.0"); each asset runs them on the rows it just read, before they are published (`checks.wap`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, PartitionsDefinition

from gl_pipelines.assets.partitions import site_daily_partitions
from gl_pipelines.checks.wap import blocking_specs
from gl_pipelines.config import ERP_KEYS, ErpEntitySet, ErpSource

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


def missing_required(frame: pd.DataFrame, columns: Sequence[str], keys: Sequence[str]) -> list[str]:
    """'key: column missing' for every required column that is null or empty in a row."""
    problems = []
    for column in columns:
        values = frame[column]
        bad = frame[values.isna() | values.astype("string").str.strip().eq("")]
        problems += [f"{label}: {column} missing" for label in _label(bad, keys)]
    return problems


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


@dataclass(frozen=True)
class ErpAudit:
    """The blocking checks of one ERP asset, run in its step before the rows are published (`checks.wap`)."""

    asset: str
    """The asset's name; its check names start with it."""
    keys: tuple[str, ...]
    descriptions: dict[str, str]
    rules: dict[str, Callable[[pd.DataFrame, tuple | None], tuple[list[str], str]]]
    """check name -> (frame, window) -> (problems, what to say when there are none)."""
    partitions: PartitionsDefinition | None = None
    key: AssetKey | None = None
    """The asset's key when an instance prefixes it."""

    def specs(self) -> list[AssetCheckSpec]:
        return blocking_specs(self.key or self.asset, self.descriptions, self.partitions)

    def results(self, frame: pd.DataFrame, window: tuple | None) -> list[AssetCheckResult]:
        return [_result(name, *rule(frame, window)) for name, rule in self.rules.items()]


def document_audit(asset: str, source: ErpSource, timezone: str, currency: bool) -> ErpAudit:
    kind = asset.removeprefix("erp_")
    keys = ERP_KEYS[kind]
    units = list(source.units)
    rules = {
        "keys_unique": (
            f"One row per key ({', '.join(keys)}).",
            lambda f, w: (duplicate_keys(f, keys), f"{len(f)} rows, keys unique"),
        ),
        "quantity_non_negative": (
            "No negative or missing quantity.",
            lambda f, w: (negative_quantities(f, keys), "quantities all set, none negative"),
        ),
        "units_known": (
            f"Every unit is one of the site's ERP units ({', '.join(units)}).",
            lambda f, w: (unknown_units(f, units, keys), "all units known"),
        ),
        "in_window": (
            "Every posting date is inside the partition's plant day.",
            lambda f, w: (
                outside_window(f, "posting_date", *w, keys),
                f"all posting dates in [{w[0].isoformat()}, {w[1].isoformat()})",
            ),
        ),
    }
    if currency:
        rules["currency_present"] = (
            f"Every amount has a currency in {', '.join(source.currencies)}.",
            lambda f, w: (missing_currency(f, source.currencies, keys), "currency set"),
        )
    return ErpAudit(
        asset,
        tuple(keys),
        {f"{asset}_{rule}": description for rule, (description, _) in rules.items()},
        {f"{asset}_{rule}": check for rule, (_, check) in rules.items()},
        site_daily_partitions(timezone),
    )


def master_audit(asset: str, keys: Sequence[str], unit_column: str | None, units: Sequence[str]) -> ErpAudit:
    descriptions = {f"{asset}_keys_unique": "One row per key."}
    rules = {f"{asset}_keys_unique": lambda f, w: (duplicate_keys(f, keys), f"{len(f)} rows, keys unique")}
    if unit_column:
        descriptions[f"{asset}_units_known"] = "Every base unit is a site ERP unit."
        rules[f"{asset}_units_known"] = lambda f, w: (unknown_units(f, units, keys, unit_column), "all units known")
    return ErpAudit(asset, tuple(keys), descriptions, rules)


def entity_set_audit(entity: ErpEntitySet, timezone: str, key: AssetKey | None = None) -> ErpAudit:
    """Keys unique, required columns present and, for a dated set, every date inside the plant day."""
    keys = tuple(entity.key)
    rules = {
        "keys_unique": (
            f"One row per key ({', '.join(keys)}).",
            lambda f, w: (duplicate_keys(f, keys), f"{len(f)} rows, keys unique"),
        ),
    }
    if entity.required:
        rules["required_present"] = (
            f"Every row has {', '.join(entity.required)}.",
            lambda f, w: (missing_required(f, entity.required, keys), "required columns present"),
        )
    if entity.date_column:
        rules["in_window"] = (
            f"Every {entity.date_column} is inside the partition's plant day.",
            lambda f, w: (
                outside_window(f, entity.date_column, *w, keys),
                f"all {entity.date_column} in [{w[0].isoformat()}, {w[1].isoformat()})",
            ),
        )
    return ErpAudit(
        entity.name,
        keys,
        {f"{entity.name}_{rule}": description for rule, (description, _) in rules.items()},
        {f"{entity.name}_{rule}": check for rule, (_, check) in rules.items()},
        site_daily_partitions(timezone) if entity.date_column else None,
        key,
    )


def erp_audits(source: ErpSource, timezone: str, key_of=AssetKey) -> dict[str, ErpAudit]:
    """The audit of each ERP asset, by asset name; `key_of(name)` gives the asset's key."""
    roles = {
        "fuel_receipts": lambda: document_audit("erp_fuel_receipts", source, timezone, currency=True),
        "production": lambda: document_audit("erp_production", source, timezone, currency=False),
        "materials": lambda: master_audit("erp_materials", ERP_KEYS["materials"], "base_unit", list(source.units)),
        "plants": lambda: master_audit("erp_plants", ERP_KEYS["plants"], None, []),
    }
    audits = {f"erp_{role}": roles[role]() for role in source.roles()}
    audits = {name: replace(audit, key=key_of(name)) for name, audit in audits.items()}
    for entity in source.entity_sets:
        audits[entity.name] = entity_set_audit(entity, timezone, key_of(entity.name))
    return audits
