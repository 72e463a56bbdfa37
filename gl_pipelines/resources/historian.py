"""PI Web API extraction: WebId lookup, paged streamset reads, interpolated values and summaries.

The resource reads [start, end) for many tags and returns the canonical long frame; it knows nothing
about partitions or the warehouse. PI's recorded call is inclusive at both ends and cuts each stream
at maxCount, so the reader pages from the last timestamp it holds and drops what it already has, and stops
(`guard_paging`) a server that would keep it paging. `read_recorded_chunks` reads a window in chunks of
`chunk_values` values (`HistorianChunks`, shared with Proficy) so a plant day is never one frame.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr

from gl_pipelines.config import HistorianSource
from gl_pipelines.reporting.units import UnitConfigError, parse_unit
from gl_pipelines.resources.chunks import chunk_plan
from gl_pipelines.resources.http import HttpClient, HttpSourceError, HttpSourceResource
from gl_pipelines.resources.window import inside_window

READINGS_COLUMNS = ["ts", "tag", "value", "unit", "quality", "status", "source"]
SUMMARY_COLUMNS = ["tag", "summary", "value", "unit", "start", "end", "source"]
SUMMARY_TYPES = ("Average", "Minimum", "Maximum", "Total")
_FLAG_STATUS = [
    ",".join(f for bit, f in ((1, "Questionable"), (2, "Substituted"), (4, "Annotated")) if code & bit)
    for code in range(8)
]
RESOURCE_VERSION = f"gl-pipelines-historian/1 httpx/{version('httpx')}"
HISTORIAN_CHUNK_VALUES = 250_000
"""Default `chunk_values` of the HTTP historians (PI, Proficy): a value costs ~900 bytes while its JSON is parsed
(bench/historian_memory.py), several times an OPC UA value, so their chunks are a quarter of OPC UA's."""
DEFAULT_MAX_PAGES = 10_000
"""Pages per tag and read before a server that keeps paging is stopped (a day of 1 s values at maxCount 1000
is 87 pages)."""


class HistorianError(RuntimeError):
    """The historian answered, but not with usable data for the named tags."""


@dataclass(frozen=True)
class PiTag:
    """A tag to read: the site name stored in the warehouse, its PI path and engineering unit."""

    name: str
    path: str
    unit: str


@dataclass(frozen=True)
class HistorianRead:
    """Canonical rows plus what an auditor needs to trace them back to the historian."""

    frame: pd.DataFrame = field(repr=False)
    payload_sha256: str
    requests: int
    pages: int
    duration_s: float
    stats: dict[str, int]
    dropped_outside_window: dict[str, int] = field(default_factory=dict)
    """Per tag, values PI sent outside [start, end) (its end is inclusive), not stored."""


def quality_and_status(item: dict[str, Any]) -> tuple[float | None, str, str]:
    """One PI timed value -> (numeric value or None, quality, status).

    A digital state (a dict Value) is never a number: value None, the state name kept as status;
    system states ("Shutdown", "I/O Timeout", ...) and anything with Good=false are bad.
    Questionable or Substituted -> uncertain; Annotated alone stays good (a note, not a doubt).
    """
    raw = item.get("Value")
    flags = [name for name in ("Questionable", "Substituted", "Annotated") if item.get(name)]
    if isinstance(raw, dict):
        state = str(raw.get("Name", "?"))
        if raw.get("IsSystem", False) or not item.get("Good", True):
            return None, "bad", state
        doubtful = item.get("Questionable") or item.get("Substituted")
        return None, "uncertain" if doubtful else "good", state
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None, "bad", "non-numeric value" if raw is not None else "no value"
    if not item.get("Good", True):
        quality = "bad"
    elif item.get("Questionable") or item.get("Substituted"):
        quality = "uncertain"
    else:
        quality = "good"
    return float(raw), quality, ",".join(flags)


def guard_paging(
    source: str,
    tag: str,
    page: int,
    since: pd.Timestamp,
    first: pd.Timestamp,
    reached: pd.Timestamp,
    end: datetime,
    max_pages: int,
) -> None:
    """Stop a paged read that would never end: a full page must start at or after the time asked (one that
    starts before it is a page sent again), end within the window, and the tag must finish within `max_pages`
    pages. A page entirely at the time asked is legitimate (many events at one timestamp): the callers' own
    count of events already held ends that. The error names the instance, the tag, the page and the times."""
    where = f"{source}: tag {tag}, page {page} (asked from {since.isoformat()}, reached {reached.isoformat()})"
    if first < since or reached < since:
        raise HistorianError(
            f"{where}: the page made no progress, it starts at {first.isoformat()}, before the time asked (the "
            "server repeats a page instead of continuing); stopped paging"
        )
    if reached > pd.Timestamp(end):
        raise HistorianError(f"{where}: past the window end {pd.Timestamp(end).isoformat()}; stopped paging")
    if page >= max_pages:
        raise HistorianError(f"{where}: still paging after max_pages={max_pages} pages; stopped paging")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split_window(start: datetime, end: datetime, max_span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive pieces no longer than max_span."""
    pieces, cursor = [], start
    while cursor < end:
        nxt = min(cursor + max_span, end)
        pieces.append((cursor, nxt))
        cursor = nxt
    return pieces


ChunkRead = Callable[[HttpClient, Sequence[Any], datetime, datetime], Awaitable[tuple[pd.DataFrame, str, int, dict]]]
"""(client, tags, start, end) -> (canonical frame, digest, pages, dropped per tag): one chunk of a read."""


class HistorianChunks:
    """A chunked historian read (PI, Proficy): iterating it yields one canonical frame per planned chunk, read
    through one HTTP client (one token, one connection pool), the next only when asked for; afterwards it holds
    the provenance of the whole read."""

    def __init__(
        self,
        resource: HttpSourceResource,
        read: ChunkRead,
        tags: Sequence[Any],
        window: tuple[datetime, datetime],
        plan: list[tuple[Sequence[Any], datetime, datetime]],
    ) -> None:
        self.resource, self.read, self.tags, self.window, self.plan = resource, read, tags, window, plan
        self.requests = self.pages = self.retries = 0
        self.duration_s = 0.0
        self.dropped_outside_window: dict[str, int] = {}
        self._digests: dict[str, Any] = {}

    def __iter__(self) -> Iterator[pd.DataFrame]:
        with asyncio.Runner() as runner:
            session = self.resource.http_client()
            client = runner.run(session.__aenter__())
            try:
                for tags, start, end in self.plan:
                    began = time.perf_counter()
                    frame, _, pages, dropped = runner.run(self.read(client, tags, start, end))
                    # The chunk's JSON items stay reachable from reference cycles (the asyncio tasks that
                    # parsed them) until a full collection, which a long read rarely triggers: without
                    # this, peak memory grew with the day (bench/historian_memory.py), not with the chunk.
                    gc.collect()
                    self.pages += pages
                    for tag, count in dropped.items():
                        self.dropped_outside_window[tag] = self.dropped_outside_window.get(tag, 0) + count
                    self._update_digest(frame)
                    self.duration_s += time.perf_counter() - began
                    yield frame
            finally:
                self.requests, self.retries = client.stats["requests"], client.stats.get("retries", 0)
                runner.run(session.__aexit__(None, None, None))

    def _update_digest(self, frame: pd.DataFrame) -> None:
        # Per tag, its rows in time order: the digest is the same for any batching or time slicing of a read.
        for tag, rows in frame.groupby("tag", sort=False):
            digest = self._digests.setdefault(str(tag), hashlib.sha256())
            digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())

    @property
    def payload_sha256(self) -> str:
        """SHA-256 over the tags in name order, each with the digest of its canonical rows."""
        digest = hashlib.sha256()
        for tag in sorted(self._digests):
            digest.update(tag.encode())
            digest.update(self._digests[tag].digest())
        return digest.hexdigest()


class HistorianResource(HttpSourceResource):
    """An AVEVA/OSIsoft PI Web API: base_url is the service root, e.g. https://pi.example/piwebapi."""

    source_name: str = Field(default="pi", description="Recorded in each row's `source` column and in errors.")
    data_server: str = Field(default="DEMO-PI", description="PI Data Archive name used in \\\\SERVER\\tag paths.")
    max_count: int = Field(default=10_000, gt=0, description="maxCount per stream per call; at most the server's.")
    tags_per_request: int = Field(default=100, gt=0, description="WebIds per streamset call (keeps URLs short).")
    window_hours: float = Field(default=24.0, gt=0, description="Longer windows are split into pieces this long.")
    chunk_values: int = Field(
        default=HISTORIAN_CHUNK_VALUES,
        gt=0,
        description="Values a chunked read holds at once (points read in batches, a long window in time slices): "
        "what bounds a run's memory.",
    )
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, gt=0, description="Pages per point and read before it stops.")

    _web_ids: dict[str, str] = PrivateAttr(default_factory=dict)

    def point_path(self, tag_name: str) -> str:
        return f"\\\\{self.data_server}\\{tag_name}"

    # -- recorded -----------------------------------------------------------------------------

    def read_recorded(self, tags: Sequence[PiTag], start: datetime, end: datetime) -> HistorianRead:
        """Every recorded value of `tags` in [start, end), flags mapped to quality, as the canonical frame."""
        _require_aware(start, end)
        return asyncio.run(self._with_client(self._read_recorded, tags, start, end))

    def read_recorded_chunks(
        self, tags: Sequence[PiTag], start: datetime, end: datetime, *, sample_interval_s: float
    ) -> HistorianChunks:
        """The rows of `read_recorded`, as frames of about `chunk_values` values each (planned from the points'
        `sample_interval_s`); iterate it once, then read its provenance."""
        _require_aware(start, end)
        plan = chunk_plan(list(tags), start, end, sample_interval_s, self.chunk_values)
        return HistorianChunks(self, self._read_recorded, tags, (start, end), plan)

    async def _read_recorded(
        self, client: HttpClient, tags: Sequence[PiTag], start: datetime, end: datetime
    ) -> tuple[pd.DataFrame, str, int, dict[str, int]]:
        web_ids = await self._resolve(client, tags)
        batches = [tags[i : i + self.tags_per_request] for i in range(0, len(tags), self.tags_per_request)]
        windows = split_window(start, end, timedelta(hours=self.window_hours))
        results = await asyncio.gather(
            *(self._read_batch(client, batch, web_ids, ws, we) for ws, we in windows for batch in batches)
        )
        per_tag: dict[str, list[dict]] = defaultdict(list)
        stamps: dict[str, list[np.ndarray]] = defaultdict(list)
        dropped: dict[str, int] = defaultdict(int)
        pages = 0
        for collected, times, made, outside in results:
            pages += made
            for name, values in collected.items():
                per_tag[name].extend(values)
                stamps[name].append(times[name])
            for name, count in outside.items():
                dropped[name] += count
        frame, digest = self._frame(tags, per_tag, stamps)
        return frame, digest, pages, dict(sorted(dropped.items()))

    async def _read_batch(
        self, client: HttpClient, batch: Sequence[PiTag], web_ids: dict[str, str], start: datetime, end: datetime
    ) -> tuple[dict[str, list[dict]], dict[str, np.ndarray], int, dict[str, int]]:
        """One tag batch over one window, paging each stream that came back full; the values in
        [start, end) per tag and their parsed timestamps, the pages read, and per tag the count of
        values outside dropped."""
        collected: dict[str, list[dict]] = {t.name: [] for t in batch}
        cursor: dict[str, str] = {t.name: _iso(start) for t in batch}
        repeats: dict[str, int] = dict.fromkeys(cursor, 0)  # held values stamped at the cursor: sent again
        pending = list(batch)
        pages = 0
        tag_pages: dict[str, int] = dict.fromkeys(cursor, 0)
        while pending:
            by_start: dict[str, list[PiTag]] = defaultdict(list)
            for tag in pending:
                by_start[cursor[tag.name]].append(tag)
            bodies = await asyncio.gather(
                *(self._streamset(client, group, web_ids, since, end) for since, group in by_start.items())
            )
            pages += len(bodies)
            pending = []
            for (since, group), body in zip(by_start.items(), bodies, strict=True):
                for tag, values in self._items_by_tag(group, web_ids, body).items():
                    tag_pages[tag.name] += 1
                    skip = 0
                    while skip < min(repeats[tag.name], len(values)) and values[skip]["Timestamp"] == since:
                        skip += 1
                    held = collected[tag.name]
                    held.extend(values[skip:])
                    if len(values) < self.max_count:
                        continue
                    if skip == len(values):
                        raise HistorianError(
                            f"{self.source_name}: tag {tag.name} ({tag.path}) has more than maxCount="
                            f"{self.max_count} events at {since}; raise max_count to page past them"
                        )
                    guard_paging(
                        self.source_name,
                        f"{tag.name} ({tag.path})",
                        tag_pages[tag.name],
                        pd.Timestamp(since),
                        pd.Timestamp(values[0]["Timestamp"]),
                        pd.Timestamp(held[-1]["Timestamp"]),
                        end,
                        self.max_pages,
                    )
                    cursor[tag.name] = held[-1]["Timestamp"]
                    repeats[tag.name] = _count_tail(held, cursor[tag.name])
                    pending.append(tag)
        # PI's end is inclusive, and a server may send more: keep exactly this piece's [start, end).
        kept, times, dropped = self._in_window(collected, start, end)
        return kept, times, pages, dropped

    async def _streamset(
        self, client: HttpClient, group: Sequence[PiTag], web_ids: dict[str, str], since: str, end: datetime
    ) -> Any:
        params = [("webId", web_ids[t.path]) for t in group]
        params += [("startTime", since), ("endTime", _iso(end)), ("maxCount", str(self.max_count))]
        return await client.get_json("streamsets/recorded", params=params)

    def _in_window(
        self, collected: dict[str, list[dict]], start: datetime, end: datetime
    ) -> tuple[dict[str, list[dict]], dict[str, np.ndarray], dict[str, int]]:
        """The shared window rule (resources/window.py) on PI's items, per tag in their order; the kept
        items' timestamps come back parsed (datetime64[ns], UTC) so the frame does not parse them again."""
        names = list(collected)
        bounds = np.cumsum([0, *(len(collected[name]) for name in names)])
        texts = [item["Timestamp"] for values in collected.values() for item in values]
        ts = pd.Series(pd.to_datetime(texts, utc=True, format="ISO8601")).astype("datetime64[ns, UTC]")
        tag_of_row = pd.Series(np.repeat(np.array(names, dtype=object), np.diff(bounds)), dtype=object)
        keep, dropped = inside_window(ts, tag_of_row, start, end, source=self.source_name, error=HistorianError)
        raw = ts.dt.tz_convert(None).to_numpy()
        kept: dict[str, list[dict]] = {}
        times: dict[str, np.ndarray] = {}
        for name, lo, hi in zip(names, bounds[:-1], bounds[1:], strict=True):
            mask = keep[lo:hi]
            whole = mask.all()
            kept[name] = collected[name] if whole else list(itertools.compress(collected[name], mask))
            times[name] = raw[lo:hi] if whole else raw[lo:hi][mask]
        return kept, times, dropped

    def _items_by_tag(self, group: Sequence[PiTag], web_ids: dict[str, str], body: Any) -> dict[PiTag, list[dict]]:
        """Each requested stream's values; per-item Errors and WebException raise, naming the tags."""
        names = ", ".join(t.name for t in group[:5]) + (" ..." if len(group) > 5 else "")
        if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
            raise HistorianError(f"{self.source_name}: streamset response without Items for tags {names}")
        if body.get("WebException"):
            raise HistorianError(
                f"{self.source_name}: PI Web API reported a WebException for tags {names}: "
                f"{_short(body['WebException'])}"
            )
        by_web_id = {item.get("WebId"): item for item in body["Items"] if isinstance(item, dict)}
        out: dict[PiTag, list[dict]] = {}
        failures = []
        for tag in group:
            item = by_web_id.get(web_ids[tag.path])
            if item is None:
                failures.append(f"{tag.name} ({tag.path}): stream missing from the response")
                continue
            # A single-stream body (interpolated) arrives here wrapped as an item: its WebException too.
            if item.get("Errors") or item.get("WebException"):
                failures.append(f"{tag.name} ({tag.path}): {_short(item.get('Errors') or item['WebException'])}")
                continue
            values = item.get("Items")
            if not isinstance(values, list):
                failures.append(f"{tag.name} ({tag.path}): stream without an Items list")
                continue
            bad = next((v for v in values if isinstance(v, dict) and v.get("Errors")), None)
            if bad is not None:
                failures.append(f"{tag.name} ({tag.path}): value at {bad.get('Timestamp')}: {_short(bad['Errors'])}")
                continue
            out[tag] = values
        if failures:
            raise HistorianError(f"{self.source_name}: PI returned errors for " + "; ".join(failures))
        return out

    def _frame(
        self, tags: Sequence[PiTag], per_tag: dict[str, list[dict]], stamps: dict[str, list[np.ndarray]]
    ) -> tuple[pd.DataFrame, str]:
        """Column-wise: plain numeric values take the vectorized path, anything else goes through
        quality_and_status one by one (digital states are rare). `stamps`: each tag's parsed timestamps."""
        items: list[dict] = []
        names: list[str] = []
        units: list[str] = []
        times: list[np.ndarray] = [np.zeros(0, "datetime64[ns]")]
        for tag in sorted(tags, key=lambda t: t.name):
            values = per_tag.get(tag.name, [])
            self._check_unit(tag, values)
            items.extend(values)
            times.extend(stamps.get(tag.name, []))
            names.extend([tag.name] * len(values))
            units.extend([tag.unit] * len(values))
        n = len(items)
        raw = [item.get("Value") for item in items]
        numeric = np.fromiter((type(x) is float or type(x) is int for x in raw), dtype=bool, count=n)
        value = np.fromiter((x if type(x) is float or type(x) is int else np.nan for x in raw), dtype=float, count=n)
        flags = {
            name: np.fromiter((bool(item.get(name, default)) for item in items), dtype=bool, count=n)
            for name, default in (("Good", True), ("Questionable", False), ("Substituted", False), ("Annotated", False))
        }
        quality = np.where(
            ~flags["Good"], "bad", np.where(flags["Questionable"] | flags["Substituted"], "uncertain", "good")
        ).astype(object)
        code = flags["Questionable"] * 1 + flags["Substituted"] * 2 + flags["Annotated"] * 4
        status = np.array(_FLAG_STATUS, dtype=object)[code]
        for i in np.flatnonzero(~numeric):
            value[i], quality[i], status[i] = quality_and_status(items[i])
        frame = pd.DataFrame(
            {
                "ts": pd.Series(pd.DatetimeIndex(np.concatenate(times)).tz_localize("UTC")),
                "tag": pd.Series(names, dtype=object),
                "value": pd.Series(value, dtype="float64"),
                "unit": pd.Series(units, dtype=object),
                "quality": pd.Series(quality, dtype=object),
                "status": pd.Series(status, dtype=object),
                "source": pd.Series([self.source_name] * n, dtype=object),
            }
        )
        # Canonical: rows ordered by tag then time, hashed column by column with pandas' stable hash.
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return frame[READINGS_COLUMNS], digest.hexdigest()

    def _check_unit(self, tag: PiTag, values: list[dict]) -> None:
        served = next((v.get("UnitsAbbreviation") for v in values if v.get("UnitsAbbreviation")), None)
        if served and not _same_unit(served, tag.unit):
            raise HistorianError(
                f"{self.source_name}: tag {tag.name} ({tag.path}) is recorded in {served!r} "
                f"but configured as {tag.unit!r}; fix the site config's unit"
            )

    # -- interpolated and summaries -----------------------------------------------------------

    def read_interpolated(
        self, tags: Sequence[PiTag], start: datetime, end: datetime, interval: timedelta
    ) -> HistorianRead:
        """Values at start, start+interval, ... < end (PI interpolates), as the canonical frame."""
        _require_aware(start, end)
        if interval <= timedelta(0):
            raise ValueError(f"{self.source_name}: interval must be positive, got {interval}")
        return asyncio.run(self._with_client(self._read_interpolated, tags, start, end, interval))

    async def _read_interpolated(
        self, client: HttpClient, tags: Sequence[PiTag], start: datetime, end: datetime, interval: timedelta
    ) -> tuple[pd.DataFrame, str, int, dict[str, int]]:
        web_ids = await self._resolve(client, tags)
        params = {"startTime": _iso(start), "endTime": _iso(end), "interval": f"{interval.total_seconds():g}s"}
        bodies = await asyncio.gather(
            *(client.get_json(f"streams/{web_ids[t.path]}/interpolated", params=params) for t in tags)
        )
        per_tag = {}
        for tag, body in zip(tags, bodies, strict=True):
            per_tag[tag.name] = self._items_by_tag([tag], web_ids, {"Items": [{**body, "WebId": web_ids[tag.path]}]})[
                tag
            ]
        per_tag, times, dropped = self._in_window(per_tag, start, end)
        frame, digest = self._frame(tags, per_tag, {name: [stamps] for name, stamps in times.items()})
        return frame, digest, len(tags), dropped

    def read_summaries(
        self, tags: Sequence[PiTag], start: datetime, end: datetime, types: Sequence[str] = SUMMARY_TYPES
    ) -> pd.DataFrame:
        """One row per (tag, summary type) over [start, end): PI's own Average/Minimum/Maximum/Total."""
        _require_aware(start, end)
        utc_window = (start.astimezone(UTC), end.astimezone(UTC))

        async def read(client: HttpClient) -> tuple[pd.DataFrame, str, int, dict[str, int]]:
            web_ids = await self._resolve(client, tags)
            params = [("startTime", _iso(start)), ("endTime", _iso(end))] + [("summaryType", t) for t in types]
            bodies = await asyncio.gather(
                *(client.get_json(f"streams/{web_ids[t.path]}/summary", params=params) for t in tags)
            )
            rows = []
            for tag, body in zip(tags, bodies, strict=True):
                if body.get("WebException") or body.get("Errors"):
                    raise HistorianError(
                        f"{self.source_name}: summary of {tag.name} ({tag.path}) failed: {_short(body)}"
                    )
                for item in body.get("Items", []):
                    value, quality, status = quality_and_status(item.get("Value") or {})
                    if quality == "bad":
                        raise HistorianError(
                            f"{self.source_name}: summary {item.get('Type')} of {tag.name} ({tag.path}) is bad: "
                            f"{status or _short(item)}"
                        )
                    rows.append((tag.name, item.get("Type"), value, tag.unit, *utc_window, self.source_name))
            return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), "", len(tags), {}

        return asyncio.run(self._with_client(lambda client: read(client))).frame

    # -- plumbing -----------------------------------------------------------------------------

    async def _with_client(self, func: Any, *args: Any) -> HistorianRead:
        began = time.perf_counter()
        async with self.http_client() as client:
            frame, digest, pages, dropped = await func(client, *args)
        stats = dict(client.stats)
        return HistorianRead(frame, digest, stats["requests"], pages, time.perf_counter() - began, stats, dropped)

    async def _resolve(self, client: HttpClient, tags: Sequence[PiTag]) -> dict[str, str]:
        """PI path -> WebId, looked up once per resource instance (one run)."""
        missing = sorted({t.path for t in tags} - self._web_ids.keys())

        async def lookup(path: str) -> tuple[str, str]:
            try:
                body = await client.get_json("points", params={"path": path})
            except HttpSourceError as exc:
                if exc.status == 404:
                    tag = next(t.name for t in tags if t.path == path)
                    raise HistorianError(
                        f"{self.source_name}: tag {tag}: PI point {path!r} not found on {self.safe_endpoint}"
                    ) from None
                raise
            web_id = body.get("WebId") if isinstance(body, dict) else None
            if not web_id:
                raise HistorianError(f"{self.source_name}: PI point {path!r}: lookup returned no WebId")
            return path, web_id

        self._web_ids.update(await asyncio.gather(*(lookup(p) for p in missing)))
        return dict(self._web_ids)


def _count_tail(values: list[dict], timestamp: str) -> int:
    count = 0
    for item in reversed(values):
        if item["Timestamp"] != timestamp:
            break
        count += 1
    return count


def _same_unit(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return parse_unit(a) == parse_unit(b)
    except UnitConfigError:
        return False


def _short(obj: Any, limit: int = 300) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


def _require_aware(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware (UTC)")


def historian_from_source(source: HistorianSource, **secrets: Any) -> HistorianResource:
    """The resource for a site's historian config; `secrets` (password, token, client_secret) are EnvVars."""
    return HistorianResource(
        base_url=source.base_url,
        source_name=source.source_name,
        data_server=source.data_server,
        auth_mode=source.auth_mode,
        username=source.username,
        token_url=source.token_url,
        client_id=source.client_id,
        scope=source.scope,
        verify_tls=source.verify_tls,
        ca_bundle=source.ca_bundle,
        max_count=source.max_count,
        tags_per_request=source.tags_per_request,
        window_hours=source.window_hours,
        **({"chunk_values": source.chunk_values} if source.chunk_values else {}),
        max_in_flight=source.max_in_flight,
        requests_per_second=source.requests_per_second,
        **{key: value for key, value in secrets.items() if value is not None},
    )


def pi_tags(source: HistorianSource) -> list[PiTag]:
    return [PiTag(tag.name, source.path_of(tag), tag.unit) for tag in source.tags]
