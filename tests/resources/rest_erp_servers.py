"""Oracle Fusion REST and Workday (RaaS, REST) services shaped from the vendors' references, for the dialect tests.

Oracle (docs.oracle.com/en/cloud/saas/human-resources/farws/Navigate_a_Collection.html and the ADF
REST `describe`, error body `application/vnd.oracle.adf.error+json` with `o:errorDetails`): `items`,
`hasMore`, `totalResults`, `limit`/`offset`, `q=` on a `date` attribute, `onlyData`, `fields`; basic auth
or a bearer token from an OAuth2 client-credentials endpoint (Oracle Identity Cloud Service's
`/oauth2/v1/token`).
Workday (apis.io/apis/workday/raas-api, the RaaS OpenAPI; apis.io/examples/workday-integrations/
workday-integrations-list-workers-example): `Report_Entry` with dates like `2026-11-01-06:00`, the
report schema at `?xsd`, REST `{"total", "data"}` at limit 100.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.resources.vendor_auth import TokenIssuer

USER, PASSWORD = "GL_INTEGRATION", "fusion-Pa55-never-logged-31f7"
ORACLE_ROOT = "/fscmRestApi/resources/11.13.18.05/"
ORACLE_ATTRIBUTES = {"TransactionId": "integer", "ReceiptNumber": "string", "ReceiptLineNumber": "string",
                     "TransactionDate": "date", "OrganizationCode": "string", "ItemNumber": "string",
                     "Quantity": "number", "UnitOfMeasure": "string", "Amount": "number", "CurrencyCode": "string",
                     "LastUpdateDate": "datetime"}  # fmt: skip
IDCS_TOKEN_PATH = "/oauth2/v1/token"


def _basic_ok(request: Request) -> bool:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return request.headers.get("authorization") == expected


@dataclass
class Fusion:
    """30 receipts, three per plant day from 2026-11-01; pages of at most 4 items (as a busy pod caps `limit`)."""

    rows: list[dict] = field(
        default_factory=lambda: [
            {"TransactionId": 300100 + k, "ReceiptNumber": f"RCV{k:04d}",
             "TransactionDate": (date(2026, 11, 1) + timedelta(days=k // 3)).isoformat(), "OrganizationCode": "P1",
             "ItemNumber": "NATGAS", "Quantity": float(Decimal(k) + Decimal("0.5")), "UnitOfMeasure": "MMBtu",
             "LastUpdateDate": "2026-11-05T09:12:42.001+00:00", "ReceiptLineNumber": "1", "Amount": k * 3.25,
             "CurrencyCode": "USD"}
            for k in range(30)
        ]
    )  # fmt: skip
    fault: str | None = None
    queries: list[dict] = field(default_factory=list)
    issuer: TokenIssuer = field(default_factory=TokenIssuer)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                # Oracle Identity Cloud Service's token endpoint: the client as HTTP Basic, as UAA does.
                Route(IDCS_TOKEN_PATH, self.issuer.uaa, methods=["POST"]),
                Route(ORACLE_ROOT + "receivingReceiptTransactions/describe", self.describe),
                Route(ORACLE_ROOT + "receivingReceiptTransactions", self.collection),
            ]
        )

    def refused(self, request: Request) -> Response | None:
        if self.fault == "login_page":
            return Response("<html><body>Oracle Cloud sign in</body></html>", media_type="text/html")
        if self.fault in ("expire", "expired"):  # a token expires before its first use: once, or every time
            self.fault = None if self.fault == "expire" else self.fault
            self.issuer.revoke()
        if not (_basic_ok(request) or self.issuer.refused(request) is None):
            return Response("", status_code=401, headers={"WWW-Authenticate": 'Basic realm="fusion"'})
        return None

    async def describe(self, request: Request) -> Response:
        attributes = [{"name": name, "type": kind, "updatable": False} for name, kind in ORACLE_ATTRIBUTES.items()]
        body = {"Resources": {"receivingReceiptTransactions": {"attributes": attributes, "links": []}}}
        return self.refused(request) or JSONResponse(body, media_type="application/vnd.oracle.adf.description+json")

    async def collection(self, request: Request) -> Response:
        refusal = self.refused(request)
        if refusal:
            return refusal
        params = dict(request.query_params)
        self.queries.append(params)
        if "Bogus" in params.get("q", ""):
            return JSONResponse(
                {"title": "Bad Request", "status": "400",
                 "o:errorDetails": [{"detail": "URL request parameter q with value Bogus = 1 is not valid.",
                                     "o:errorCode": "27501"}]},
                status_code=400,
                media_type="application/vnd.oracle.adf.error+json",
            )  # fmt: skip
        q = params["q"].split("'")
        low, high = q[3], q[5]
        rows = [r for r in self.rows if low <= r["TransactionDate"] < high]
        offset, limit = int(params["offset"]), min(int(params["limit"]), 4)
        page = rows[offset : offset + limit]
        body = {"items": page, "count": len(page), "hasMore": offset + limit < len(rows), "limit": limit,
                "offset": offset, "totalResults": len(rows)}  # fmt: skip
        if self.fault == "malformed" and offset:
            body["hasMore"] = "yes"
        return Response(json.dumps(body), media_type="application/vnd.oracle.adf.resourcecollection+json")


# -- Workday --------------------------------------------------------------------------------------

TENANT = "plantco"
REPORT = "GL_Plant_Hours_Worked"
REPORT_PATH = f"/ccx/service/customreport2/{TENANT}/ISU_GL/{REPORT}"
XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wd="urn:com.workday.report/GL_Plant_Hours_Worked"
            targetNamespace="urn:com.workday.report/GL_Plant_Hours_Worked" elementFormDefault="qualified">
  <xsd:element name="Report_Data"><xsd:complexType><xsd:sequence>
    <xsd:element name="Report_Entry" minOccurs="0" maxOccurs="unbounded"><xsd:complexType><xsd:sequence>
      <xsd:element name="Time_Block_ID" type="xsd:string"/>
      <xsd:element name="Worker_ID" type="xsd:string"/>
      <xsd:element name="Location" type="xsd:string"/>
      <xsd:element name="Reported_Date" type="xsd:date"/>
      <xsd:element name="Hours" type="xsd:decimal"/>
    </xsd:sequence></xsd:complexType></xsd:element>
  </xsd:sequence></xsd:complexType></xsd:element>
</xsd:schema>"""


@dataclass
class Workday:
    """A RaaS report whose prompts are inclusive at both ends and which adds one row of the day after
    (a report's filter is the report author's), plus a REST collection of workers."""

    fault: str | None = None
    prompts: list[dict] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(REPORT_PATH, self.report),
                Route(f"/ccx/api/staffing/v6/{TENANT}/workers", self.workers),
            ]
        )

    async def report(self, request: Request) -> Response:
        if not _basic_ok(request):
            return JSONResponse({"error": "invalid username or password"}, status_code=401)
        if "xsd" in request.query_params:
            return Response(XSD, media_type="application/xml")
        self.prompts.append(dict(request.query_params))
        if self.fault == "html":
            return Response("<html>Workday: sign in</html>", media_type="text/html")
        if self.fault == "prompt":
            errors = [{"error": "Invalid date", "field": "Start_Date"}]
            return JSONResponse({"error": "Validation error occurred. Invalid prompt value", "errors": errors}, 400)
        entries = [
            {"Time_Block_ID": f"TB{k}", "Worker_ID": f"W{k % 3}", "Location": "P1",
             "Reported_Date": f"2026-11-0{2 + k // 4}-06:00", "Hours": f"{7 + k}.25"}
            for k in range(5)
        ]  # fmt: skip
        if self.fault == "malformed":
            return JSONResponse({"Report_Entry": {"Time_Block_ID": "TB0"}})
        return JSONResponse({"Report_Entry": entries})

    async def workers(self, request: Request) -> Response:
        if not _basic_ok(request):
            return JSONResponse({"error": "invalid username or password"}, status_code=401)
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        data = [{"id": f"w{k:03d}", "descriptor": f"Worker {k}", "hireDate": "2022-03-15", "fte": "1.0"}
                for k in range(230)][offset : offset + limit]  # fmt: skip
        return JSONResponse({"total": 230, "data": data})
