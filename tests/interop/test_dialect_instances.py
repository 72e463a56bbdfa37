"""The dialect site (tests/interop/dialect_site: one YAML instance per dialect of issue #19) loads as a code
location, and each instance stores its plant day from a vendor-shaped server with the OData entity sets'
blocking checks; bad input fails naming the instance, and what is stored stays as it was.

The Oracle Fusion and Workday servers are ours, written from the vendors' published references
(tests/resources/rest_erp_servers.py names the pages); the Proficy one is tests/resources/test_proficy.py's.
The OData v4 instance is run against SAP's own mock server in test_odata_v4_delta.py.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from gl_demo_plant.http_server import HttpServerThread
from gl_pipelines.resources.oracle_fusion import OracleFusionResource
from gl_pipelines.resources.proficy import ProficyHistorianResource
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.workday import WorkdayResource
from tests.components.project import load_project
from tests.resources.rest_erp_servers import ORACLE_ROOT, PASSWORD, USER, Fusion, Workday
from tests.resources.test_proficy import ROOT as PROFICY_ROOT
from tests.resources.test_proficy import Historian
from tests.resources.vendor_auth import CLIENT_ID, CLIENT_SECRET

SITE_DIR = Path(__file__).parent / "dialect_site"
SITE = "dialects"
DAY = "2026-11-02"
# The ERP assets' own Dagster beta/preview options (backfill policy, partitioned check specs) warn.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")


def site_files(**edits: tuple[str, str]) -> dict[str, str]:
    """The dialect site's defs.yaml files under `dialects/`; `edits`: instance -> (old text, new text)."""
    files = {}
    for path in sorted(SITE_DIR.glob("*/defs.yaml")):
        text = path.read_text()
        old, new = edits.get(path.parent.name, ("", ""))
        if old:
            assert old in text, f"{old!r} not in {path}"
            text = text.replace(old, new)
        files[f"{SITE}/{path.parent.name}/defs.yaml"] = text
    return files


def load_site(root: Path, **edits: tuple[str, str]):
    return load_project(root, site_files(**edits))


def failures(result) -> str:
    """Every step failure's error text (with its causes)."""
    errors = [event.event_specific_data.error for event in result.all_events if event.is_step_failure]
    return "\n".join(error.to_string() for error in errors)


def stored(root: Path, key: AssetKey, columns: str) -> list[tuple]:
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as con:
        return con.execute(f"select {columns} from plant.{table_name(key)}").fetchall()


def test_the_dialect_site_loads_one_instance_per_dialect(tmp_path):
    defs = load_site(tmp_path)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "dialects/s4_cloud/erp_fuel_receipts",
        "dialects/fusion/receipts",
        "dialects/workday/hours_worked",
        "dialects/workday/workers",
        "dialects/proficy/proficy_recorded",
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert {"receipts_keys_unique", "receipts_required_present", "receipts_in_window"} <= checks
    assert {"hours_worked_keys_unique", "hours_worked_required_present", "hours_worked_in_window"} <= checks
    assert {"workers_keys_unique", "workers_required_present"} <= checks
    assert isinstance(defs.resources["oracle_fusion__dialects__fusion"], OracleFusionResource)
    assert isinstance(defs.resources["workday__dialects__workday"], WorkdayResource)
    assert isinstance(defs.resources["proficy__dialects__proficy"], ProficyHistorianResource)
    assert graph.get(AssetKey([SITE, "workday", "workers"])).partitions_def is None  # replaced whole
    assert graph.get(AssetKey([SITE, "workday", "hours_worked"])).group_name == SITE
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert schedules["dialects__workday__workday_daily_job_schedule"].execution_timezone == "America/Chicago"
    assert "dialects__workday__workday_refresh_job_schedule" in schedules
    assert "dialects__fusion__erp_daily_job_schedule" in schedules
    sensors = {sensor.name for sensor in defs.sensors}
    assert {
        "dialects__s4_cloud__erp_document_changes",
        "dialects__fusion__erp_document_changes",
        *(f"dialects__{name}__source_health" for name in ("s4_cloud", "fusion", "workday", "proficy")),
    } <= sensors


@pytest.fixture
def fusion(monkeypatch):
    service = Fusion()
    with HttpServerThread(service.app(), name="fusion-like") as server:
        service.url = server.url
        monkeypatch.setenv("GL_TEST_FUSION_URL", server.url + ORACLE_ROOT)
        monkeypatch.setenv("GL_TEST_FUSION_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("GL_TEST_FUSION_CLIENT_SECRET", CLIENT_SECRET)
        yield service


def test_a_fusion_instance_stores_its_day_and_bad_input_changes_nothing(fusion, tmp_path, monkeypatch):
    defs = load_site(tmp_path)
    key = AssetKey([SITE, "fusion", "receipts"])

    def day(definitions=defs):
        result = materialize(
            [definitions.resolve_assets_def(key)],
            instance=DagsterInstance.ephemeral(),
            partition_key=DAY,
            raise_on_error=False,
        )
        return result, stored(tmp_path, key, "count(*), sum(quantity), min(source), min(transaction)")

    result, before = day()
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "receipts_keys_unique": True,
        "receipts_required_present": True,
        "receipts_in_window": True,
    }
    assert before == [(3, Decimal("13.5"), "dialects/fusion", 300103)]  # RCV0003-5: 3.5 + 4.5 + 5.5
    assert [query["offset"] for query in fusion.queries] == ["0", "2"]  # page_size 2: two pages
    assert fusion.queries[0]["q"] == (
        "OrganizationCode = 'P1' and TransactionDate >= '2026-11-02' and TransactionDate < '2026-11-03'"
    )
    fusion.fault = "expire"  # the token expires before its first use: replaced once, the day stored again
    result, again = day()
    assert result.success and again == before

    bad = {
        "login_page": r"dialects/fusion: GET \S*/describe -> HTTP 200: expected a JSON",
        "malformed": r"dialects/fusion: receivingReceiptTransactions: hasMore is 'yes'",
        "expired": r"dialects/fusion: GET \S*/describe -> HTTP 401",
    }
    for fault, message in bad.items():
        fusion.fault = fault
        result, after = day()
        assert not result.success and re.search(message, failures(result)), (fault, failures(result)[-2000:])
        assert after == before, fault
    fusion.fault = None
    monkeypatch.setenv("GL_TEST_FUSION_CLIENT_SECRET", "rotated-Secret-of-last-week")  # read at launch
    result, after = day()
    assert not result.success and after == before
    assert "AADSTS" not in failures(result) and "rotated-Secret" not in failures(result)
    assert re.search(r"dialects/fusion: POST \S*/oauth2/v1/token -> HTTP 401", failures(result)), failures(result)
    monkeypatch.setenv("GL_TEST_FUSION_CLIENT_SECRET", CLIENT_SECRET)

    unknown = load_site(tmp_path, fusion=("amount: Amount", "amount: Amount, lot: LotNumber"))
    result, after = day(unknown)
    message = "dialects/fusion: resource 'receivingReceiptTransactions' has no property 'LotNumber'"
    assert not result.success and message in failures(result) and after == before


@pytest.fixture
def workday(monkeypatch):
    service = Workday()
    with HttpServerThread(service.app(), name="workday-like") as server:
        service.url = server.url
        monkeypatch.setenv("GL_TEST_WORKDAY_URL", server.url + "/ccx/")
        monkeypatch.setenv("GL_TEST_WORKDAY_USER", USER)
        monkeypatch.setenv("GL_TEST_WORKDAY_PASSWORD", PASSWORD)
        yield service


def test_a_workday_instance_stores_its_report_day_and_its_workers(workday, tmp_path):
    defs = load_site(tmp_path)
    hours, workers = AssetKey([SITE, "workday", "hours_worked"]), AssetKey([SITE, "workday", "workers"])
    result = materialize([defs.resolve_assets_def(hours)], instance=DagsterInstance.ephemeral(), partition_key=DAY)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        "hours_worked_keys_unique",
        "hours_worked_required_present",
        "hours_worked_in_window",
    }
    # TB0-TB3 are the plant day's; TB4 (the day after, in the report's answer) is not kept.
    assert stored(tmp_path, hours, "count(*), sum(hours), min(source)") == [(4, Decimal("35.000"), "dialects/workday")]
    assert workday.prompts == [
        {"Location": "P1", "format": "json", "Start_Date": "2026-11-02-06:00", "End_Date": "2026-11-02-06:00"}
    ]
    result = materialize([defs.resolve_assets_def(workers)], instance=DagsterInstance.ephemeral())
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert stored(tmp_path, workers, "count(*), sum(fte), min(hired)")[0][:2] == (230, Decimal("230.000"))


def test_bad_workday_input_names_the_instance_and_changes_nothing(workday, tmp_path, monkeypatch):
    defs = load_site(tmp_path)
    key = AssetKey([SITE, "workday", "hours_worked"])

    def day(definitions=defs):
        result = materialize(
            [definitions.resolve_assets_def(key)],
            instance=DagsterInstance.ephemeral(),
            partition_key=DAY,
            raise_on_error=False,
        )
        return result, stored(tmp_path, key, "count(*), sum(hours)")

    result, before = day()
    assert result.success and before == [(4, Decimal("35.000"))]
    report = "dialects/workday: report ISU_GL/GL_Plant_Hours_Worked"
    bad = {
        "html": r"dialects/workday: GET \S* -> HTTP 200: expected a JSON content type",
        "malformed": report + r": not a RaaS JSON answer",
        "prompt": report + r": HTTP 400 from the server: Validation error occurred\. Invalid prompt value; "
        r"Start_Date: Invalid date",
    }
    for fault, message in bad.items():
        workday.fault = fault
        result, after = day()
        assert not result.success and re.search(message, failures(result)), (fault, failures(result)[-2000:])
        assert after == before, fault
    workday.fault = None
    monkeypatch.setenv("GL_TEST_WORKDAY_PASSWORD", "expired-Pa55-of-last-quarter")
    result, after = day()
    assert not result.success and after == before
    assert f"{report}: HTTP 401 from the server: invalid username or password" in failures(result)
    assert "expired-Pa55" not in failures(result)
    monkeypatch.setenv("GL_TEST_WORKDAY_PASSWORD", PASSWORD)

    unknown = load_site(tmp_path, workday=("hours: Hours}", "hours: Hours, cost: Cost_Center}"))
    result, after = day(unknown)
    message = "dialects/workday: resource 'GL_Plant_Hours_Worked' has no property 'Cost_Center'"
    assert not result.success and message in failures(result) and after == before


def test_the_proficy_instance_stores_its_day(tmp_path, monkeypatch):
    service = Historian()
    with HttpServerThread(service.app(), name="proficy-like") as server:
        monkeypatch.setenv("GL_TEST_PROFICY_URL", server.url + PROFICY_ROOT)
        monkeypatch.setenv("GL_TEST_PROFICY_SECRET", CLIENT_SECRET)
        defs = load_site(tmp_path)
        key = AssetKey([SITE, "proficy", "proficy_recorded"])
        result = materialize([defs.resolve_assets_def(key)], instance=DagsterInstance.ephemeral(), partition_key=DAY)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert stored(tmp_path, key, "count(*), count(distinct tag), min(source)") == [(2880, 2, "proficy-plant")]


def _load_error(root: Path, **edits: tuple[str, str]) -> str:
    with pytest.raises(Exception) as raised:
        load_site(root, **edits)
    error, messages = raised.value, []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def test_a_typo_or_a_missing_secret_name_in_a_dialect_instance_is_refused_at_load(tmp_path):
    typo = _load_error(tmp_path / "a", workday=("      date_column: work_date\n", "      date_colum: work_date\n"))
    assert "dialects/workday/defs.yaml" in typo and "date_colum" in typo
    bad_type = _load_error(tmp_path / "b", workday=("fte: decimal}", "fte: money}"))
    assert "dialects/workday/defs.yaml" in bad_type and "workers: type 'fte: money' is not one of" in bad_type
    unmapped = _load_error(tmp_path / "c", workday=("required: [name]", "required: [name, site]"))
    assert "workers: site must be in fields" in unmapped
    no_secret = _load_error(tmp_path / "d", fusion=("  client_secret_env: GL_TEST_FUSION_CLIENT_SECRET\n", ""))
    assert "dialects/fusion/defs.yaml" in no_secret and "client_secret_env" in no_secret
    no_password = _load_error(tmp_path / "e", workday=("  password_env: GL_TEST_WORKDAY_PASSWORD\n", ""))
    assert "auth 'basic' needs password_env" in no_password


def test_the_fusion_change_sensor_compares_in_full_and_re_reads_a_corrected_day(fusion, tmp_path):
    defs = load_site(tmp_path)
    key, instance = AssetKey([SITE, "fusion", "receipts"]), DagsterInstance.ephemeral()
    assert materialize([defs.resolve_assets_def(key)], instance=instance, partition_key=DAY).success
    sensor = defs.resolve_sensor_def("dialects__fusion__erp_document_changes")
    assert sensor.minimum_interval_seconds == 3600  # each look reads the whole look-back window
    resources = {name: defs.resources[name] for name in ("oracle_fusion__dialects__fusion", "warehouse_reader")}

    def tick(cursor):
        repository = defs.get_repository_def()
        with build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, repository_def=repository
        ) as context:
            data = sensor.evaluate_tick(context)
        return [request.partition_key for request in data.run_requests], data.cursor

    requests, cursor = tick(None)
    assert requests == [] and '"delta_links": {"receipts": null}' in cursor
    fusion.rows[4]["Quantity"] = 40.5  # RCV0004 of 2026-11-02 corrected in the ERP
    assert tick(cursor)[0] == [DAY]
