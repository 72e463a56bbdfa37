"""SAP OData v2 wire format, as plain functions: dates, decimals, $metadata, rows, filters.

Kept apart from the HTTP resource so tests can call every rule directly. Conventions followed
(MS-ODATA 2.2.6.3.1 and the datajs / SAPUI5 readers):

- `/Date(ms)/` is milliseconds since the epoch, UTC.
- `/Date(ms+0060)/` carries an offset in minutes; the milliseconds are the local wall clock, so the
  UTC instant is `ms - offset`, as SAPUI5 reads it.
- An `Edm.DateTime` marked `sap:display-format="Date"` is a calendar date (SAP BUDAT, DATS):
  midnight UTC of that date on the wire. We store it as the UTC instant of local midnight in the
  plant's zone (the project's convention for plant days), and filter it by calendar date.
- `Edm.Decimal` travels as a JSON string and becomes `decimal.Decimal`, never a float.
- A property missing from a row is null, never a type default (no 1753-01-01 dates, no 0 amounts).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

SAP_NS = "http://www.sap.com/Protocols/SAPData"
_DATE_RE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{1,4}))?\)/$")
DATE_TYPES = ("Edm.DateTime", "Edm.DateTimeOffset", "Edm.Date")  # Edm.Date: OData v4 only
INT_TYPES = ("Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte")
FLOAT_TYPES = ("Edm.Double", "Edm.Single")
_TYPED = (*DATE_TYPES, *INT_TYPES, *FLOAT_TYPES, "Edm.Decimal", "Edm.Boolean")


class ODataError(ValueError):
    """A payload or schema that does not fit what was asked; names the entity set, property and value."""


class ODataSchemaError(ODataError):
    """The configured entity set or property does not exist in the service's $metadata."""


@dataclass(frozen=True)
class Property:
    name: str
    edm_type: str
    date_only: bool = False
    nullable: bool = True


@dataclass(frozen=True)
class EntitySet:
    name: str
    entity_type: str
    keys: tuple[str, ...]
    properties: dict[str, Property] = field(default_factory=dict)

    def types(self) -> dict[str, str]:
        return {name: prop.edm_type for name, prop in self.properties.items()}


def parse_odata_date(value: object, *, entity_set: str = "?", prop: str = "?") -> datetime | None:
    """`/Date(ms)/` or `/Date(ms+mmmm)/` (or an ISO 8601 string) -> tz-aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _DATE_RE.match(value)
        if match:
            ms, sign, minutes = match.groups()
            offset = int(minutes or 0) * (-1 if sign == "-" else 1)
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms) - offset * 60_000)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ODataError(f"{entity_set}.{prop}: {value!r} is not an OData date (/Date(ms)/ or /Date(ms+offset)/)")


def parse_decimal(value: object, *, entity_set: str = "?", prop: str = "?") -> Decimal | None:
    """An Edm.Decimal (a JSON string in OData v2) -> exact Decimal; None stays None.

    A JSON number must arrive as Decimal or int (the client parses with parse_float=Decimal); a
    binary float has already lost digits and is refused, as are a bool and text.
    """
    if value is None:
        return None
    if isinstance(value, bool | float):
        raise ODataError(f"{entity_set}.{prop}: {value!r} is not an exact Edm.Decimal")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ODataError(f"{entity_set}.{prop}: {value!r} is not an Edm.Decimal") from None
    if not number.is_finite():
        raise ODataError(f"{entity_set}.{prop}: {value!r} is not a finite Edm.Decimal")
    return number


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_metadata(xml_text: str, *, source: str = "$metadata") -> dict[str, EntitySet]:
    """An EDMX document -> {entity set name: EntitySet with its keys and typed properties}.

    Namespace-agnostic (EDM 2007/05, 2008/09, 2009/11 and CSDL v4 all work), since servers differ. A
    schema `Alias` (CSDL v4, e.g. SAP's `SAP__self`) may qualify an entity set's type. An OData v4
    `Edm.Date` is a calendar date like SAP's `display-format="Date"`.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ODataError(f"{source}: not an EDMX document: {exc}") from None
    types: dict[str, tuple[tuple[str, ...], dict[str, Property]]] = {}
    sets: list[tuple[str, str]] = []
    aliases: dict[str, str] = {}
    for schema in (el for el in root.iter() if _local(el.tag) == "Schema"):
        namespace = schema.get("Namespace", "")
        if schema.get("Alias"):
            aliases[schema.get("Alias")] = namespace
        for child in schema:
            if _local(child.tag) == "EntityType":
                keys = tuple(
                    ref.get("Name", "")
                    for key in child
                    if _local(key.tag) == "Key"
                    for ref in key
                    if _local(ref.tag) == "PropertyRef"
                )
                props = {}
                for prop in child:
                    if _local(prop.tag) != "Property":
                        continue
                    name = prop.get("Name", "")
                    props[name] = Property(
                        name,
                        prop.get("Type", ""),
                        date_only=prop.get(f"{{{SAP_NS}}}display-format") == "Date" or prop.get("Type") == "Edm.Date",
                        nullable=prop.get("Nullable", "true").lower() != "false",
                    )
                types[f"{namespace}.{child.get('Name')}"] = (keys, props)
        for container in (el for el in schema if _local(el.tag) == "EntityContainer"):
            sets += [
                (es.get("Name", ""), es.get("EntityType", "")) for es in container if _local(es.tag) == "EntitySet"
            ]
    result = {}
    for name, type_name in sets:
        qualifier, _, local_name = type_name.rpartition(".")
        type_name = f"{aliases.get(qualifier, qualifier)}.{local_name}"
        if type_name not in types:
            raise ODataError(f"{source}: entity set {name!r} refers to unknown entity type {type_name!r}")
        keys, props = types[type_name]
        result[name] = EntitySet(name, type_name, keys, props)
    if not result:
        raise ODataError(f"{source}: no entity sets found")
    return result


def validate_fields(metadata: Mapping[str, EntitySet], entity_set: str, properties: Iterable[str]) -> EntitySet:
    """The entity set, if it exists and has every property; else an error naming what is missing."""
    found = metadata.get(entity_set)
    if found is None:
        raise ODataSchemaError(
            f"entity set {entity_set!r} is not in the service's $metadata (it has: {', '.join(sorted(metadata))})"
        )
    missing = [name for name in properties if name not in found.properties]
    if missing:
        raise ODataSchemaError(
            f"entity set {entity_set!r} has no property {', '.join(repr(m) for m in missing)} "
            f"(it has: {', '.join(found.properties)})"
        )
    return found


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def convert_value(value: object, prop: Property, entity_set: str, zone: ZoneInfo) -> object:
    """One wire value -> its Python value for `prop`'s EDM type; None stays None."""
    if value is None:
        return None
    kind = prop.edm_type
    if kind in DATE_TYPES:
        moment = parse_odata_date(value, entity_set=entity_set, prop=prop.name)
        return local_midnight_utc(moment.date(), zone) if prop.date_only else moment
    if kind == "Edm.Decimal":
        return parse_decimal(value, entity_set=entity_set, prop=prop.name)
    if kind in INT_TYPES:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ODataError(f"{entity_set}.{prop.name}: {value!r} is not an {kind}") from None
        if isinstance(value, bool) or (number != value and not isinstance(value, str)):  # 12.7 is not 12
            raise ODataError(f"{entity_set}.{prop.name}: {value!r} is not an {kind}")
        return number
    if kind in FLOAT_TYPES:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ODataError(f"{entity_set}.{prop.name}: {value!r} is not an {kind}") from None
    if kind == "Edm.Boolean":
        if not isinstance(value, bool):
            raise ODataError(f"{entity_set}.{prop.name}: {value!r} is not an Edm.Boolean")
        return value
    if not isinstance(value, str):
        raise ODataError(f"{entity_set}.{prop.name}: {value!r} is not an {kind or 'Edm.String'}")
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _date_column(values: list[object], prop: Property, entity_set: str, zone: ZoneInfo) -> pd.Series:
    """A column of wire dates -> datetime64[us, UTC] (one regex match per value, no per-value datetime).

    Built as int64 microseconds with NaT for a missing value, never as floats with NaN: pandas 2.x's
    `to_datetime(floats, unit=...)` reads uninitialised memory at NaN positions and can raise
    FloatingPointError at random (pandas-dev/pandas#58419; seen once in our CI)."""
    micros = np.full(len(values), np.datetime64("NaT", "us").astype(np.int64), dtype=np.int64)
    for position, value in enumerate(values):
        if value is None:
            continue
        match = _DATE_RE.match(value) if isinstance(value, str) else None
        if match:
            ticks, sign, minutes = match.groups()
            offset = int(minutes or 0) * (-1 if sign == "-" else 1)
            micros[position] = (int(ticks) - offset * 60_000) * 1000
        else:
            moment = parse_odata_date(value, entity_set=entity_set, prop=prop.name)
            micros[position] = (moment - _EPOCH) // _MICROSECOND
    result = pd.Series(pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize(UTC))
    if prop.date_only:
        # Few distinct dates: localize each once (DST-aware), then map back.
        dates = result.dt.tz_localize(None).dt.normalize()
        distinct = pd.DatetimeIndex(dates.dropna().unique())
        midnights = distinct.tz_localize(zone, ambiguous=False, nonexistent="shift_forward").tz_convert(UTC)
        result = pd.Series(midnights.take(distinct.get_indexer(dates), allow_fill=True, fill_value=pd.NaT))
    return result.astype("datetime64[us, UTC]")


def normalize_rows(
    rows: Sequence[Mapping[str, object]],
    entity: EntitySet,
    mapping: Mapping[str, str],
    zone: ZoneInfo,
) -> pd.DataFrame:
    """OData rows -> a frame with one column per `mapping` entry (our column -> OData property).

    A property absent from a row is null in that row. Dates are tz-aware UTC, decimals exact
    (`Decimal` objects), integers nullable Int64, floats float64, booleans nullable, strings object.
    """
    columns: dict[str, object] = {}
    for column, name in mapping.items():
        prop = entity.properties[name]
        values = [row.get(name) for row in rows]
        if prop.edm_type in DATE_TYPES:
            columns[column] = _date_column(values, prop, entity.name, zone)
            continue
        if prop.edm_type not in _TYPED and all(value is None or type(value) is str for value in values):
            columns[column] = pd.Series(values, dtype=object)  # strings as sent: nothing to convert
            continue
        converted = [convert_value(value, prop, entity.name, zone) for value in values]
        if prop.edm_type in INT_TYPES:
            columns[column] = pd.array(converted, dtype="Int64")
        elif prop.edm_type in FLOAT_TYPES:
            columns[column] = pd.array([np.nan if v is None else v for v in converted], dtype="float64")
        elif prop.edm_type == "Edm.Boolean":
            columns[column] = pd.array(converted, dtype="boolean")
        else:
            columns[column] = pd.Series(converted, dtype=object)
    return pd.DataFrame({column: pd.Series(values).reset_index(drop=True) for column, values in columns.items()})


def plant_dates(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """[first, after) calendar dates in `zone` covering the instants [start, end): a window ending inside a
    day takes that whole day."""
    first, last = (bound.astimezone(zone) for bound in (start, end))
    after = last.date() if last.timetz().replace(tzinfo=None) == datetime.min.time() else last.date() + timedelta(1)
    return first.date(), after


def checked_rows(rows: object, *, source: str, where: str) -> list[dict]:
    """`rows` when it is a list of objects (JSON rows); else an error naming `where` they should be."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ODataError(f"{source}: {where} is not a list of objects")
    return rows


def checked_count(count: object, *, source: str, name: str) -> int | None:
    """A server's row count (a number, or a numeric string as IEEE754Compatible sends it), or None."""
    if count is None:
        return None
    try:
        if isinstance(count, bool) or int(count) != float(count):
            raise ValueError
        return int(count)
    except (TypeError, ValueError):
        raise ODataError(f"{source}: {name} {count!r} is not a number") from None


def _datetime_literal(moment: datetime) -> str:
    return f"datetime'{moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')}'"


def window_bounds(prop: Property, start: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a `$filter` on date property `prop` compares with to select `[start, end)`.

    The window itself for a timestamp; for a calendar-date property (a plant day is one date in `zone`)
    the UTC midnights of its first date and of the date after its last, as calendar dates travel.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if prop.edm_type not in DATE_TYPES:
        raise ODataSchemaError(f"property {prop.name!r} is {prop.edm_type}, not a date; cannot filter a time window")
    if not prop.date_only:
        return start, end
    first, after = plant_dates(start, end, zone)
    return datetime(first.year, first.month, first.day, tzinfo=UTC), datetime(
        after.year, after.month, after.day, tzinfo=UTC
    )


def window_filter(prop: Property, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """`$filter` selecting `[start, end)` on a date property (see window_bounds): `datetime'...'` literals,
    `datetimeoffset'...Z'` for an Edm.DateTimeOffset timestamp."""
    low, high = window_bounds(prop, start, end, zone)
    if prop.edm_type == "Edm.DateTimeOffset" and not prop.date_only:
        low_text, high_text = (
            f"datetimeoffset'{b.astimezone(UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')}'"
            for b in (low, high)
        )
        return f"{prop.name} ge {low_text} and {prop.name} lt {high_text}"
    return f"{prop.name} ge {_datetime_literal(low)} and {prop.name} lt {_datetime_literal(high)}"


def entity_rows(payload: object, *, source: str) -> tuple[list[dict], str | None, str | None, int | None]:
    """(rows, `__next`, `__delta`, `__count`) of an OData v2 JSON collection response."""
    body = payload.get("d") if isinstance(payload, dict) else None
    if isinstance(body, list):  # OData v1 shape: the collection itself
        body = {"results": body}
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ODataError(f'{source}: not an OData v2 collection (expected {{"d": {{"results": [...]}}}})')
    rows = checked_rows(body["results"], source=source, where="d.results")
    count = checked_count(body.get("__count"), source=source, name="__count")
    return rows, body.get("__next"), body.get("__delta"), count
