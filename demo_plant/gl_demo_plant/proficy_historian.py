"""A GE Proficy Historian REST demo service serving the plant model (same tag, same time, same value as OPC UA and PI).

Shaped from the Historian REST API reference (gevernova.com/software/documentation/historian/version81/
r_sampled_data_api.html, the "Common API Parameters" and "DataSample Parameter" pages):
  POST /uaa/oauth/token                          client credentials as HTTP Basic (the Historian's UAA); answers
                                                 {"access_token", "token_type": "bearer", "expires_in", "scope", "jti"}
  GET  /historian-rest-api/v1/tags?nameMask=&maxNumber=   tag names (the resource's health probe)
  GET  /historian-rest-api/v1/datapoints/raw/<names>/<start>/<end>/<direction>/<count>
       names separated by ';', times ISO 8601 UTC; at most `count` samples per tag from the start, end included:
       {"ErrorCode", "ErrorMessage", "Data": [{"TagName", "ErrorCode", "DataType", "Samples": [{"TimeStamp",
       "Value" (a string), "Quality" (0 Bad, 1 Uncertain, 2 NA, 3 Good)}]}]}; an unknown tag has ErrorCode -8.

A request without a live token gets 401 with `WWW-Authenticate: Bearer error="invalid_token"`, as UAA does.
`ProficyFaults` injects what real servers do. Tests serve their own samples by overriding `samples`.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gl_demo_plant.plant_model import DEFAULT_SEED, SAMPLE_INTERVAL_S, TagModel, catalogue

ROOT = "/historian-rest-api/v1/"
TOKEN_PATH = "/uaa/oauth/token"
DEMO_CLIENT_ID = "gl-demo-proficy"
DEMO_CLIENT_SECRET = "demo-proficy-not-a-secret"  # the demo's own client, published like the SAP demo's
TAG_NOT_FOUND = -8
GOOD, UNCERTAIN = 3, 1


@dataclass
class ProficyFaults:
    """Faults a test switches on while the service runs; each holds until switched off, unless it says otherwise."""

    html_login_page: bool = False
    """Data calls get the Historian's HTML login page with status 200 (an expired web session)."""
    error: tuple[int, str] | None = None
    """(ErrorCode, ErrorMessage) answered by data calls, with no data."""
    malformed_samples: bool = False
    """The first tag of each data answer carries `"Samples": "none"`."""
    expire_next_token: bool = False
    """The next data call finds every token revoked (once): a token that expired between issue and use."""
    repeat_first_page: bool = False
    """Data calls answer from the first start time asked for the same tags since it was switched on, whatever
    start they ask: a server that ignores the continuation start and sends its first page again and again."""
    past_end: bool = False
    """Data calls answer samples up to a day past the end time asked: a server that ignores the end."""


@dataclass
class ProficyStats:
    token_requests: int = 0
    calls: list[tuple[list[str], str, int]] = field(default_factory=list)
    """(tag names, start text, count) of each data call, in order."""


class DemoProficyHistorian:
    """The demo plant's Proficy Historian: every tag of the plant model under its own name, samples on the
    model's grid, Quality 1 (Uncertain) where the model's status is uncertain, else 3 (Good)."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        n_synthetic: int = 0,
        sample_interval_s: int = SAMPLE_INTERVAL_S,
        clients: dict[str, str] | None = None,
        token_lifetime_s: int = 43199,
    ) -> None:
        self.seed = seed
        self.sample_interval_s = sample_interval_s
        self.tags: dict[str, TagModel] = {t.name: t for t in catalogue(n_synthetic).values()}
        self.clients = {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET} if clients is None else clients
        self.token_lifetime_s = token_lifetime_s
        self.faults = ProficyFaults()
        self.stats = ProficyStats()
        self._tokens: set[str] = set()
        self._first_start: dict[tuple[str, ...], datetime] = {}
        self.app = Starlette(
            routes=[
                Route(TOKEN_PATH, self._token, methods=["POST"]),
                Route(ROOT + "tags", self._tag_list),
                Route(ROOT + "datapoints/raw/{names}/{start}/{end}/{direction}/{count}", self._raw),
            ]
        )

    def samples(self, name: str, since: datetime, until: datetime, count: int) -> list[dict] | None:
        """Raw samples of tag `name` in [since, until] (end included), oldest first, at most `count`;
        None when the Historian has no such tag."""
        tag = self.tags.get(name)
        if tag is None:
            return None
        step = self.sample_interval_s
        first = -(-int(np.ceil(since.timestamp())) // step) * step
        times = np.arange(first, int(np.floor(until.timestamp())) + 1, step, dtype=np.int64)[:count]
        values = tag.values(times, self.seed)
        quality = np.where(tag.status_codes(times, self.seed) != 0, UNCERTAIN, GOOD)
        stamps = np.datetime_as_string(times.astype("datetime64[s]"), unit="ms")
        return [
            {"TimeStamp": f"{stamp}Z", "Value": repr(float(value)), "Quality": int(q)}
            for stamp, value, q in zip(stamps, values, quality, strict=True)
        ]

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    async def _token(self, request: Request) -> JSONResponse:
        self.stats.token_requests += 1
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client = _basic_client(request.headers.get("authorization", ""))
        if form.get("grant_type") != "client_credentials" or client is None or self.clients.get(client[0]) != client[1]:
            return JSONResponse({"error": "unauthorized", "error_description": "Bad credentials"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime_s,
                             "scope": "historian_rest_api.read", "jti": secrets.token_hex(8)})  # fmt: skip

    def _refused(self, request: Request) -> JSONResponse | None:
        """A 401 for a request without a live token (none when the service has no clients), else None."""
        if not self.clients or request.headers.get("authorization", "").removeprefix("Bearer ") in self._tokens:
            return None
        return JSONResponse(
            {"error": "invalid_token", "error_description": "The token expired or is not valid"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    async def _tag_list(self, request: Request) -> Response:
        refusal = self._refused(request)
        if refusal:
            return refusal
        mask = request.query_params.get("nameMask", "*").replace("*", "")
        limit = int(request.query_params.get("maxNumber", "1000"))
        names = [name for name in self.tags if mask in name][:limit]
        return JSONResponse({"ErrorCode": 0, "ErrorMessage": None, "Tags": names})

    async def _raw(self, request: Request) -> Response:
        if self.faults.expire_next_token:
            self.faults.expire_next_token = False
            self.revoke_tokens()
        refusal = self._refused(request)
        if refusal:
            return refusal
        if self.faults.html_login_page:
            return Response("<html>Proficy Authentication Service</html>", media_type="text/html")
        p = request.path_params
        names, count = p["names"].split(";"), int(p["count"])
        try:
            since, until = (datetime.fromisoformat(p[bound]).astimezone(UTC) for bound in ("start", "end"))
        except ValueError as exc:
            return JSONResponse({"ErrorCode": -2, "ErrorMessage": f"Invalid time: {exc}", "Data": []})
        self.stats.calls.append((names, p["start"], count))
        if self.faults.repeat_first_page:
            since = self._first_start.setdefault(tuple(names), since)
        if self.faults.past_end:
            until += timedelta(days=1)
        if self.faults.error:
            code, message = self.faults.error
            return JSONResponse({"ErrorCode": code, "ErrorMessage": message, "Data": []})
        data = []
        for name in names:
            samples = self.samples(name, since, until, count)
            data.append({"TagName": name, "ErrorCode": TAG_NOT_FOUND if samples is None else 0,
                         "DataType": "DoubleFloat", "Samples": samples or []})  # fmt: skip
        if self.faults.malformed_samples and data:
            data[0]["Samples"] = "none"
        return JSONResponse({"ErrorCode": 0, "ErrorMessage": None, "Data": data})


def _basic_client(header: str) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic header, None when it is not one."""
    if not header.startswith("Basic "):
        return None
    try:
        client, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return client, secret
