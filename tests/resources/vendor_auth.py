"""OAuth2 client-credentials token endpoints shaped like the vendors' own, for the dialect test servers.

- Microsoft Entra ID v2 (`POST /{tenant}/oauth2/v2.0/token`, Microsoft identity platform "client
  credentials flow" page): client_id, client_secret and scope in the form body; answers
  `{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ...}`, and on a
  wrong secret 401 `{"error": "invalid_client", "error_description": "AADSTS7000215: ...", "error_codes": [...]}`.
- UAA / SAP XSUAA (`POST /oauth/token`, also GE Proficy Historian's UAA): the client as HTTP Basic;
  answers `{"access_token", "token_type": "bearer", "expires_in": 43199, "scope", "jti"}`.

A revoked token answers 401 with `WWW-Authenticate: Bearer error="invalid_token"`, as both do.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse

CLIENT_ID = "gl-pipelines-reader"
CLIENT_SECRET = "dialect-Cl1ent-S3cret-never-logged-9d2c"


@dataclass
class TokenIssuer:
    scope: str | None = None
    tokens: set[str] = field(default_factory=set)
    fetches: int = 0
    forms: list[dict[str, str]] = field(default_factory=list)

    async def entra(self, request: Request) -> JSONResponse:
        form = await _form(request)
        self.forms.append({k: v for k, v in form.items() if k != "client_secret"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                    "sent in the request is the client secret value, not the client secret ID.",
                    "error_codes": [7000215],
                },
                status_code=401,
            )
        if form.get("grant_type") != "client_credentials" or (self.scope and form.get("scope") != self.scope):
            return JSONResponse({"error": "invalid_scope", "error_description": "AADSTS70011"}, status_code=400)
        return JSONResponse({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                             "access_token": self._issue()})  # fmt: skip

    async def uaa(self, request: Request) -> JSONResponse:
        form = await _form(request)
        self.forms.append(form)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse(
                {"error": "unauthorized", "error_description": "Bad credentials"},
                status_code=401,
            )
        return JSONResponse({"access_token": self._issue(), "token_type": "bearer", "expires_in": 43199,
                             "scope": "uaa.resource", "jti": secrets.token_hex(8)})  # fmt: skip

    def _issue(self) -> str:
        self.fetches += 1
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def refused(self, request: Request) -> JSONResponse | None:
        """A 401 for a request without a live token, None when it may proceed."""
        header = request.headers.get("authorization", "")
        if header.removeprefix("Bearer ") in self.tokens:
            return None
        return JSONResponse(
            {
                "error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "Access token has expired or is not yet valid.",
                }
            },
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def revoke(self) -> None:
        self.tokens.clear()


async def _form(request: Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
