"""GE Vernova (Proficy) Historian REST API: raw samples by tag and time range, read-only.

Written from the Historian REST API reference (gevernova.com/software/documentation/historian/version81/
r_sampled_data_api.html and the "Common API Parameters" page of version 9.1; the cloud edition's
"REST APIs for Managing Tag Data" page documents the raw call):

- `GET datapoints/raw/<tag names>/<start>/<end>/<direction>/<count>`: names separated by `;` (written
  `%3B`, since `;` is also valid inside a name), times `YYYY-MM-DDTHH:mm:ss.SSSZ` in UTC, direction 0
  (forward), `count` > 0 returns at most that many samples per tag from the start time.
- Answer: `{"ErrorCode": 0, "ErrorMessage": null, "Data": [{"TagName", "ErrorCode", "DataType",
  "Samples": [{"TimeStamp", "Value", "Quality"}]}]}`; `Value` is a string; `Quality` is DataQuality
  StatusType: 0 Bad, 1 Uncertain, 2 NA, 3 Good. A body timestamp may also be `/Date(ms-0500)/`
  (milliseconds since the epoch, UTC; the offset only says where it was written).
- Bearer tokens from the Historian's UAA (`POST /uaa/oauth/token`, client credentials as HTTP Basic).

Paging by count: a tag that came back with `count` samples is asked again from its last timestamp;
the samples already held at that timestamp are dropped from the next page; a full page that starts before the
time asked, ends past the window or comes after `max_pages` stops the read (`historian.guard_paging`), so a
server that keeps paging cannot hold a step forever. Values outside [start, end)
(the raw call includes its end) are dropped per tag by the shared window rule (resources/window.py).
The result is the canonical long frame, as PI's (`historian.READINGS_COLUMNS`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, Literal
from urllib.parse import quote, urljoin

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from gl_pipelines.config import HistorianTag
from gl_pipelines.resources.chunks import chunk_plan
from gl_pipelines.resources.historian import (
    DEFAULT_MAX_PAGES,
    HISTORIAN_CHUNK_VALUES,
    READINGS_COLUMNS,
    HistorianChunks,
    HistorianError,
    HistorianRead,
    guard_paging,
)
from gl_pipelines.resources.http import HttpClient, HttpSourceResource
from gl_pipelines.resources.window import inside_window

RESOURCE_VERSION = f"gl-pipelines-proficy/1 httpx/{version('httpx')}"
QUALITY = {0: ("bad", "Bad"), 1: ("uncertain", "Uncertain"), 2: ("bad", "NA"), 3: ("good", "Good")}
_EPOCH_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


@dataclass(frozen=True)
class ProficyTag:
    """A tag to read: the site name stored in the warehouse, the Historian tag name, its unit."""

    name: str
    historian_name: str
    unit: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sample_times(texts: list[str], *, source: str) -> pd.Series:
    """TimeStamp strings (ISO 8601, or `/Date(ms±hhmm)/`) -> datetime64[ns, UTC]."""
    epoch = [_EPOCH_DATE.match(text) if isinstance(text, str) else None for text in texts]
    if any(epoch):
        texts = [
            pd.Timestamp(int(match.group(1)), unit="ms", tz=UTC).isoformat() if match else text
            for match, text in zip(epoch, texts, strict=True)
        ]
    try:
        return pd.Series(pd.to_datetime(texts, utc=True, format="ISO8601")).astype("datetime64[ns, UTC]")
    except (ValueError, TypeError) as exc:
        raise HistorianError(f"{source}: a sample TimeStamp is not a date: {exc}") from None


def quality_of(code: object) -> tuple[str, str]:
    """(quality, status) of a Proficy Quality code; an unknown code is bad and says so."""
    if isinstance(code, int) and not isinstance(code, bool) and code in QUALITY:
        return QUALITY[code]
    return "bad", f"unknown Quality {code!r}"


def sample_value(raw: object) -> float | None:
    """A sample's Value (a string on the wire) as a number; None when it is not one."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


class ProficyHistorianResource(HttpSourceResource):
    """A Proficy Historian REST API; base_url is e.g. https://historian.example:8443/historian-rest-api/v1/."""

    source_name: str = Field(default="proficy", description="Recorded in each row's `source` column and in errors.")
    health_path: str = Field(default="tags?nameMask=*&maxNumber=1", description="Path GET by health_check().")
    max_count: int = Field(default=5000, gt=0, description="`count` per raw call: samples per tag per page.")
    tags_per_request: int = Field(default=50, gt=0, description="Tag names per raw call (keeps the URL short).")
    chunk_values: int = Field(
        default=HISTORIAN_CHUNK_VALUES,
        gt=0,
        description="Values a chunked read holds at once (tags read in batches, a long window in time slices): "
        "what bounds a run's memory.",
    )
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, gt=0, description="Pages per tag and read before it stops.")

    def read_raw(self, tags: Sequence[ProficyTag], start: datetime, end: datetime) -> HistorianRead:
        """Every raw sample of `tags` in [start, end), Quality mapped, as the canonical long frame."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        return asyncio.run(self._read(list(tags), start, end))

    def read_raw_chunks(
        self, tags: Sequence[ProficyTag], start: datetime, end: datetime, *, sample_interval_s: float
    ) -> HistorianChunks:
        """The rows of `read_raw`, as frames of about `chunk_values` values each (planned from the tags'
        `sample_interval_s`); iterate it once, then read its provenance."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        plan = chunk_plan(list(tags), start, end, sample_interval_s, self.chunk_values)
        return HistorianChunks(self, self._read_with, tags, (start, end), plan)

    async def _read(self, tags: list[ProficyTag], start: datetime, end: datetime) -> HistorianRead:
        began = time.perf_counter()
        async with self.http_client() as client:
            frame, digest, pages, dropped = await self._read_with(client, tags, start, end)
            stats = dict(client.stats)
        return HistorianRead(frame, digest, stats["requests"], pages, time.perf_counter() - began, stats, dropped)

    async def _read_with(
        self, client: HttpClient, tags: Sequence[ProficyTag], start: datetime, end: datetime
    ) -> tuple[pd.DataFrame, str, int, dict[str, int]]:
        """(canonical frame, its digest, pages, dropped per tag) of `tags` over [start, end) through `client`."""
        tags = list(tags)
        batches = [tags[i : i + self.tags_per_request] for i in range(0, len(tags), self.tags_per_request)]
        results = await asyncio.gather(*(self._batch(client, batch, start, end) for batch in batches))
        per_tag = {name: samples for collected, _ in results for name, samples in collected.items()}
        frame, dropped = self._frame(tags, per_tag, start, end)
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
        return frame, digest, sum(made for _, made in results), dropped

    async def _batch(
        self, client: HttpClient, batch: list[ProficyTag], start: datetime, end: datetime
    ) -> tuple[dict[str, list[dict]], int]:
        """Samples per site tag name of one batch, paging each tag that came back with `max_count` samples."""
        held: dict[str, list[dict]] = {tag.name: [] for tag in batch}
        cursor = {tag.name: _iso(start) for tag in batch}
        pending, pages = list(batch), 0
        tag_pages = dict.fromkeys(cursor, 0)
        while pending:
            groups: dict[str, list[ProficyTag]] = {}
            for tag in pending:
                groups.setdefault(cursor[tag.name], []).append(tag)
            bodies = await asyncio.gather(*(self._raw(client, group, since, end) for since, group in groups.items()))
            pages += len(bodies)
            pending = []
            for (since, group), body in zip(groups.items(), bodies, strict=True):
                for tag, samples in self._samples(group, body).items():
                    tag_pages[tag.name] += 1
                    # The page starts at the cursor again: drop what is already held at that timestamp.
                    repeat = sum(1 for sample in held[tag.name] if sample.get("TimeStamp") == since)
                    skip = 0
                    while skip < min(repeat, len(samples)) and samples[skip].get("TimeStamp") == since:
                        skip += 1
                    held[tag.name] += samples[skip:]
                    if len(samples) < self.max_count:
                        continue
                    if skip == len(samples):
                        raise HistorianError(
                            f"{self.source_name}: tag {tag.name} ({tag.historian_name}) has more than "
                            f"count={self.max_count} samples at {since}; raise max_count to page past them"
                        )
                    reached = held[tag.name][-1]["TimeStamp"]
                    # Checked before asking again: a server that repeats a page or ignores the end would
                    # otherwise keep this step paging until it is killed.
                    times = sample_times([since, samples[0].get("TimeStamp"), reached], source=self.source_name)
                    guard_paging(
                        self.source_name,
                        f"{tag.name} ({tag.historian_name})",
                        tag_pages[tag.name],
                        *times,
                        end,
                        self.max_pages,
                    )
                    cursor[tag.name] = reached
                    pending.append(tag)
        return held, pages

    async def _raw(self, client: HttpClient, group: list[ProficyTag], since: str, end: datetime) -> Any:
        names = "%3B".join(quote(tag.historian_name, safe="") for tag in group)
        return await client.get_json(f"datapoints/raw/{names}/{quote(since)}/{quote(_iso(end))}/0/{self.max_count}")

    def _samples(self, group: list[ProficyTag], body: Any) -> dict[ProficyTag, list[dict]]:
        """Each requested tag's samples; a failed call or tag raises, naming the instance and the tags."""
        listed = ", ".join(tag.name for tag in group[:5]) + (" ..." if len(group) > 5 else "")
        if not isinstance(body, dict) or not isinstance(body.get("Data"), list):
            raise HistorianError(f'{self.source_name}: raw data answer without a "Data" list for tags {listed}')
        if body.get("ErrorCode") not in (0, None):
            raise HistorianError(
                f"{self.source_name}: Historian ErrorCode {body['ErrorCode']} for tags {listed}: "
                f"{body.get('ErrorMessage')}"
            )
        by_name = {item.get("TagName"): item for item in body["Data"] if isinstance(item, dict)}
        out, failures = {}, []
        for tag in group:
            item = by_name.get(tag.historian_name)
            if item is None:
                failures.append(f"{tag.name} ({tag.historian_name}): missing from the answer")
            elif item.get("ErrorCode") not in (0, None):
                failures.append(f"{tag.name} ({tag.historian_name}): ErrorCode {item['ErrorCode']}")
            elif not isinstance(item.get("Samples"), list) or not all(isinstance(s, dict) for s in item["Samples"]):
                failures.append(f"{tag.name} ({tag.historian_name}): Samples is not a list of samples")
            else:
                out[tag] = item["Samples"]
        if failures:
            raise HistorianError(f"{self.source_name}: Historian returned errors for " + "; ".join(failures))
        return out

    def _frame(
        self, tags: list[ProficyTag], per_tag: dict[str, list[dict]], start: datetime, end: datetime
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        ordered = sorted(tags, key=lambda t: t.name)
        samples = [sample for tag in ordered for sample in per_tag[tag.name]]
        names = [tag.name for tag in ordered for _ in per_tag[tag.name]]
        units = [tag.unit for tag in ordered for _ in per_tag[tag.name]]
        ts = sample_times([s.get("TimeStamp") for s in samples], source=self.source_name)
        values = [sample_value(s.get("Value")) for s in samples]
        qualities = [quality_of(s.get("Quality")) for s in samples]
        quality = [("bad" if v is None else q) for v, (q, _) in zip(values, qualities, strict=True)]
        status = [
            (status if v is not None else f"{status}, non-numeric value {s.get('Value')!r}"[:80])
            for v, (_, status), s in zip(values, qualities, samples, strict=True)
        ]
        frame = pd.DataFrame(
            {
                "ts": ts,
                "tag": pd.Series(names, dtype=object),
                "value": pd.Series([np.nan if v is None else v for v in values], dtype="float64"),
                "unit": pd.Series(units, dtype=object),
                "quality": pd.Series(quality, dtype=object),
                "status": pd.Series(status, dtype=object),
                "source": pd.Series([self.source_name] * len(samples), dtype=object),
            }
        )
        keep, dropped = inside_window(
            frame["ts"], frame["tag"], start, end, source=self.source_name, error=HistorianError
        )
        frame = frame.loc[keep].sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)
        return frame[READINGS_COLUMNS], dropped


class ProficySource(BaseModel):
    """A Proficy Historian instance; the client secret comes from the environment only."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # as the site config models
    base_url: str = Field(
        pattern=r"^https?://", description="REST root, e.g. https://host:8443/historian-rest-api/v1/."
    )
    source_name: str = Field(default="proficy", description="Name recorded in the `source` column.")
    sample_interval_s: float = Field(gt=0, description="Expected spacing of raw samples, for completeness.")
    auth_mode: Literal["none", "basic", "oauth2"] = "oauth2"
    token_url: str | None = Field(
        default=None,
        description="UAA token endpoint, e.g. https://host/uaa/oauth/token (a path: on base_url's host).",
    )
    client_id: str | None = None
    username: str | None = None
    max_count: int = Field(default=5000, gt=0)
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, gt=0, description="Pages per tag and read before it stops.")
    chunk_values: int | None = Field(
        default=None,
        gt=0,
        description="Values one chunked read holds at once (tags in batches, a long day in time slices): what "
        "bounds a run's memory. Unset: the resource's default (250,000).",
    )
    tags: list[HistorianTag] = Field(min_length=1, description="`path` is the Historian tag name (default: name).")

    def tag_ranges(self) -> dict[str, tuple[float, float]]:
        return {tag.name: (tag.min, tag.max) for tag in self.tags}

    def proficy_tags(self) -> list[ProficyTag]:
        return [ProficyTag(tag.name, tag.path or tag.name, tag.unit) for tag in self.tags]


def proficy_from_source(source: ProficySource, **secrets: Any) -> ProficyHistorianResource:
    """The resource for one instance; `secrets` (client_secret, password) are EnvVars."""
    return ProficyHistorianResource(
        base_url=source.base_url,
        source_name=source.source_name,
        auth_mode=source.auth_mode,
        # A path follows base_url's host, so an instance moved by `endpoint_env` keeps its token endpoint.
        token_url=urljoin(source.base_url, source.token_url) if source.token_url else None,
        client_id=source.client_id,
        username=source.username,
        max_count=source.max_count,
        max_pages=source.max_pages,
        **({"chunk_values": source.chunk_values} if source.chunk_values else {}),
        **{key: value for key, value in secrets.items() if value is not None},
    )
