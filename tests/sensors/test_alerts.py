"""The run-failure alert against a real HTTP receiver on loopback."""

import json
import logging
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    BackfillPolicy,
    Definitions,
    EnvVar,
    HourlyPartitionsDefinition,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from gl_pipelines.resources.alerting import AlertWebhookError, AlertWebhookResource
from gl_pipelines.resources.opcua import OpcUaError
from gl_pipelines.sensors import alerts
from gl_pipelines.sensors.alerts import (
    MAX_ERROR_CHARS,
    RANGE_END_TAG,
    RANGE_START_TAG,
    alert_redelivery,
    build_alert,
    error_line,
    run_failure_alert,
)

TOKEN = "s3cr3t-sig-value"
BEARER = "bearer-xyz-123"
OPC_ERROR = "opc.tcp://127.0.0.1:4840/gl-demo: tag FT101 (ns=2;s=FT101): HistoryRead failed with BadNodeIdUnknown"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers with `statuses` in order, then 200."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    echo_path: bool = False


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, dict(self.headers), body))
            status = state.statuses.pop(0) if state.statuses else 200
            reply = b"ok" if status == 200 else b"invalid_payload"
            if status != 200 and state.echo_path:  # as Slack's "no_service" page and many proxies do
                reply = f"no such hook: POST {self.path}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/gl"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def fast(url: str | None, **overrides) -> AlertWebhookResource:
    return AlertWebhookResource(url=url, timeout_s=2, retry_initial_wait_s=0.01, **overrides)


@asset(
    partitions_def=HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC"),
    backfill_policy=BackfillPolicy.single_run(),
)
def scada_probe() -> None:
    try:
        raise KeyError("ns=2;s=FT101")
    except KeyError as exc:
        raise OpcUaError(OPC_ERROR) from exc


def failed_run(instance, **kwargs):
    result = materialize([scada_probe], instance=instance, raise_on_error=False, **kwargs)
    assert not result.success
    return result


def evaluate(instance, result, url):
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"alert_webhook": fast(url)},
    )
    return run_failure_alert(context)


def test_failed_partition_run_posts_one_alert(receiver, monkeypatch):
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://dagster.plant.local:3000/")
    with instance_for_test() as instance:
        result = failed_run(instance, partition_key="2026-11-01-03:00")
        assert evaluate(instance, result, f"{receiver.url}?sig={TOKEN}") is None

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == f"/hooks/gl?sig={TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    run_id = result.dagster_run.run_id
    assert json.loads(request.body) == {
        "source": "gl-pipelines",
        "run_id": run_id,
        "job": result.dagster_run.job_name,
        "assets": ["scada_probe"],
        "partition": "2026-11-01-03:00",
        "error": f"OpcUaError: {OPC_ERROR} (caused by KeyError: 'ns=2;s=FT101')",
        "failed_steps": ["scada_probe"],
        "dagster_url": f"http://dagster.plant.local:3000/runs/{run_id}",
    }


def test_range_run_reports_start_end(receiver, monkeypatch):
    monkeypatch.delenv("DAGSTER_WEBSERVER_URL", raising=False)
    tags = {RANGE_START_TAG: "2026-11-01-00:00", RANGE_END_TAG: "2026-11-01-23:00"}
    with instance_for_test() as instance:
        evaluate(instance, failed_run(instance, tags=tags), receiver.url)

    alert = json.loads(receiver.requests[0].body)
    assert alert["partition"] == "2026-11-01-00:00..2026-11-01-23:00"
    assert "dagster_url" not in alert


def test_sensor_tick_alerts_every_failed_run_and_reports_failed_delivery(receiver, monkeypatch):
    """Dagster's own tick evaluation: resource bound by key from an EnvVar, cursor, per-run delivery errors."""
    monkeypatch.setenv("GL_ALERT_WEBHOOK_URL", f"{receiver.url}?sig={TOKEN}")
    defs = Definitions(
        assets=[scada_probe],
        sensors=[run_failure_alert],
        resources={"alert_webhook": AlertWebhookResource(url=EnvVar("GL_ALERT_WEBHOOK_URL"), retry_initial_wait_s=0)},
    )
    sensor = defs.resolve_sensor_def("run_failure_alert")
    with instance_for_test() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=defs.resources))
        runs = [failed_run(instance, partition_key=key) for key in ("2026-11-01-03:00", "2026-11-01-04:00")]
        receiver.statuses = [400]
        tick = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=first.cursor, resources=defs.resources)
        )

    assert [json.loads(r.body)["run_id"] for r in receiver.requests] == [r.dagster_run.run_id for r in runs]
    refused, delivered = tick.dagster_run_reactions
    assert delivered.error is None
    assert "alert webhook " + masked(receiver.url) + ": HTTP 400 Bad Request" in refused.error.message
    assert TOKEN not in refused.error.to_string()


def test_server_error_is_retried_then_delivered_once(receiver):
    receiver.statuses = [500]
    fast(receiver.url).post({"run_id": "r1"})
    assert [json.loads(r.body) for r in receiver.requests] == [{"run_id": "r1"}, {"run_id": "r1"}]


def test_persistent_server_error_gives_up_after_retry_attempts(receiver):
    receiver.statuses = [503, 429, 502]
    with pytest.raises(AlertWebhookError, match=r"HTTP 502 Bad Gateway.*after 3 attempt") as raised:
        fast(receiver.url).post({"run_id": "r1"})
    assert raised.value.status == 502
    assert len(receiver.requests) == 3


def test_client_error_is_not_retried_and_hides_query_token(receiver):
    receiver.statuses = [400]
    with pytest.raises(AlertWebhookError) as raised:
        fast(f"{receiver.url}?sig={TOKEN}").post({"run_id": "r1"})
    message = str(raised.value)
    assert message == (
        f"alert webhook {masked(receiver.url)}: HTTP 400 Bad Request: invalid_payload (gave up after 1 attempt(s))"
    )
    assert raised.value.status == 400
    assert TOKEN not in "".join(traceback.format_exception(raised.value, chain=True))
    assert len(receiver.requests) == 1


def test_unreachable_receiver_names_url_without_token():
    with pytest.raises(AlertWebhookError, match=r"ConnectError.*after 2 attempt") as raised:
        fast(f"http://127.0.0.1:9/hooks?sig={TOKEN}", retry_attempts=2).post({})
    assert TOKEN not in str(raised.value)
    assert "http://127.0.0.1:9/hooks" in str(raised.value)


def test_no_url_only_logs(receiver, caplog):
    with caplog.at_level(logging.INFO):
        fast(None).post({"run_id": "r1", "error": "boom"})
    assert receiver.requests == []
    assert '"error": "boom"' in caplog.text


def test_bearer_token_sent_but_never_logged_or_raised(receiver, caplog):
    resource = fast(f"{receiver.url}?sig={TOKEN}", bearer_token=BEARER)
    receiver.statuses = [401]
    with caplog.at_level(logging.DEBUG), pytest.raises(AlertWebhookError) as raised:
        resource.post({"run_id": "r1"})
    with caplog.at_level(logging.DEBUG):
        resource.post({"run_id": "r2"})

    assert [r.headers["Authorization"] for r in receiver.requests] == [f"Bearer {BEARER}"] * 2
    assert "HTTP 401" in str(raised.value)
    assert "alert delivered to" in caplog.text
    for secret in (BEARER, TOKEN):
        assert secret not in str(raised.value)
        assert secret not in caplog.text


def test_error_line_keeps_user_error_and_truncates():
    from dagster._utils.error import SerializableErrorInfo

    cause = SerializableErrorInfo("KeyError: 'x'\n", [], "KeyError")
    user = SerializableErrorInfo("gl_pipelines.resources.opcua.OpcUaError: tag X:\n  bad\n", [], "OpcUaError", cause)
    wrapper = SerializableErrorInfo(
        'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "a":\n',
        [],
        "DagsterExecutionStepExecutionError",
        user,
    )
    assert error_line(wrapper) == "OpcUaError: tag X: bad (caused by KeyError: 'x')"

    alert = build_alert(run_id="r", job="j", assets=[], tags={}, error="e" * 2000, failed_steps=[], webserver_url=None)
    assert len(alert["error"]) == MAX_ERROR_CHARS and alert["error"].endswith("…")
    assert alert["partition"] is None


def test_sensor_definition():
    assert run_failure_alert.name == "run_failure_alert"
    assert run_failure_alert.required_resource_keys == {"alert_webhook"}
    assert run_failure_alert.default_status.value == "RUNNING"


def masked(url: str) -> str:
    """How errors show the receiver's URL: the path past its first segment may hold a secret."""
    return url.rsplit("/", 1)[0] + "/…"


def test_secret_in_the_path_is_masked():
    slack_like = AlertWebhookResource(url="https://hooks.example/services/T000/B000/s3cr3tPathToken?x=1")
    assert slack_like.safe_url == "https://hooks.example/services/…"


PATH_SECRET = "xoxPathS3cretValue42"


def test_receiver_echoing_a_slack_style_path_secret_never_reaches_the_tick_error(receiver, monkeypatch, caplog):
    """Before: the stored tick error held the receiver's body, `no such hook: POST /services/T…/B…/<secret>`."""
    hook = receiver.url.rsplit("/hooks", 1)[0] + f"/services/T0001/B0002/{PATH_SECRET}"
    monkeypatch.setenv("GL_ALERT_WEBHOOK_URL", hook)
    receiver.echo_path = True
    defs = Definitions(
        assets=[scada_probe],
        sensors=[run_failure_alert],
        resources={"alert_webhook": AlertWebhookResource(url=EnvVar("GL_ALERT_WEBHOOK_URL"), retry_initial_wait_s=0)},
    )
    sensor = defs.resolve_sensor_def("run_failure_alert")
    with instance_for_test() as instance, caplog.at_level(logging.DEBUG):
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=defs.resources))
        failed_run(instance, partition_key="2026-11-01-03:00")
        receiver.statuses = [404]
        tick = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=first.cursor, resources=defs.resources)
        )
    (refused,) = tick.dagster_run_reactions
    assert receiver.requests[0].path == f"/services/T0001/B0002/{PATH_SECRET}"  # the receiver did echo it
    assert refused.error.message.strip().endswith(
        "HTTP 404 Not Found: no such hook: POST /services/*** (gave up after 1 attempt(s))"
    )
    for text in (refused.error.to_string(), caplog.text):
        assert PATH_SECRET not in text


def test_alert_body_error_is_scrubbed():
    error = (
        "HttpSourceError: pi: GET https://pi-reader:Hunter2Pass@pi.example/piwebapi -> HTTP 401; "
        "body: 'you sent Authorization: Basic cGktcmVhZGVyOkh1bnRlcjJQYXNz' via https://hooks.slack.com/services/T1/B2/zzz"
    )
    alert = build_alert(run_id="r", job="j", assets=[], tags={}, error=error, failed_steps=[])
    assert alert["error"] == (
        "HttpSourceError: pi: GET https://***@pi.example/piwebapi -> HTTP 401; "
        "body: 'you sent Authorization: ***' via https://hooks.slack.com/services/***"
    )


def redeliver(instance, url):
    context = build_sensor_context(instance=instance, resources={"alert_webhook": fast(url, retry_attempts=1)})
    return alert_redelivery(context).skip_message


def test_undelivered_alert_is_posted_again_until_delivered(receiver):
    """The receiver refuses the alert and its first redelivery (HTTP 503), then takes it: the same payload
    arrives three times, the run's tags count the attempts and the sensor's skip reason says what happened."""
    with instance_for_test() as instance:
        result = failed_run(instance, partition_key="2026-11-01-03:00")
        run_id = result.dagster_run.run_id
        receiver.statuses = [503]
        context = build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"alert_webhook": fast(receiver.url, retry_attempts=1)},
        )
        with pytest.raises(AlertWebhookError, match="HTTP 503"):
            run_failure_alert(context)
        tags = instance.get_run_by_id(run_id).tags
        assert (tags["gl/alert"], tags["gl/alert_attempts"]) == ("pending", "1")

        receiver.statuses = [503]
        first = redeliver(instance, receiver.url)
        tags = instance.get_run_by_id(run_id).tags
        assert (tags["gl/alert"], tags["gl/alert_attempts"]) == ("pending", "2")
        second = redeliver(instance, receiver.url)
        tags = instance.get_run_by_id(run_id).tags
        assert (tags["gl/alert"], tags["gl/alert_attempts"]) == ("delivered", "3")
        third = redeliver(instance, receiver.url)

    assert first == (
        "0 alert(s) redelivered, 1 still pending, 0 expired\n"
        f"pending: {run_id} (2 attempts; alert webhook {masked(receiver.url)}: HTTP 503 Service Unavailable:"
        " invalid_payload (gave up after 1 attempt(s)))"
    )
    assert second == f"1 alert(s) redelivered, 0 still pending, 0 expired\ndelivered: {run_id} at attempt 3"
    assert third == "0 alert(s) redelivered, 0 still pending, 0 expired"
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["run_id"] == run_id and bodies[0]["partition"] == "2026-11-01-03:00"


def test_alert_older_than_the_expiry_is_dropped(receiver, monkeypatch):
    with instance_for_test() as instance:
        result = failed_run(instance)
        run_id = result.dagster_run.run_id
        instance.add_run_tags(run_id, {"gl/alert": "pending", "gl/alert_attempts": "4", "gl/alert_payload": "{}"})
        monkeypatch.setattr(alerts, "ALERT_EXPIRY_S", 0)
        reason = redeliver(instance, receiver.url)
        assert instance.get_run_by_id(run_id).tags["gl/alert"] == "expired"
    assert reason == f"0 alert(s) redelivered, 0 still pending, 1 expired\nexpired: {run_id} after 4 attempt(s)"
    assert receiver.requests == []
