"""A PI-Web-API-compatible demo historian serving the plant model (same tag, same time, same value as OPC UA).

Endpoints (PI Web API dialect, JSON shapes as in AVEVA's reference):
  GET  /piwebapi                                   links (health probe)
  GET  /piwebapi/points?path=\\\\SERVER\\tag           WebId lookup; 404 {"Errors": [...]} for an unknown path
  GET  /piwebapi/streamsets/recorded?webId=..&webId=..&startTime=&endTime=&maxCount=
  GET  /piwebapi/streams/{webId}/recorded | /interpolated?interval= | /summary?summaryType=..
  POST /piwebapi/token                             OAuth2 client credentials (only when oauth_clients is set)

Recorded values follow PI's `boundaryType=Inside`: both ends inclusive, at most `maxCount` values per stream,
oldest first, silently cut at maxCount (the client pages). `PiFaults` injects what real servers do.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gl_demo_plant.plant_model import DEFAULT_SEED, SAMPLE_INTERVAL_S, TagModel, catalogue

DATA_SERVER = "DEMO-PI"
DEFAULT_SERVER_MAX_COUNT = 150_000
SYSTEM_STATES = {"Shutdown": 254, "I/O Timeout": 246, "Bad Input": 307, "Comm Fail": 313, "Pt Created": 251}
FLAG_MARKS = {"Questionable", "Substituted", "Annotated"}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_INTERVAL_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_UNIT_S = {"/s": 1, "/min": 60, "/h": 3600, "/d": 86400}


@dataclass(frozen=True)
class Mark:
    """Over [start, end) tag `tag` is served with a flag (Questionable/Substituted/Annotated) or a system state."""

    tag: str
    start: datetime
    end: datetime
    kind: str


@dataclass
class PiFaults:
    """Faults a test switches on while the server runs. Counters count down once per affected request."""

    statuses: list[int] = field(default_factory=list)
    """HTTP statuses for the next requests, in order (e.g. [429, 503]); one is consumed per request."""
    retry_after: str | None = None
    """Retry-After header sent with the statuses above."""
    latency_s: float = 0.0
    """Added to every data request (not to WebId lookups), as a PI Data Archive takes time per archive read."""
    malformed_json: int = 0
    """The next n data requests get a truncated JSON body."""
    wrong_content_type: int = 0
    """The next n data requests get an HTML page with status 200 (a proxy's login page)."""
    web_exception: int = 0
    """The next n data requests get HTTP 200 with a non-null WebException and partial items."""
    item_errors: dict[str, str] = field(default_factory=dict)
    """Tag name -> message served as that stream's per-item `Errors` (HTTP 200 overall)."""
    marks: list[Mark] = field(default_factory=list)
    """Flags and system digital states in given windows."""
    duplicate_at: dict[str, datetime] = field(default_factory=dict)
    """Tag name -> a timestamp that carries two recorded events (PI allows it); tests the paging boundary."""
    outside_window: dict[str, float] = field(default_factory=dict)
    """Tag name -> seconds: each recorded response for it also carries an event that many seconds before
    startTime (first) and one that many seconds after endTime in the middle of the stream."""
    repeat_first_page: bool = False
    """streamsets/recorded answers from the first startTime its set of WebIds asked since this was switched on,
    whatever startTime it asks: a server that ignores the continuation start and sends its first page again."""
    first_starts: dict[tuple[str, ...], float] = field(default_factory=dict)
    """What repeat_first_page repeats: the first startTime (epoch s) per set of WebIds."""


@dataclass
class PiStats:
    requests: int = 0
    streamset_requests: int = 0
    webids_per_streamset: list[int] = field(default_factory=list)
    values_served: int = 0
    token_requests: int = 0


def web_id_of(name: str) -> str:
    """A stable WebId for a point ("P1DP" + url-safe base64 of the tag name; real ones encode GUIDs)."""
    return "P1DP" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _name_of(web_id: str) -> str | None:
    if not web_id.startswith("P1DP"):
        return None
    body = web_id[4:]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _parse_time(text: str | None, name: str) -> float:
    if not text:
        raise ValueError(f"{name} is required")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Cannot parse {name} '{text}'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _time_range(request: Request) -> tuple[float, float]:
    """startTime and endTime of a call, as epoch seconds (both required)."""
    params = request.query_params
    return _parse_time(params.get("startTime"), "startTime"), _parse_time(params.get("endTime"), "endTime")


def _iso(epoch_s: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(epoch_s.astype("datetime64[s]"), unit="s")]


def _errors(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"Errors": list(messages)}, status_code=status)


class DemoPiWebApi:
    """The demo plant's historian: every tag of the plant model, addressable as \\\\DEMO-PI\\<tag>."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        n_synthetic: int = 0,
        sample_interval_s: int = SAMPLE_INTERVAL_S,
        max_count: int = DEFAULT_SERVER_MAX_COUNT,
        data_server: str = DATA_SERVER,
        oauth_clients: dict[str, str] | None = None,
        token_lifetime_s: int = 3600,
    ) -> None:
        self.seed = seed
        self.sample_interval_s = sample_interval_s
        self.max_count = max_count
        self.data_server = data_server
        self.tags: dict[str, TagModel] = {t.name: t for t in catalogue(n_synthetic).values()}
        self.faults = PiFaults()
        self.stats = PiStats()
        self.oauth_clients = oauth_clients or {}
        self.token_lifetime_s = token_lifetime_s
        self._tokens: dict[str, float] = {}
        self.app = Starlette(
            routes=[
                Route("/piwebapi", self._home),
                Route("/piwebapi/", self._home),
                Route("/piwebapi/points", self._points),
                Route("/piwebapi/streamsets/recorded", self._streamset_recorded),
                Route("/piwebapi/streams/{web_id}/recorded", self._stream_recorded),
                Route("/piwebapi/streams/{web_id}/interpolated", self._stream_interpolated),
                Route("/piwebapi/streams/{web_id}/summary", self._stream_summary),
                Route("/piwebapi/token", self._token, methods=["POST"]),
            ]
        )

    def path_of(self, name: str) -> str:
        return f"\\\\{self.data_server}\\{name}"

    # -- the process, as recorded -------------------------------------------------------------

    def recorded(self, name: str, start_s: float, end_s: float, max_count: int) -> list[dict]:
        """PI recorded events of one tag in [start_s, end_s] (inclusive), oldest first, at most max_count."""
        tag = self.tags[name]
        step = self.sample_interval_s
        first = -(-int(np.ceil(start_s)) // step) * step
        times = np.arange(first, int(np.floor(end_s)) + 1, step, dtype=np.int64)
        dup = self.faults.duplicate_at.get(name)
        if dup is not None and start_s <= dup.timestamp() <= end_s:
            at = int(dup.timestamp())
            times = np.sort(np.append(times, at))
        times = times[:max_count]
        values = tag.values(times, self.seed)
        questionable = tag.status_codes(times, self.seed) != 0
        unit = tag.unit
        stamps = _iso(times)
        items = [
            {
                "Timestamp": ts,
                "Value": float(v),
                "UnitsAbbreviation": unit,
                "Good": True,
                "Questionable": bool(q),
                "Substituted": False,
                "Annotated": False,
            }
            for ts, v, q in zip(stamps, values.tolist(), questionable.tolist(), strict=True)
        ]
        for mark in self.faults.marks:
            if mark.tag != name:
                continue
            inside = np.nonzero((times >= mark.start.timestamp()) & (times < mark.end.timestamp()))[0]
            for i in inside:
                item = items[i]
                if mark.kind in FLAG_MARKS:
                    item[mark.kind] = True
                else:
                    state = SYSTEM_STATES.get(mark.kind, 0)
                    item.update(Value={"Name": mark.kind, "Value": state, "IsSystem": True}, Good=False)
        if name in self.faults.outside_window:
            offset = self.faults.outside_window[name]
            stray = [
                dict(items[0] if items else {"Value": 1.0, "Good": True}, Timestamp=_iso(np.array([t]))[0])
                for t in (int(start_s - offset), int(end_s + offset))
            ]
            items = [stray[0], *items[: len(items) // 2], stray[1], *items[len(items) // 2 :]]
        self.stats.values_served += len(items)
        return items

    # -- HTTP ---------------------------------------------------------------------------------

    async def _home(self, request: Request) -> Response:
        if (denied := self._authorize(request)) is not None:
            return denied
        base = str(request.base_url).rstrip("/") + "/piwebapi"
        return JSONResponse({"Links": {"Self": base, "DataServers": base + "/dataservers"}})

    async def _points(self, request: Request) -> Response:
        if (early := await self._before(request, data=False)) is not None:
            return early
        path = request.query_params.get("path", "")
        prefix = f"\\\\{self.data_server}\\"
        name = path[len(prefix) :] if path.lower().startswith(prefix.lower()) else None
        if name is None or name not in self.tags:
            return _errors(404, f"PI Point not found '{path}'.")
        tag = self.tags[name]
        return JSONResponse(
            {
                "WebId": web_id_of(name),
                "Id": list(self.tags).index(name) + 1,
                "Name": name,
                "Path": self.path_of(name),
                "PointClass": "classic",
                "PointType": "Float32",
                "EngineeringUnits": tag.unit,
                "Step": False,
                "Future": False,
            }
        )

    async def _streamset_recorded(self, request: Request) -> Response:
        if (early := await self._before(request)) is not None:
            return early
        self.stats.streamset_requests += 1
        web_ids = request.query_params.getlist("webId")
        self.stats.webids_per_streamset.append(len(web_ids))
        if not web_ids:
            return _errors(400, "At least one webId is required.")
        try:
            start_s, end_s, max_count = self._range_args(request)
        except ValueError as exc:
            return _errors(400, str(exc))
        if self.faults.repeat_first_page:
            start_s = self.faults.first_starts.setdefault(tuple(web_ids), start_s)
        items = []
        for web_id in web_ids:
            name = _name_of(web_id)
            if name is None or name not in self.tags:
                items.append({"WebId": web_id, "Errors": [f"Unknown or invalid WebId '{web_id}'."], "Items": []})
                continue
            if name in self.faults.item_errors:
                message = self.faults.item_errors[name]
                items.append({"WebId": web_id, "Name": name, "Errors": [message], "Items": []})
                continue
            items.append(self._stream_body(name, start_s, end_s, max_count))
        return self._data_response({"Links": {}, "Items": items})

    async def _stream_call(self, request: Request, parse) -> tuple[str, tuple] | Response:
        """The start every single-stream call shares: faults and authorization, the stream's WebId,
        then `parse(request)` of its query (a ValueError answers 400). A Response is the answer to
        give instead of the call's own."""
        if (early := await self._before(request)) is not None:
            return early
        name, error = self._stream_name(request)
        if error is not None:
            return error
        try:
            return name, parse(request)
        except ValueError as exc:
            return _errors(400, str(exc))

    async def _stream_recorded(self, request: Request) -> Response:
        call = await self._stream_call(request, self._range_args)
        if isinstance(call, Response):
            return call
        name, (start_s, end_s, max_count) = call
        body = self._stream_body(name, start_s, end_s, max_count)
        return self._data_response(
            {"Links": {}, "Items": body["Items"], "UnitsAbbreviation": body["UnitsAbbreviation"]}
        )

    async def _stream_interpolated(self, request: Request) -> Response:
        call = await self._stream_call(
            request, lambda r: (*_time_range(r), _parse_interval(r.query_params.get("interval", "1h")))
        )
        if isinstance(call, Response):
            return call
        name, (start_s, end_s, interval) = call
        times = np.arange(start_s, end_s + 1e-9, interval)
        step = self.sample_interval_s
        grid = np.arange(np.floor(start_s / step) * step, np.ceil(end_s / step) * step + step, step)
        tag = self.tags[name]
        values = np.interp(times, grid, tag.values(grid.astype(np.int64), self.seed))
        items = [
            {
                "Timestamp": ts,
                "Value": float(v),
                "UnitsAbbreviation": tag.unit,
                "Good": True,
                "Questionable": False,
                "Substituted": False,
                "Annotated": False,
            }
            for ts, v in zip(_iso(times.astype(np.int64)), values.tolist(), strict=True)
        ]
        return self._data_response({"Links": {}, "Items": items, "UnitsAbbreviation": tag.unit})

    async def _stream_summary(self, request: Request) -> Response:
        call = await self._stream_call(request, _time_range)
        if isinstance(call, Response):
            return call
        name, (start_s, end_s) = call
        types = request.query_params.getlist("summaryType") or ["Total"]
        tag = self.tags[name]
        step = self.sample_interval_s
        times = np.arange(-(-int(np.ceil(start_s)) // step) * step, end_s, step, dtype=np.int64)
        values = tag.values(times, self.seed)
        stamp = _iso(np.array([int(start_s)]))[0]
        rate_s = next((s for suffix, s in _RATE_UNIT_S.items() if tag.unit.endswith(suffix)), 86400)
        results = {
            "Average": float(values.mean()) if len(values) else None,
            "Minimum": float(values.min()) if len(values) else None,
            "Maximum": float(values.max()) if len(values) else None,
            # Samples hold until the next one, so the time-weighted total is mean rate x duration in rate units.
            "Total": float(values.mean() * (end_s - start_s) / rate_s) if len(values) else None,
            "Count": float(len(values)),
        }
        items = []
        for kind in types:
            if kind not in results:
                return _errors(400, f"Unsupported summaryType '{kind}'.")
            items.append(
                {
                    "Type": kind,
                    "Value": {
                        "Timestamp": stamp,
                        "Value": results[kind],
                        "UnitsAbbreviation": "" if kind == "Count" else tag.unit,
                        "Good": results[kind] is not None,
                        "Questionable": False,
                        "Substituted": False,
                        "Annotated": False,
                    },
                }
            )
        return self._data_response({"Links": {}, "Items": items})

    async def _token(self, request: Request) -> Response:
        self.stats.token_requests += 1
        form = parse_qs((await request.body()).decode())
        client_id, client_secret = _basic_credentials(request.headers.get("authorization", ""))
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not client_id or self.oauth_clients.get(client_id) != client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime_s
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s})

    # -- helpers ------------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Forget every issued token, as a restarted identity server does."""
        self._tokens.clear()

    def _authorize(self, request: Request) -> Response | None:
        if not self.oauth_clients:
            return None
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self._tokens.get(token)
        if expires is None or time.monotonic() >= expires:
            return _errors(401, "Authorization has been denied for this request.")
        return None

    async def _before(self, request: Request, data: bool = True) -> Response | None:
        self.stats.requests += 1
        if (denied := self._authorize(request)) is not None:
            return denied
        faults = self.faults
        if faults.latency_s and data:
            await asyncio.sleep(faults.latency_s)
        if faults.statuses:
            status = faults.statuses.pop(0)
            headers = {"Retry-After": faults.retry_after} if faults.retry_after else None
            return JSONResponse({"Errors": [f"Injected HTTP {status}."]}, status_code=status, headers=headers)
        if faults.wrong_content_type:
            faults.wrong_content_type -= 1
            return Response("<html><body>Please sign in</body></html>", media_type="text/html")
        return None

    def _data_response(self, body: dict) -> Response:
        faults = self.faults
        if faults.malformed_json:
            faults.malformed_json -= 1
            text = json.dumps(body)
            return Response(text[: max(1, len(text) // 2)], media_type="application/json")
        if faults.web_exception:
            faults.web_exception -= 1
            body = {**body, "WebException": {"StatusCode": 502, "Errors": ["Injected: the data archive stopped."]}}
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json; charset=utf-8")

    def _stream_name(self, request: Request) -> tuple[str, Response | None]:
        web_id = request.path_params["web_id"]
        name = _name_of(web_id)
        if name is None or name not in self.tags:
            return "", _errors(404, f"Unknown or invalid WebId '{web_id}'.")
        return name, None

    def _range_args(self, request: Request) -> tuple[float, float, int]:
        start_s, end_s = _time_range(request)
        try:
            max_count = int(request.query_params.get("maxCount", "1000"))
        except ValueError:
            raise ValueError("maxCount must be an integer") from None
        if not 0 < max_count <= self.max_count:
            raise ValueError(f"maxCount {max_count} exceeds the server limit of {self.max_count} per call.")
        return start_s, end_s, max_count

    def _stream_body(self, name: str, start_s: float, end_s: float, max_count: int) -> dict:
        return {
            "WebId": web_id_of(name),
            "Name": name,
            "Path": self.path_of(name),
            "Links": {},
            "Items": self.recorded(name, start_s, end_s, max_count),
            "UnitsAbbreviation": self.tags[name].unit,
        }


def _parse_interval(text: str) -> float:
    match = _INTERVAL.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"Cannot parse interval '{text}'.")
    return float(match.group(1)) * _INTERVAL_S[match.group(2)]


def _basic_credentials(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


class PiWebApiServer:
    """The demo historian under uvicorn on the caller's event loop (the demo plant's own loop)."""

    def __init__(self, api: DemoPiWebApi, host: str, port: int) -> None:
        import uvicorn

        self.api = api
        self.host = host
        config = uvicorn.Config(api.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/piwebapi"

    async def start(self) -> None:
        # Bind here: a taken port is then a plain OSError, not uvicorn's sys.exit inside a task.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"PI Web API demo on {self.host}:{self.port} stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


async def start_pi_web_api(host: str, port: int, **kwargs: object) -> PiWebApiServer:
    """Start the demo historian (port 0 = any free port) and return it running."""
    server = PiWebApiServer(DemoPiWebApi(**kwargs), host, port)
    await server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve the historian alone (bench scripts run it in its own process)."""
    parser = argparse.ArgumentParser(prog="python -m gl_demo_plant.pi_web_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5450)
    parser.add_argument("--synthetic-tags", type=int, default=0)
    parser.add_argument("--sample-interval-s", type=int, default=SAMPLE_INTERVAL_S)
    parser.add_argument("--latency-s", type=float, default=0.0, help="added to every data request")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = await start_pi_web_api(
            args.host,
            args.port,
            seed=args.seed,
            n_synthetic=args.synthetic_tags,
            sample_interval_s=args.sample_interval_s,
        )
        server.api.faults.latency_s = args.latency_s
        print(f"pi web api ready on {server.url} ({len(server.api.tags)} tags)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
