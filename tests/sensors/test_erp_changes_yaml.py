"""The ERP change sensor of an OData instance declared in YAML, for generic dated entity sets (no report
role): against the demo SAP service, a changed document makes the sensor ask for a re-run of exactly its
stored plant day, by delta link for a change-tracked set and by full comparison for one without."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pytest
from dagster import AssetKey, AssetSelection, build_sensor_context, instance_for_test

from gl_demo_plant.erp_model import ErpModel
from gl_demo_plant.http_server import HttpServerThread
from gl_demo_plant.sap_odata import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SERVICE_PATH, DemoSapODataService
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.sensors.erp_changes import CHANGE_TAG
from tests.components.project import SITE, load_project
from tests.runs import run

TZ = "America/Chicago"
# The sensor reads its own clock: the service's documents and the stored days are placed around today.
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = [(TODAY - timedelta(days=n)).strftime("%Y-%m-%d") for n in (4, 3)]

SAP = """type: gl_pipelines.components.odata.ODataComponent
attributes:
  service_url: {url}
  auth: oauth2
  token_url: /oauth/token
  client_id_env: GL_TEST_ERP_ID
  client_secret_env: GL_TEST_ERP_SECRET
  units: {{M3: m**3}}
  currencies: [USD]
  change_lookback_days: 14
  entity_sets:
    - name: gas_deliveries          # change-tracked in the service: read by delta link
      entity_set: GoodsReceiptSet
      key: [document, item]
      date_column: posting_date
      fields: {{document: MaterialDocument, item: DocumentItem, posting_date: PostingDate, quantity: Quantity,
               unit: Unit}}
    - name: work_orders             # no change tracking: compared in full each tick
      entity_set: MaintenanceOrderSet
      key: [order]
      date_column: created_on
      fields: {{order: MaintenanceOrder, description: Description, created_on: CreatedOn}}
"""


@pytest.fixture
def sap(monkeypatch):
    monkeypatch.setenv("GL_TEST_ERP_ID", DEMO_CLIENT_ID)
    monkeypatch.setenv("GL_TEST_ERP_SECRET", DEMO_CLIENT_SECRET)
    service = DemoSapODataService(ErpModel(start=TODAY - timedelta(days=8), end=TODAY + timedelta(days=1)))
    with HttpServerThread(service.app, name="demo-sap-odata") as server:
        service.url = server.url
        yield service


def test_a_changed_document_of_a_generic_set_reruns_exactly_its_stored_day(sap, tmp_path):
    project = tmp_path / "project"
    files = {
        "hq/site/defs.yaml": SITE.format(timezone=TZ),
        "hq/sap/defs.yaml": SAP.format(url=sap.url + SERVICE_PATH),
    }
    defs = load_project(project, files)
    warehouse = project / "w.duckdb"
    keys = {name: AssetKey(["hq", "sap", name]) for name in ("gas_deliveries", "work_orders")}
    sensor = defs.resolve_sensor_def("hq__sap__erp_document_changes")
    assert sensor.job_name == "hq__sap__erp_daily_job"
    resources = {name: defs.resources[name] for name in ("odata__hq__sap", "warehouse_reader")}

    with instance_for_test() as instance:

        def tick(cursor):
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources=resources, repository_def=defs.get_repository_def()
            )
            data = sensor.evaluate_tick(context)
            return {request.partition_key: request for request in data.run_requests}, data.cursor

        def stored_day(name: str, day: str) -> pd.DataFrame:
            column = "posting_date" if name == "gas_deliveries" else "created_on"
            with duckdb.connect(str(warehouse), read_only=True) as connection:
                frame = connection.execute(f"SELECT * FROM plant.{table_name(keys[name])}").fetchdf()
            local = pd.to_datetime(frame[column], utc=True).dt.tz_convert(TZ).dt.strftime("%Y-%m-%d")
            return frame[local == day]

        for day in DAYS:
            assert run(defs, instance, AssetSelection.assets(*keys.values()), partition_key=day).success

        requests, cursor = tick(None)
        assert requests == {}  # the first, full look agrees with what is stored
        links = json.loads(cursor)["delta_links"]
        assert links["gas_deliveries"] and links["work_orders"] is None

        receipt = stored_day("gas_deliveries", DAYS[0]).sort_values("document").iloc[0]
        order = stored_day("work_orders", DAYS[1]).sort_values("order").iloc[0]
        sap.model.update(
            "GoodsReceiptSet",
            {"MaterialDocument": receipt["document"], "DocumentItem": receipt["item"]},
            Quantity=Decimal("1.500"),
        )
        sap.model.update("MaintenanceOrderSet", {"MaintenanceOrder": order["order"]}, Description="Seal replaced")

        requests, cursor = tick(cursor)
        assert sorted(requests) == DAYS  # each change's own stored day, nothing else
        assert requests[DAYS[0]].tags[CHANGE_TAG] == "gas_deliveries"
        assert requests[DAYS[1]].tags[CHANGE_TAG] == "work_orders"

        for day in requests:
            assert run(defs, instance, AssetSelection.assets(*keys.values()), partition_key=day).success
        changed = stored_day("gas_deliveries", DAYS[0])
        assert changed.loc[changed["document"] == receipt["document"], "quantity"].tolist() == [1.5]
        assert "Seal replaced" in stored_day("work_orders", DAYS[1])["description"].tolist()
        requests, _ = tick(cursor)
        assert requests == {}  # re-read: the warehouse agrees with the service again
