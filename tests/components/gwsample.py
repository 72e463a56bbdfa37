"""SAP's GWSAMPLE_BASIC service as far as a test needs it: its real `$metadata` and the published
SalesOrderSet records (shared/data/sap, see its README), served over HTTP with $top/$skip/$inlinecount."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SAP_DATA = Path("/work/shared/data/sap")
METADATA = SAP_DATA / "gwsample_basic_real_metadata" / "GWSAMPLE_BASIC_metadata.xml"
SALES_ORDERS = SAP_DATA / "openui5_gwsample_basic" / "SalesOrderSet.json"
SERVICE_PATH = "/sap/opu/odata/IWBEP/GWSAMPLE_BASIC/"


def gwsample_app() -> Starlette:
    orders = json.loads(SALES_ORDERS.read_text())

    async def metadata(request: Request) -> Response:
        return Response(METADATA.read_bytes(), media_type="application/xml")

    async def sales_orders(request: Request) -> JSONResponse:
        skip = int(request.query_params.get("$skip", 0))
        top = int(request.query_params.get("$top", len(orders)))
        selected = request.query_params.get("$select")
        rows = orders[skip : skip + top]
        if selected:
            rows = [{name: row[name] for name in selected.split(",")} for row in rows]
        body = {"results": rows}
        if request.query_params.get("$inlinecount") == "allpages":
            body["__count"] = str(len(orders))
        return JSONResponse({"d": body})

    return Starlette(
        routes=[
            Route(SERVICE_PATH + "$metadata", metadata, methods=["GET"]),
            Route(SERVICE_PATH + "SalesOrderSet", sales_orders, methods=["GET"]),
        ]
    )
