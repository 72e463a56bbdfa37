"""Alert delivery to a chat/incident webhook (Slack, Teams, PagerDuty-style JSON endpoints).

Webhook URLs often carry their secret in the query string (`?sig=...`, `?token=...`) and some
receivers want a bearer token: neither may reach a log line, an exception or the Dagster UI, so
every message names the endpoint through `safe_url` and passes the shared scrubber (which also
masks the path past its first segment: Slack and Teams keep the secret there, and a receiver may
echo it back in its error body).
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import httpx
from dagster import ConfigurableResource, get_dagster_logger
from pydantic import ConfigDict, Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gl_pipelines.scrub import ScrubFilter, scrub

RETRY_MAX_WAIT_S = 10.0
_BODY_EXCERPT = 200

log = get_dagster_logger("gl_pipelines.alerting")


class AlertWebhookError(RuntimeError):
    """The alert was not delivered; the message names the endpoint (no secrets) and the HTTP status."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class AlertWebhookResource(ConfigurableResource):
    """Posts one JSON alert to a webhook, with bounded retries; logs the alert instead when no URL is set."""

    model_config = ConfigDict(allow_inf_nan=False)  # .inf / .nan in a timeout or rate is a typo, never a setting

    url: str | None = Field(
        default=None,
        description="Webhook endpoint; None logs alerts only. Deployments pass EnvVar('GL_ALERT_WEBHOOK_URL').",
    )
    timeout_s: float = Field(default=5.0, gt=0, description="Connect/read/write timeout of each try.")
    retry_attempts: int = Field(default=3, ge=1, description="Total tries on connection errors, timeouts, 5xx, 429.")
    retry_initial_wait_s: float = Field(default=1.0, ge=0, description="First backoff; doubles, plus jitter.")
    bearer_token: str | None = Field(
        default=None, description="Sent as `Authorization: Bearer ...` when set; pass an EnvVar. Never logged."
    )

    @property
    def safe_url(self) -> str | None:
        """The endpoint without user:password@, query string, fragment, or path past its first
        segment: Slack and Teams put the secret in the path (/services/T…/B…/secret)."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        first, _, rest = parts.path.lstrip("/").partition("/")
        path = f"/{first}/…" if rest else parts.path
        return urlunsplit((parts.scheme, netloc, path, "", ""))

    def post(self, payload: dict) -> None:
        """Deliver `payload` as JSON; raise AlertWebhookError once retries are exhausted or refused."""
        if self.url is None:
            log.warning(f"alert webhook not configured, alert only logged: {scrub(json.dumps(payload, default=str))}")
            return
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json"}
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, AlertWebhookError) and exc.transient),
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.retry_initial_wait_s, max=RETRY_MAX_WAIT_S, jitter=self.retry_initial_wait_s
            ),
            reraise=True,
        )
        with (
            self._httpx_log_scrubbed(),
            httpx.Client(timeout=httpx.Timeout(self.timeout_s), follow_redirects=False) as client,
        ):
            try:
                status = retrying(self._post_once, client, body, headers)
            except AlertWebhookError as exc:
                tries = retrying.statistics.get("attempt_number", 1)
                # A fresh error (no chained httpx exception) so nothing unscrubbed rides along in the traceback.
                raise AlertWebhookError(f"{exc} (gave up after {tries} attempt(s))", exc.status) from None
        log.info(f"alert delivered to {self.safe_url} (HTTP {status})")

    def _post_once(self, client: httpx.Client, body: bytes, headers: dict[str, str]) -> int:
        try:
            response = client.post(self.url, content=body, headers=headers)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise AlertWebhookError(
                f"alert webhook {self.safe_url}: {type(exc).__name__}: {self._scrub(str(exc))}", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise AlertWebhookError(
                f"alert webhook {self.safe_url}: {type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None
        if response.is_success:
            return response.status_code
        excerpt = self._scrub(" ".join(response.text.split()))[:_BODY_EXCERPT]
        raise AlertWebhookError(
            f"alert webhook {self.safe_url}: HTTP {response.status_code} {response.reason_phrase}"
            + (f": {excerpt}" if excerpt else ""),
            status=response.status_code,
            # 5xx and 429 mean "busy or briefly broken"; any other 4xx means the request itself is wrong
            # and repeating it would only spam the receiver.
            transient=response.status_code >= 500 or response.status_code == 429,
        )

    @contextmanager
    def _httpx_log_scrubbed(self) -> Iterator[None]:
        """httpx logs every request's full URL at INFO; mask our secrets in it while we post."""
        scrubber = ScrubFilter([self.url, self.bearer_token])
        httpx_log = logging.getLogger("httpx")
        httpx_log.addFilter(scrubber)
        try:
            yield
        finally:
            httpx_log.removeFilter(scrubber)

    def _scrub(self, text: str) -> str:
        """Mask the URL (its query, credentials and path secret) and the bearer token wherever a message
        repeats them, plus everything the shared scrubber knows."""
        return scrub(text, [self.url, self.bearer_token])
