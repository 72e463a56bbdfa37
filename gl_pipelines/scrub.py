"""One scrubber for every message that leaves the process: logs, errors, metadata, tick reasons, alerts.

A secret reaches a message in ways no single call site can foresee: a server echoes the request
(its URL, its Authorization header), a file the sensor was tricked into reading holds an env
file, an operator pastes a password into the YAML. So every outgoing message passes `scrub`,
which masks
- known secrets: the values of the deployment's secret environment variables (the EnvVar-backed
  resource fields) and any value a resource registers at run time (`register_secret`), in the
  spellings they travel in (as is, URL-encoded, base64 of `user:password`);
- URL userinfo (`scheme://user:password@host`);
- webhook path secrets (Slack `hooks.slack.com/services/T…/B…/…`, Teams `webhook.office.com/…`,
  Discord `/api/webhooks/…`) and secret-looking query parameters (`sig=`, `token=`, …);
- `Authorization:` headers and `Bearer` / `Basic` credentials.
`excerpt` quotes at most a short, printable piece of an untrusted value (a file name, a cell).
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not masked as known secrets: "ab" would garble every message."""

SECRET_ENV_VARS = (
    "GL_OPCUA_PASSWORD",
    "GL_ALERT_WEBHOOK_URL",
    "GL_ALERT_WEBHOOK_TOKEN",
    "GL_HISTORIAN_PASSWORD",
    "GL_HISTORIAN_TOKEN",
    "GL_HISTORIAN_CLIENT_SECRET",
    "GL_ERP_CLIENT_SECRET",
    "GL_ERP_PASSWORD",
)
"""Environment variables whose values are secrets (the EnvVar-backed resource fields of a single-site file,
components/site_file.py); a defs.yaml names its own (`password_env: ...`), added by `declare_secret_env`."""

_registered: set[str] = set()
_declared_env: set[str] = set()


def declare_secret_env(name: str) -> None:
    """Treat the value of environment variable `name` as a secret (a defs.yaml declared it as one)."""
    _declared_env.add(name)

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@?#]+@")
_WEBHOOK_PATHS = re.compile(
    r"(?P<keep>(?:hooks\.slack\.com/(?:services|workflows|triggers)"
    r"|[\w.-]*webhook\.office\.com/[\w-]+"
    r"|[\w.-]*logic\.azure\.com(?::\d+)?/workflows"
    r"|(?:discord(?:app)?\.com)/api/webhooks)/)[^\s\"'<>]+",
    re.IGNORECASE,
)
_SECRET_QUERY = re.compile(
    r"(?P<keep>[?&;](?:sig|signature|token|access_token|id_token|refresh_token|code|key|api[_-]?key|"
    r"secret|client_secret|password|passwd|pwd|auth)=)[^&\s#\"'<>]+",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<keep>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+(?:\s+[^\s\"',}]+)?", re.IGNORECASE
)
_SCHEME_CREDENTIAL = re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]{6,}=*", re.IGNORECASE)


_ESCAPES = {"'": "\\'", "\\": "\\\\"}


def register_secret(value: str | None) -> None:
    """Mask `value` in every later message of this process (e.g. an access token fetched at run time)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        _registered.add(value)


def secret_forms(value: str | None, user: str | None = None) -> list[str]:
    """The spellings a secret travels in: itself, URL-encoded, base64 of `user:value`; for a URL
    also its password, its query and its path past the first segment (where webhooks keep theirs)."""
    if not value or len(value) < MIN_SECRET_CHARS:
        return []
    forms = [value, quote(value, safe="")]
    if user is not None:
        forms.append(base64.b64encode(f"{user}:{value}".encode()).decode("ascii"))
    if "://" in value:
        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            parts, password = None, None
        if parts is not None:
            forms += [password or "", parts.query]
            _, _, rest = parts.path.lstrip("/").partition("/")
            forms.append(rest)
            if parts.username is not None and password:
                forms.append(base64.b64encode(f"{parts.username}:{password}".encode()).decode("ascii"))
    return [form for form in forms if len(form) >= MIN_SECRET_CHARS]


def known_secrets(environ: os._Environ | dict | None = None) -> list[str]:
    """Every known secret in its travelling spellings, longest first (so a URL masks before its parts)."""
    environ = os.environ if environ is None else environ
    found: set[str] = set(_registered)
    for name in (*SECRET_ENV_VARS, *sorted(_declared_env)):
        found.update(secret_forms(environ.get(name)))
    return sorted(found, key=len, reverse=True)


def scrub(text: object, extra: Iterable[str | None] = ()) -> str:
    """`text` with known secrets, `extra` secrets, URL credentials, webhook paths and auth headers masked."""
    text = str(text)
    secrets = sorted({s for value in extra for s in secret_forms(value)} | set(known_secrets()), key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _WEBHOOK_PATHS.sub(lambda m: f"{m['keep']}{MASK}", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m['keep']}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m['keep']}{MASK}", text)
    return _SCHEME_CREDENTIAL.sub(lambda m: f"{m['keep']}{MASK}", text)


def _escaped(value: object, limit: int) -> tuple[str, bool]:
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    text = scrub(text[: limit + 4096])  # scrub before cutting: a cut secret no longer matches its pattern
    escaped = "".join(
        _ESCAPES.get(c) or (c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode())
        for c in text[:limit]
    )
    return escaped, len(text) > limit


def printable(value: object, limit: int = 120) -> str:
    """An untrusted value made safe to print: scrubbed, control characters (and undecodable bytes of a
    file name) escaped so a newline cannot split a log line, at most `limit` characters plus "…"."""
    escaped, cut = _escaped(value, limit)
    return escaped + ("…" if cut else "")


def excerpt(value: object, limit: int = 60) -> str:
    """A short, safe quotation of an untrusted value: `printable`, in quotes."""
    escaped, cut = _escaped(value, limit)
    return f"'{escaped}'" + ("…" if cut else "")


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (attach to a logger or a handler)."""

    def __init__(self, extra: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._extra = list(extra)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self._extra), None
        return True
