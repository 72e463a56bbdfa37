"""The one HTTP client layer the historian (PI Web API) and ERP (SAP OData) resources share.

Pooled httpx client with explicit timeouts and TLS verification, basic / bearer / OAuth2
client-credentials auth, tenacity retries (connection errors, 5xx, 429 with Retry-After),
a client-side rate limit and a cap on requests in flight. Secrets are pydantic SecretStr and
every message this module produces passes the shared scrubber, which also masks credentials
written into the base URL (`https://user:password@host`, sent by httpx as HTTP Basic) when a
server echoes them.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import httpx
from dagster import ConfigurableResource, Failure, RetryRequested
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)

from gl_pipelines.resources.health import HealthStatus
from gl_pipelines.scrub import ScrubFilter, register_secret, scrub, secret_forms

log = logging.getLogger(__name__)
# httpx logs each request's full URL at INFO, userinfo included.
logging.getLogger("httpx").addFilter(ScrubFilter())

BODY_EXCERPT_CHARS = 200
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class HttpSourceError(RuntimeError):
    """A request to a source failed; names source, method, path (no query), status and a body excerpt."""

    def __init__(
        self,
        source: str,
        method: str,
        url: str | httpx.URL,
        detail: str,
        status: int | None = None,
        body: str = "",
    ) -> None:
        self.source = source
        self.method = method
        self.path = httpx.URL(str(url)).path
        self.status = status
        self.detail = detail
        self.body_excerpt = _excerpt(body)
        status_part = f" -> HTTP {status}" if status is not None else ""
        body_part = f"; body: {self.body_excerpt!r}" if self.body_excerpt else ""
        super().__init__(f"{source}: {method} {self.path}{status_part}: {detail}{body_part}")


class HttpTransientError(HttpSourceError):
    """Connection error, timeout, 5xx or 429: worth another attempt."""

    def __init__(self, *args: Any, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s


def step_retry(error: Exception, *, max_retries: int, wait_s: float, max_wait_s: float) -> Exception:
    """What a step raises after the client gave up on a transient error: a step retry after `wait_s`, or
    after the server's Retry-After when that is longer; a Failure (no retry) naming both waits when the
    server asks for more than `max_wait_s`, instead of retrying early and being refused again."""
    retry_after = getattr(error, "retry_after_s", None)
    wait = max(wait_s, retry_after or 0.0)
    if wait > max_wait_s:
        return Failure(
            description=f"{error}; the server asked to retry after {retry_after:g} s, longer than this step waits "
            f"(step_retry_max_wait_s = {max_wait_s:g} s): re-run the partition once the server accepts requests",
            allow_retries=False,
        )
    return RetryRequested(max_retries=max_retries, seconds_to_wait=wait)


T = TypeVar("T")
TRANSIENT_STEP_RETRIES = 2
STEP_RETRY_WAIT_S = 120


def read_or_step_retry(resource, read: Callable[[], T], retry_on: tuple[type[Exception], ...] = ()) -> T:
    """`read()` inside an asset step; a transient HTTP failure the client already retried with backoff (or one of
    `retry_on`) becomes a step retry that gives the server minutes before failing the run (`step_retry`)."""
    try:
        return read()
    except (HttpTransientError, *retry_on) as error:
        raise step_retry(
            error,
            max_retries=TRANSIENT_STEP_RETRIES,
            wait_s=STEP_RETRY_WAIT_S,
            max_wait_s=resource.step_retry_max_wait_s,
        ) from error


class HttpResponseFormatError(HttpSourceError):
    """The body is not what was asked for: malformed JSON or an unexpected content type."""


def _basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= BODY_EXCERPT_CHARS else flat[:BODY_EXCERPT_CHARS] + "..."


class NoAuth(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["none"] = "none"


class BasicAuth(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class BearerAuth(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["bearer"] = "bearer"
    token: SecretStr


class OAuth2ClientCredentials(BaseModel):
    """RFC 6749 client credentials. `client_auth` "basic" sends the client id and secret as HTTP Basic
    (RFC 6749 2.3.1, SAP XSUAA's default); "post" sends them in the form body (Microsoft Entra ID's
    documented form, `client_secret_post`)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["oauth2"] = "oauth2"
    token_url: str
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    client_auth: Literal["basic", "post"] = "basic"


AuthSettings = Annotated[NoAuth | BasicAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="kind")]


class HttpClientSettings(BaseModel):
    """Everything an HttpClient needs; built by HttpSourceResource.client_settings()."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    base_url: str
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    verify_tls: bool = True
    ca_bundle: str | None = None
    max_in_flight: int = Field(default=8, gt=0)
    requests_per_second: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=10.0, ge=0)
    auth: AuthSettings = NoAuth()

    def secret_values(self) -> list[str]:
        """Every form a secret travels in: the value, and for HTTP Basic the encoded credential too;
        credentials in the base URL's userinfo count as well."""
        auth = self.auth
        url = httpx.URL(self.base_url)
        found = secret_forms(url.password, user=url.username) if url.password else []
        if isinstance(auth, BasicAuth):
            found += secret_forms(auth.password.get_secret_value(), user=auth.username)
        if isinstance(auth, BearerAuth):
            found += secret_forms(auth.token.get_secret_value())
        if isinstance(auth, OAuth2ClientCredentials):
            found += secret_forms(auth.client_secret.get_secret_value(), user=auth.client_id)
        return found


def same_origin(base_url: str | httpx.URL, url: str | httpx.URL) -> bool:
    """True when `url` has the scheme, host and port of `base_url` (default ports made explicit)."""
    a, b = httpx.URL(str(base_url)), httpx.URL(str(url))
    default = {"http": 80, "https": 443}
    return (
        a.scheme == b.scheme
        and (a.host or "").lower() == (b.host or "").lower()
        and (a.port or default.get(a.scheme)) == (b.port or default.get(b.scheme))
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RateLimiter:
    """Token bucket of one token: requests are spaced at least 1/rate apart, in arrival order."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> bool:
        """Wait for a slot; True when the caller had to wait."""
        if not self._interval:
            return False
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)
            return True
        return False


class _Token:
    def __init__(self, value: str, expires_at: float) -> None:
        self.value = value
        self.expires_at = expires_at


class HttpClient:
    """`async with HttpClient(source, settings) as client:` one pooled connection set to one source."""

    def __init__(self, source: str, settings: HttpClientSettings) -> None:
        self.source = source
        self.settings = settings
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "token_fetches": 0, "rate_limited_waits": 0}
        self._base = httpx.URL(settings.base_url.rstrip("/") + "/")
        self._secrets = [s for s in settings.secret_values() if s]
        for secret in self._secrets:
            register_secret(secret)  # httpx's own log lines and other loggers mask them too
        self._client: httpx.AsyncClient | None = None
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        self._limiter = _RateLimiter(settings.requests_per_second)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> HttpClient:
        s = self.settings
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=s.ca_bundle) if s.ca_bundle else s.verify_tls
        self._client = httpx.AsyncClient(
            base_url=self._base,
            timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s, pool=None),
            verify=verify,
            limits=httpx.Limits(max_connections=s.max_in_flight, max_keepalive_connections=s.max_in_flight),
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get_json(
        self,
        url_or_path: str,
        params: Any = None,
        *,
        parse_float: Callable[[str], Any] | None = None,
        accept: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET and parse JSON; HttpResponseFormatError if the body is not JSON.

        `parse_float=Decimal` keeps JSON numbers with a fraction exact (never a binary float).
        `accept` may carry a dialect's media type parameters (OData v4's IEEE754Compatible), `headers`
        its preferences (OData v4's `Prefer`).
        """
        response = await self.request("GET", url_or_path, params=params, accept=accept, headers=headers)
        content_type = response.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        if not (media == "application/json" or media.endswith("+json")):
            raise self._error(HttpResponseFormatError, response, f"expected a JSON content type, got {content_type!r}")
        try:
            return json.loads(response.content, parse_float=parse_float)
        except ValueError as exc:
            raise self._error(HttpResponseFormatError, response, f"malformed JSON ({exc})") from None
        except RecursionError:
            raise self._error(
                HttpResponseFormatError, response, "JSON nested too deeply to parse (a hostile or broken server?)"
            ) from None

    async def get_text(self, url_or_path: str, params: Any = None, accept: str | None = None) -> str:
        """GET a text body (e.g. OData $metadata XML)."""
        response = await self.request("GET", url_or_path, params=params, accept=accept)
        return response.text

    async def request(
        self,
        method: str,
        url_or_path: str,
        *,
        params: Any = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One logical request: auth, retries, rate limit and in-flight cap applied; 2xx or an error."""
        url = self._resolve(method, url_or_path)
        headers = {**(headers or {}), **({"Accept": accept} if accept else {})}
        async for attempt in self._retrying():
            with attempt:
                return await self._send_authenticated(method, url, params, headers)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _resolve(self, method: str, url_or_path: str) -> httpx.URL:
        url = httpx.URL(url_or_path)
        if url.is_absolute_url:
            if not same_origin(self._base, url):
                raise HttpSourceError(
                    self.source,
                    method,
                    url,
                    f"refusing a link to another origin ({url.scheme}://{url.host}:{url.port or ''}); "
                    f"expected {self._base.scheme}://{self._base.host}:{self._base.port or ''}",
                )
            return url
        return self._base.join(url_or_path.lstrip("/"))

    async def _send_authenticated(
        self, method: str, url: httpx.URL, params: Any, headers: dict[str, str]
    ) -> httpx.Response:
        auth = self.settings.auth
        if isinstance(auth, OAuth2ClientCredentials):
            token = await self._valid_token()
            response = await self._send(method, url, params, {**headers, "Authorization": f"Bearer {token}"})
            if response.status_code == 401:
                # The token may have been revoked before its expiry: one fresh token, one replay.
                token = await self._valid_token(rejected=token)
                response = await self._send(method, url, params, {**headers, "Authorization": f"Bearer {token}"})
        else:
            response = await self._send(method, url, params, {**headers, **self._static_auth_headers()})
        self._raise_for_status(response)
        return response

    async def _send(self, method: str, url: httpx.URL, params: Any, headers: dict[str, str]) -> httpx.Response:
        assert self._client is not None, "use HttpClient as an async context manager"
        async with self._semaphore:
            if await self._limiter.acquire():
                self.stats["rate_limited_waits"] += 1
            self.stats["requests"] += 1
            try:
                return await self._client.request(method, url, params=params, headers=headers)
            except httpx.TransportError as exc:
                raise HttpTransientError(
                    self.source, method, url, f"{type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}"
                ) from None

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in RETRY_STATUS:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            detail = "server busy or failing" + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else "")
            raise self._error(HttpTransientError, response, detail, retry_after_s=retry_after)
        raise self._error(HttpSourceError, response, "request refused")

    def _error(self, cls: type[HttpSourceError], response: httpx.Response, detail: str, **kw: Any) -> HttpSourceError:
        return cls(
            self.source,
            response.request.method,
            response.request.url,
            self._scrub(detail),
            status=response.status_code,
            body=self._scrub(response.text),
            **kw,
        )

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _retrying(self) -> AsyncRetrying:
        """Retries of transient errors; a Retry-After beyond backoff_max_s ends them (never retried early)."""
        return AsyncRetrying(
            retry=retry_if_exception_type(HttpTransientError),
            stop=stop_any(stop_after_attempt(self.settings.max_attempts), self._retry_after_too_long),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _retry_after_too_long(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after_s", None)
        return retry_after is not None and retry_after > self.settings.backoff_max_s

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        s = self.settings
        backoff = wait_exponential_jitter(
            multiplier=s.backoff_initial_s, max=s.backoff_max_s, jitter=s.backoff_initial_s
        )
        retry_after = getattr(exc, "retry_after_s", None)
        return retry_after if retry_after is not None else backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats["retries"] += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s (attempt %d, retrying in %.2f s)", self._scrub(str(exc)), state.attempt_number, wait)

    def _static_auth_headers(self) -> dict[str, str]:
        auth = self.settings.auth
        if isinstance(auth, BasicAuth):
            return {"Authorization": _basic_header(auth.username, auth.password.get_secret_value())}
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
        return {}

    async def _valid_token(self, rejected: str | None = None) -> str:
        """A cached access token, fetched once by concurrent callers, renewed shortly before expiry
        or when the server rejected `rejected` (unless another caller already replaced it)."""
        async with self._token_lock:
            current = self._token
            if current is not None and time.monotonic() < current.expires_at and current.value != rejected:
                return current.value
            self._token = await self._fetch_token()
            register_secret(self._token.value)  # scrubbed from every message, even once replaced
            return self._token.value

    async def _fetch_token(self) -> _Token:
        auth = self.settings.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        # The token endpoint may live on another origin (an identity provider), so no same-origin rule here.
        token_url = httpx.URL(auth.token_url)
        if not token_url.is_absolute_url:
            token_url = self._base.join(auth.token_url.lstrip("/"))
        form = {"grant_type": "client_credentials", **({"scope": auth.scope} if auth.scope else {})}
        basic = None
        if auth.client_auth == "post":
            form |= {"client_id": auth.client_id, "client_secret": auth.client_secret.get_secret_value()}
        else:
            basic = _basic_header(auth.client_id, auth.client_secret.get_secret_value())
        try:
            async for attempt in self._retrying():
                with attempt:
                    response = await self._post_token(token_url, form, basic)
        except HttpTransientError as exc:
            # Already retried here; the caller's retry loop must not multiply the attempts.
            raise HttpSourceError(exc.source, exc.method, token_url, exc.detail, exc.status, exc.body_excerpt) from None
        self.stats["token_fetches"] += 1
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            # No body excerpt: a token response is itself a secret (it may hold a usable access_token).
            raise HttpResponseFormatError(
                self.source,
                "POST",
                token_url,
                "token response without a usable access_token and expires_in",
                status=response.status_code,
            ) from None
        # Renew a little before the server's expiry so a request never leaves with a dying token.
        margin = min(30.0, lifetime * 0.1)
        return _Token(value, time.monotonic() + max(0.0, lifetime - margin))

    async def _post_token(self, url: httpx.URL, form: dict[str, str], basic: str | None) -> httpx.Response:
        assert self._client is not None, "use HttpClient as an async context manager"
        async with self._semaphore:
            self.stats["requests"] += 1
            try:
                response = await self._client.post(
                    url,
                    data=form,
                    headers={"Accept": "application/json", **({"Authorization": basic} if basic else {})},
                )
            except httpx.TransportError as exc:
                raise HttpTransientError(
                    self.source, "POST", url, f"token request failed: {type(exc).__name__}"
                ) from None
        if response.status_code in RETRY_STATUS:
            raise self._error(
                HttpTransientError,
                response,
                "token endpoint busy or failing",
                retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise self._error(HttpSourceError, response, "token request refused (check client id and secret)")
        return response


class HttpSourceResource(ConfigurableResource):
    """Fields every HTTP source shares; subclasses add their dialect (PI Web API, OData)."""

    model_config = ConfigDict(allow_inf_nan=False)  # .inf / .nan in a timeout or rate is a typo, never a setting

    base_url: str = Field(description="Service root, e.g. https://pi.example/piwebapi (no credentials in it).")
    source_name: str = Field(default="http", description="Recorded in each row's `source` column and in errors.")
    auth_mode: Literal["none", "basic", "bearer", "oauth2"] = Field(
        default="none",
        description="How to authenticate: none, HTTP basic, a static bearer token, OAuth2 client credentials.",
    )
    username: str | None = Field(default=None, description="Basic auth user name.")
    password: str | None = Field(
        default=None, repr=False, description="Basic auth password: always EnvVar, never literal."
    )
    token: str | None = Field(
        default=None, repr=False, description="Static bearer token: always EnvVar, never literal."
    )
    token_url: str | None = Field(
        default=None, description="OAuth2 token endpoint (absolute, or relative to base_url)."
    )
    client_id: str | None = Field(default=None, description="OAuth2 client id.")
    client_secret: str | None = Field(
        default=None, repr=False, description="OAuth2 client secret: always EnvVar, never literal."
    )
    scope: str | None = Field(default=None, description="OAuth2 scope, if the token endpoint needs one.")
    token_client_auth: Literal["basic", "post"] = Field(
        default="basic",
        description="How the OAuth2 client proves itself to the token endpoint: HTTP Basic (SAP XSUAA) or "
        "client_id/client_secret in the form body (Microsoft Entra ID).",
    )
    verify_tls: bool = Field(default=True, description="Verify the server certificate; off only for lab setups.")
    ca_bundle: str | None = Field(default=None, description="PEM file of CAs to trust instead of the system store.")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Seconds to establish a connection.")
    read_timeout_s: float = Field(default=30.0, gt=0, description="Seconds to wait for response data.")
    max_in_flight: int = Field(default=8, gt=0, description="Cap on concurrent requests (and pooled connections).")
    requests_per_second: float | None = Field(default=None, gt=0, description="Client-side rate limit; None = off.")
    max_attempts: int = Field(default=5, ge=1, description="Tries per request on connection errors, 5xx and 429.")
    backoff_initial_s: float = Field(
        default=0.2, ge=0, description="First retry wait; grows exponentially with jitter."
    )
    backoff_max_s: float = Field(
        default=10.0, ge=0, description="Cap on one retry wait; a longer Retry-After fails the request instead."
    )
    health_path: str = Field(default="", description="Path GET by health_check(), relative to base_url.")
    step_retry_max_wait_s: float = Field(
        default=1800.0,
        gt=0,
        description="Longest Retry-After a failed step waits for before its retry; a longer one fails the step.",
    )

    def client_settings(self) -> HttpClientSettings:
        """The frozen client settings; raises naming the missing field when auth_mode needs one."""
        return HttpClientSettings(
            base_url=self.base_url,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            verify_tls=self.verify_tls,
            ca_bundle=self.ca_bundle,
            max_in_flight=self.max_in_flight,
            requests_per_second=self.requests_per_second,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            auth=self._auth(),
        )

    def _auth(self) -> NoAuth | BasicAuth | BearerAuth | OAuth2ClientCredentials:
        def need(field: str) -> str:
            value = getattr(self, field)
            if not value:
                raise ValueError(
                    f"{self.source_name}: auth_mode={self.auth_mode!r} needs `{field}` (set it from EnvVar)"
                )
            return value

        if self.auth_mode == "basic":
            return BasicAuth(username=need("username"), password=SecretStr(need("password")))
        if self.auth_mode == "bearer":
            return BearerAuth(token=SecretStr(need("token")))
        if self.auth_mode == "oauth2":
            return OAuth2ClientCredentials(
                token_url=need("token_url"),
                client_id=need("client_id"),
                client_secret=SecretStr(need("client_secret")),
                scope=self.scope,
                client_auth=self.token_client_auth,
            )
        return NoAuth()

    def http_client(self) -> HttpClient:
        return HttpClient(self.source_name, self.client_settings())

    @property
    def safe_endpoint(self) -> str:
        """base_url without any user:password@ part, for logs and metadata."""
        url = httpx.URL(self.base_url)
        return str(url.copy_with(username=None, password=None, query=None))

    def health_check(self) -> HealthStatus:
        """One authenticated GET of health_path; never raises."""
        began = time.perf_counter()

        async def probe() -> None:
            async with self.http_client() as client:
                await client.request("GET", self.health_path)

        try:
            asyncio.run(probe())
        except Exception as exc:  # a health probe reports, it does not fail the caller
            return HealthStatus(False, self.safe_endpoint, scrub(exc), time.perf_counter() - began)
        return HealthStatus(True, self.safe_endpoint, "ok", time.perf_counter() - began)
