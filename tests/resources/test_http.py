"""The shared HTTP layer against a real Starlette app on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gl_demo_plant.http_server import HttpServerThread
from gl_pipelines.resources.http import (
    BasicAuth,
    BearerAuth,
    HttpClient,
    HttpClientSettings,
    HttpResponseFormatError,
    HttpSourceError,
    HttpSourceResource,
    OAuth2ClientCredentials,
    parse_retry_after,
    same_origin,
)

CLIENT_ID = "gl-client"
CLIENT_SECRET = "s3cr3t-Cl1ent-V4lue-9f2c"
STATIC_TOKEN = "st4tic-B3arer-T0ken-77aa"


class Behaviour:
    """What the test server does; tests change it and read what the server saw."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.expires_in = 3600
        self.request_times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0


def build_app(state: Behaviour) -> Starlette:
    def count(request: Request) -> int:
        key = request.url.path + "?" + request.url.query
        state.calls[key] += 1
        state.request_times.append(time.monotonic())
        return state.calls[key]

    async def ok(request: Request) -> Response:
        count(request)
        return JSONResponse({"ok": True, "query": dict(request.query_params)})

    async def slow(request: Request) -> Response:
        count(request)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        await asyncio.sleep(0.05)
        state.in_flight -= 1
        return JSONResponse({})

    async def flaky(request: Request) -> Response:
        n = count(request)
        fails = int(request.query_params.get("fail", "1"))
        status = int(request.query_params.get("status", "503"))
        if n <= fails:
            headers = {}
            if "retry_after" in request.query_params:
                headers["Retry-After"] = request.query_params["retry_after"]
            return PlainTextResponse("busy, try later", status_code=status, headers=headers)
        return JSONResponse({"attempt": n})

    async def status(request: Request) -> Response:
        count(request)
        return PlainTextResponse(f"no such thing {request.path_params['code']}", int(request.path_params["code"]))

    async def malformed(request: Request) -> Response:
        count(request)
        return Response('{"Items": [1, 2,', media_type="application/json")

    async def html(request: Request) -> Response:
        count(request)
        return Response("<html>login page</html>", media_type="text/html")

    async def xml(request: Request) -> Response:
        count(request)
        return Response("<edmx:Edmx/>", media_type="application/xml")

    async def token(request: Request) -> Response:
        count(request)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = parse_qs((await request.body()).decode())
        if request.headers.get("authorization") != expected or form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = f"access-{len(state.tokens_issued) + 1}-xyz"
        state.tokens_issued.append(value)
        return JSONResponse({"access_token": value, "token_type": "bearer", "expires_in": state.expires_in})

    async def protected(request: Request) -> Response:
        count(request)
        header = request.headers.get("authorization", "")
        value = header.removeprefix("Bearer ")
        if value not in state.tokens_issued or value in state.revoked:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"token": value})

    async def echo_auth(request: Request) -> Response:
        count(request)
        return PlainTextResponse(f"bad request, you sent {request.headers.get('authorization')}", 400)

    async def echo_decoded(request: Request) -> Response:
        count(request)
        header = request.headers.get("authorization", "").removeprefix("Basic ")
        decoded = base64.b64decode(header).decode() if header else ""
        return PlainTextResponse(f"login {decoded} refused; header was {header}", 403)

    async def deep(request: Request) -> Response:
        count(request)
        return Response('{"Items": ' + "[" * 200_000 + "]" * 200_000 + "}", media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/ok", ok),
            Route("/api/flaky", flaky),
            Route("/api/slow", slow),
            Route("/api/status/{code:int}", status),
            Route("/api/malformed", malformed),
            Route("/api/html", html),
            Route("/api/xml", xml),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/protected", protected),
            Route("/api/echo-auth", echo_auth),
            Route("/api/echo-decoded", echo_decoded),
            Route("/api/deep", deep),
        ]
    )


@pytest.fixture(scope="module")
def http_app():
    state = Behaviour()
    with HttpServerThread(build_app(state)) as server:
        server.state = state
        yield server


@pytest.fixture
def server(http_app):
    http_app.state.__init__()
    return http_app


def settings(server, **overrides) -> HttpClientSettings:
    base = {"base_url": server.url + "/api", "backoff_initial_s": 0.01, "backoff_max_s": 2.0, "max_attempts": 4}
    return HttpClientSettings(**(base | overrides))


def oauth(server) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        token_url=server.url + "/oauth/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )


def run(settings: HttpClientSettings, func):
    async def main():
        async with HttpClient("test-src", settings) as client:
            result = await func(client)
            return result, client.stats

    return asyncio.run(main())


def test_get_json_relative_path_and_params(server):
    body, stats = run(settings(server), lambda c: c.get_json("ok", params=[("a", "1"), ("a", "2")]))
    assert body == {"ok": True, "query": {"a": "2"}}
    assert stats["requests"] == 1 and stats["retries"] == 0


def test_get_text_for_xml(server):
    text, _ = run(settings(server), lambda c: c.get_text("/xml", accept="application/xml"))
    assert text == "<edmx:Edmx/>"


@pytest.mark.parametrize("status", [503, 429])
def test_retries_then_succeeds(server, status):
    body, stats = run(settings(server), lambda c: c.get_json("flaky", params={"fail": 2, "status": status}))
    assert body == {"attempt": 3}
    assert stats["retries"] == 2 and stats["requests"] == 3


def test_gives_up_after_max_attempts_naming_source_and_status(server):
    with pytest.raises(HttpSourceError) as err:
        run(settings(server, max_attempts=3), lambda c: c.get_json("flaky", params={"fail": 9, "status": 502}))
    assert server.state.calls["/api/flaky?fail=9&status=502"] == 3
    message = str(err.value)
    assert "test-src" in message and "GET /api/flaky" in message and "HTTP 502" in message and "busy" in message
    assert "fail=9" not in message  # the query never appears in errors


@pytest.mark.parametrize("code", [400, 404, 403])
def test_no_retry_on_other_4xx(server, code):
    with pytest.raises(HttpSourceError, match=f"HTTP {code}") as err:
        run(settings(server), lambda c: c.get_json(f"status/{code}"))
    assert server.state.calls[f"/api/status/{code}?"] == 1
    assert f"no such thing {code}" in str(err.value)


def test_retry_after_seconds_is_honoured(server):
    began = time.monotonic()
    body, stats = run(settings(server), lambda c: c.get_json("flaky", params={"status": 429, "retry_after": 1}))
    elapsed = time.monotonic() - began
    assert body == {"attempt": 2}
    gap = server.state.request_times[1] - server.state.request_times[0]
    assert gap >= 1.0 and elapsed >= 1.0


def test_retry_after_beyond_the_cap_fails_instead_of_retrying_early(server):
    # Asking again after 0.3 s when the server said 120 s would not honour Retry-After.
    with pytest.raises(HttpSourceError, match=r"HTTP 503: server busy or failing \(Retry-After 120 s\)"):
        run(
            settings(server, backoff_max_s=0.3),
            lambda c: c.get_json("flaky", params={"status": 503, "retry_after": 120}),
        )
    assert server.state.calls["/api/flaky?status=503&retry_after=120"] == 1


def test_parse_retry_after_http_date():
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7
    assert parse_retry_after("3") == 3
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_malformed_json_is_a_format_error(server):
    with pytest.raises(HttpResponseFormatError, match=r"test-src: GET /api/malformed -> HTTP 200: malformed JSON"):
        run(settings(server), lambda c: c.get_json("malformed"))
    assert server.state.calls["/api/malformed?"] == 1


def test_wrong_content_type_is_a_format_error(server):
    with pytest.raises(HttpResponseFormatError, match=r"expected a JSON content type, got 'text/html") as err:
        run(settings(server), lambda c: c.get_json("html"))
    assert "login page" in str(err.value)


def test_foreign_origin_next_link_is_refused(server):
    with pytest.raises(HttpSourceError, match="another origin"):
        run(settings(server), lambda c: c.get_json(f"http://evil.example:{server.port}/api/ok"))
    port_elsewhere = server.port + 1 if server.port < 65535 else server.port - 1
    with pytest.raises(HttpSourceError, match="another origin"):
        run(settings(server), lambda c: c.get_json(f"http://127.0.0.1:{port_elsewhere}/api/ok"))
    body, _ = run(settings(server), lambda c: c.get_json(server.url + "/api/ok?x=1"))
    assert body["query"] == {"x": "1"}


def test_same_origin():
    assert same_origin("https://h.example/a", "https://H.example:443/b?c")
    assert not same_origin("https://h.example/a", "http://h.example/a")
    assert not same_origin("https://h.example/a", "https://h.example:8443/a")
    assert not same_origin("https://h.example/a", "https://other.example/a")


def test_oauth2_token_fetched_once_and_cached(server):
    async def many(client):
        return await asyncio.gather(*(client.get_json("protected") for _ in range(10)))

    bodies, stats = run(settings(server, auth=oauth(server)), many)
    assert {b["token"] for b in bodies} == {"access-1-xyz"}
    assert stats["token_fetches"] == 1 and server.state.calls["/oauth/token?"] == 1


def test_oauth2_token_refreshed_before_expiry(server):
    server.state.expires_in = 1  # renewed 0.1 s early

    async def twice(client):
        first = await client.get_json("protected")
        await asyncio.sleep(1.0)
        return first, await client.get_json("protected")

    (first, second), stats = run(settings(server, auth=oauth(server)), twice)
    assert (first["token"], second["token"]) == ("access-1-xyz", "access-2-xyz")
    assert stats["token_fetches"] == 2
    assert server.state.calls["/api/protected?"] == 2  # no 401 round trip: refreshed before use


def test_oauth2_one_refresh_and_replay_on_401(server):
    async def revoked_midway(client):
        await client.get_json("protected")
        server.state.revoked.add("access-1-xyz")
        return await client.get_json("protected")

    body, stats = run(settings(server, auth=oauth(server)), revoked_midway)
    assert body == {"token": "access-2-xyz"}
    assert stats["token_fetches"] == 2 and server.state.calls["/api/protected?"] == 3


def test_oauth2_second_401_is_an_error_not_a_loop(server):
    async def always_revoked(client):
        await client.get_json("protected")
        server.state.revoked.update({"access-1-xyz", "access-2-xyz", "access-3-xyz"})
        return await client.get_json("protected")

    with pytest.raises(HttpSourceError, match="HTTP 401"):
        run(settings(server, auth=oauth(server)), always_revoked)
    assert server.state.calls["/oauth/token?"] == 2


def test_unusable_token_response_is_an_error_without_the_token(server):
    server.state.expires_in = "soon"  # access_token present, lifetime unreadable
    with pytest.raises(HttpResponseFormatError, match="token response without a usable access_token") as err:
        run(settings(server, auth=oauth(server)), lambda c: c.get_json("protected"))
    assert "access-1-xyz" not in str(err.value)


def test_bad_client_secret_is_a_clear_error_without_the_secret(server, caplog):
    wrong = "wr0ng-S3cret-Value-123"
    bad = OAuth2ClientCredentials(token_url=server.url + "/oauth/token", client_id=CLIENT_ID, client_secret=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HttpSourceError, match="token request refused") as err:
        run(settings(server, auth=bad), lambda c: c.get_json("protected"))
    assert wrong not in str(err.value) and wrong not in repr(bad) and wrong not in caplog.text


def test_secrets_absent_from_errors_and_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HttpSourceError) as err:
        run(settings(server, auth=BearerAuth(token=STATIC_TOKEN)), lambda c: c.get_json("echo-auth"))
    assert "HTTP 400" in str(err.value) and "Bearer ***" in str(err.value)
    with pytest.raises(HttpSourceError) as err2:
        run(
            settings(server, auth=oauth(server), max_attempts=2),
            lambda c: c.get_json("flaky", params={"fail": 5}),
        )
    for text in (str(err.value), str(err2.value), caplog.text, repr(settings(server, auth=oauth(server)))):
        assert STATIC_TOKEN not in text and CLIENT_SECRET not in text and "access-1-xyz" not in text
    assert "retrying" in caplog.text  # the retry log line exists and is the one we scanned


def test_basic_credential_echoed_by_the_server_is_scrubbed(server, caplog):
    # The base64 of user:password is the password in another spelling.
    encoded = base64.b64encode(f"pi-reader:{CLIENT_SECRET}".encode()).decode()
    with pytest.raises(HttpSourceError, match=r"HTTP 400") as err:
        run(
            settings(server, auth=BasicAuth(username="pi-reader", password=CLIENT_SECRET)),
            lambda c: c.get_json("echo-auth"),
        )
    assert "Basic ***" in str(err.value) and encoded not in str(err.value)


def test_rate_limit_spaces_requests(server):
    async def burst(client):
        return await asyncio.gather(*(client.get_json("ok") for _ in range(5)))

    _, stats = run(settings(server, requests_per_second=20), burst)
    times = sorted(server.state.request_times)
    assert times[-1] - times[0] >= 4 / 20 * 0.95
    # At most the 4 requests after the first wait; fewer when a loaded machine already spaced them.
    assert stats["rate_limited_waits"] <= 4


def test_max_in_flight_caps_concurrency(server):
    async def burst(client):
        await asyncio.gather(*(client.get_json("slow") for _ in range(8)))

    run(settings(server, max_in_flight=3), burst)
    assert server.state.max_in_flight == 3


def test_connection_refused_is_retried_then_named(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = HttpClientSettings(base_url=f"http://127.0.0.1:{port}/x", backoff_initial_s=0.01, max_attempts=2)
    with pytest.raises(HttpSourceError, match=r"test-src: GET /x/y: ConnectError"):
        run(dead, lambda c: c.get_json("y"))


def test_resource_builds_settings_and_names_missing_auth_field(server):
    resource = HttpSourceResource(base_url=server.url + "/api", source_name="pi", auth_mode="oauth2", client_id="c")
    with pytest.raises(ValueError, match="pi: auth_mode='oauth2' needs `token_url`"):
        resource.client_settings()
    ok = HttpSourceResource(base_url=server.url + "/api", source_name="pi", health_path="ok")
    assert ok.health_check().ok
    assert (
        not HttpSourceResource(base_url=server.url + "/api", health_path="status/404", max_attempts=1).health_check().ok
    )


def test_slow_answer_past_the_read_timeout_is_retried_then_named(server):
    with pytest.raises(HttpSourceError, match=r"test-src: GET /api/slow: ReadTimeout"):
        run(settings(server, read_timeout_s=0.01, max_attempts=2), lambda c: c.get_json("slow"))
    assert server.state.calls["/api/slow?"] == 2


def test_credentials_in_the_base_url_userinfo_are_masked_when_the_server_echoes_them(server, caplog):
    """Before: `login pi-reader:UrlP4ssw0rd refused; header was cGktcmVhZGVy...` reached the error."""
    password = "UrlP4ssw0rd-zz9"
    encoded = base64.b64encode(f"pi-reader:{password}".encode()).decode()
    base = server.url.replace("http://", f"http://pi-reader:{password}@") + "/api"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HttpSourceError) as err:
        run(settings(server, base_url=base), lambda c: c.get_json("echo-decoded"))
    assert str(err.value) == (
        "test-src: GET /api/echo-decoded -> HTTP 403: request refused; "
        "body: 'login pi-reader:*** refused; header was ***'"
    )
    for text in (str(err.value), caplog.text):
        assert password not in text and encoded not in text


def test_deeply_nested_json_is_a_format_error_naming_the_source(server):
    """Before: a bare RecursionError with no source, URL or reason."""
    with pytest.raises(HttpResponseFormatError) as err:
        run(settings(server), lambda c: c.get_json("deep"))
    assert str(err.value).startswith(
        "test-src: GET /api/deep -> HTTP 200: JSON nested too deeply to parse (a hostile or broken server?); body: "
    )
    assert len(str(err.value)) < 400
