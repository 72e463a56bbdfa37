"""What the REST ERP dialects (Oracle Fusion, Workday) share with the OData readers: typed, exact, deduplicated rows.

Each vendor describes its attributes in its own words (Oracle `describe`: string/number/date/datetime;
Workday's report schema: xsd types). They are mapped onto EDM types so the OData rules apply unchanged
(`odata.normalize_rows`: UTC dates, a calendar date as the plant's local midnight, exact decimals,
nulls kept null; `erp.to_exact_decimals` and `erp.deduplicate`), and the result is an `ErpExtract`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from gl_pipelines.resources.erp import EntityQuery, ErpExtract, deduplicate, to_exact_decimals
from gl_pipelines.resources.http import HttpSourceError
from gl_pipelines.resources.odata import EntitySet, ODataError, Property, normalize_rows, validate_fields


class VendorError(ODataError):
    """The vendor refused or garbled a request; names the instance, the resource and the vendor's own detail."""


def entity_of(name: str, attributes: Mapping[str, str], edm_types: Mapping[str, str], *, source: str) -> EntitySet:
    """An EntitySet from `attribute -> vendor type`; a vendor type we cannot type is an error naming it."""
    properties = {}
    for attribute, vendor_type in attributes.items():
        edm = edm_types.get(vendor_type)
        if edm is None:
            raise VendorError(f"{source}: attribute {attribute!r} has type {vendor_type!r}, which we cannot type")
        properties[attribute] = Property(attribute, edm, date_only=edm == "Edm.Date")
    return EntitySet(name, name, (), properties)


def validated(entity: EntitySet, query: EntityQuery, source: str) -> EntitySet:
    """The entity when every mapped field is one of its attributes; else an error naming instance and field."""
    try:
        return validate_fields({entity.name: entity}, entity.name, query.fields.values())
    except ODataError as exc:
        raise type(exc)(f"{source}: {exc}".replace("entity set", "resource")) from None


@dataclass(frozen=True)
class Typed:
    """A read's rows typed: one row per key, how many duplicates were dropped, SHA-256 of the rows as read."""

    frame: pd.DataFrame = field(repr=False)
    duplicates: int
    payload_sha256: str

    def extract(self, *, query: str, pages: int, requests: int, began: float, **extra: Any) -> ErpExtract:
        """The ErpExtract the ERP assets expect (a full read; `extra`: mode, server_count)."""
        return ErpExtract(
            frame=self.frame,
            mode=extra.get("mode", "full"),
            query=query,
            delta_link=None,
            server_count=extra.get("server_count"),
            pages=pages,
            requests=requests,
            duplicates_dropped=self.duplicates,
            payload_sha256=self.payload_sha256,
            duration_s=time.perf_counter() - began,
        )


def typed_frame(rows: list[dict], entity: EntitySet, query: EntityQuery, zone: ZoneInfo) -> Typed:
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str).encode())
    frame = normalize_rows(rows, entity, query.fields, zone)
    frame, duplicates = deduplicate(frame, query.keys)
    return Typed(to_exact_decimals(frame, entity, query), duplicates, digest.hexdigest())


def vendor_refusal(error: HttpSourceError, detail: str | None, resource: str) -> Exception:
    """A 4xx whose body carries the vendor's own explanation: that explanation, with the instance and resource."""
    if detail is None or error.status is None or error.status >= 500:
        return error
    return VendorError(f"{error.source}: {resource}: HTTP {error.status} from the server: {detail}")
