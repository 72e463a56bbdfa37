"""HistorianResource against the demo PI Web API over loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from gl_demo_plant.pi_web_api import Mark
from gl_demo_plant.plant_model import PROCESS_TAGS, sample_times
from gl_pipelines.resources.historian import HistorianError, HistorianResource, PiTag, quality_and_status, split_window
from gl_pipelines.resources.http import HttpResponseFormatError, HttpSourceError
from tests.expected import expected_readings
from tests.fixtures_historian import PI_CLIENT_ID, PI_CLIENT_SECRET

START = datetime(2026, 11, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
CHICAGO = ZoneInfo("America/Chicago")
NAMES = [t.name for t in PROCESS_TAGS]


def resource(pi, **overrides) -> HistorianResource:
    settings = {"backoff_initial_s": 0.01, "backoff_max_s": 2.0, "max_attempts": 4, "source_name": "test-pi"}
    return HistorianResource(base_url=pi.url, data_server="DEMO-PI", **(settings | overrides))


def tags(res: HistorianResource, names=NAMES) -> list[PiTag]:
    units = {t.name: t.unit for t in PROCESS_TAGS} | {f"Synthetic.T{i:04d}": "percent" for i in range(1, 100)}
    return [PiTag(n, res.point_path(n), units[n]) for n in names]


def assert_model_values(frame: pd.DataFrame, names, start, end) -> None:
    expected = expected_readings(list(names), start, end)
    got = frame.sort_values(["tag", "ts"], ignore_index=True)
    assert len(got) == len(expected)
    assert (got["ts"] == expected["ts"]).all()
    assert (got["tag"] == expected["tag"]).all()
    np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy())
    # The OPC UA server's uncertain samples are PI's Questionable ones: same process, same flags.
    np.testing.assert_array_equal(
        got["quality"].to_numpy(), np.where(expected["status_code"] == 0, "good", "uncertain").astype(object)
    )


def test_reads_exact_model_values_for_every_tag(pi):
    res = resource(pi)
    read = res.read_recorded(tags(res), START, START + 2 * HOUR)
    assert_model_values(read.frame, NAMES, START, START + 2 * HOUR)
    assert list(read.frame.columns) == ["ts", "tag", "value", "unit", "quality", "status", "source"]
    assert set(read.frame["source"]) == {"test-pi"} and str(read.frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert len(read.payload_sha256) == 64
    assert pi.stats.streamset_requests == 1 and pi.stats.webids_per_streamset == [6]


def test_pages_across_max_count_without_loss_or_duplicates(pi):
    res = resource(pi, max_count=100)
    read = res.read_recorded(tags(res), START, START + HOUR)  # 360 values per tag: pages of 100, 100, 100, 63
    assert_model_values(read.frame, NAMES, START, START + HOUR)
    assert not read.frame.duplicated(["tag", "ts"]).any()
    assert read.pages == 4 == pi.stats.streamset_requests
    boundary = START + timedelta(seconds=990)  # last value of page 1, first value of page 2
    assert (read.frame["ts"] == boundary).sum() == len(NAMES)


def test_duplicate_timestamp_across_a_page_boundary_is_kept_once_each(pi):
    boundary = START + timedelta(seconds=990)
    pi.faults.duplicate_at["Boiler1.SteamFlow"] = boundary  # two events at the page's last timestamp
    res = resource(pi, max_count=100)
    frame = res.read_recorded(tags(res, ["Boiler1.SteamFlow"]), START, START + HOUR).frame
    assert len(frame) == 361
    assert (frame["ts"] == boundary).sum() == 2


def test_more_events_at_one_timestamp_than_max_count_is_an_error(pi):
    pi.faults.duplicate_at["Boiler1.SteamFlow"] = START + timedelta(seconds=10)
    res = resource(pi, max_count=2)
    with pytest.raises(HistorianError, match=r"Boiler1.SteamFlow .* more than maxCount=2 events"):
        res.read_recorded(tags(res, ["Boiler1.SteamFlow"]), START, START + timedelta(minutes=1))


def test_end_is_exclusive_and_long_windows_are_split(pi):
    res = resource(pi, window_hours=0.5, tags_per_request=4)
    read = res.read_recorded(tags(res), START, START + 2 * HOUR)
    assert_model_values(read.frame, NAMES, START, START + 2 * HOUR)
    assert read.frame["ts"].max() == START + 2 * HOUR - timedelta(seconds=10)
    assert pi.stats.streamset_requests == 4 * 2  # four windows x two tag batches
    assert sorted(pi.stats.webids_per_streamset) == [2, 2, 2, 2, 4, 4, 4, 4]


def test_values_outside_the_window_are_dropped_and_counted_per_tag(pi):
    """A value before startTime, one past endTime in the middle of the stream, and PI's inclusive end."""
    pi.faults.outside_window["Boiler1.SteamFlow"] = 10
    res = resource(pi)
    read = res.read_recorded(tags(res), START, START + HOUR)
    assert_model_values(read.frame, NAMES, START, START + HOUR)
    assert read.frame["ts"].min() == START and read.frame["ts"].max() == START + HOUR - timedelta(seconds=10)
    # every stream ends with the value stamped at endTime; SteamFlow has the two strays besides
    assert read.dropped_outside_window == dict.fromkeys(sorted(NAMES), 1) | {"Boiler1.SteamFlow": 3}


def test_split_windows_count_each_pieces_end_value_once(pi):
    res = resource(pi, window_hours=0.5)
    read = res.read_recorded(tags(res, ["Boiler1.SteamFlow"]), START, START + 2 * HOUR)
    assert len(read.frame) == 720 and not read.frame.duplicated(["tag", "ts"]).any()
    assert read.dropped_outside_window == {"Boiler1.SteamFlow": 4}


def test_a_server_ignoring_the_window_is_an_error_counting_per_tag(pi):
    pi.faults.outside_window.update({"Boiler1.SteamFlow": 2 * 3600, "Boiler1.FlueGasO2": 86_400})
    res = resource(pi)
    with pytest.raises(HistorianError) as caught:
        res.read_recorded(tags(res), START, START + HOUR)
    message = str(caught.value)
    assert message.startswith("test-pi: server ignored the requested window [2026-11-01T09:00:00+00:00, ")
    assert "4 value(s) more than 1:00:00 outside it (earliest 2026-10-31T09:00:00+00:00)" in message
    assert message.endswith("per tag Boiler1.FlueGasO2: 2, Boiler1.SteamFlow: 2")


def test_split_window():
    pieces = split_window(START, START + timedelta(hours=5), timedelta(hours=2))
    assert pieces == [
        (START, START + 2 * HOUR),
        (START + 2 * HOUR, START + 4 * HOUR),
        (START + 4 * HOUR, START + 5 * HOUR),
    ]


def test_server_limit_below_ours_is_a_clear_error_without_retries(pi):
    pi.max_count = 500
    res = resource(pi, max_count=1000)
    with pytest.raises(HttpSourceError, match=r"HTTP 400.*exceeds the server limit of 500"):
        res.read_recorded(tags(res), START, START + HOUR)
    assert pi.stats.streamset_requests == 1


def test_unknown_path_is_named(pi):
    res = resource(pi)
    bad = PiTag("Boiler1.Ghost", res.point_path("Boiler1.Ghost"), "bar")
    with pytest.raises(
        HistorianError, match=r"tag Boiler1.Ghost: PI point '\\\\\\\\DEMO-PI\\\\Boiler1.Ghost' not found"
    ):
        res.read_recorded([*tags(res), bad], START, START + HOUR)


def test_per_item_errors_fail_those_tags_never_empty(pi):
    pi.faults.item_errors["Boiler1.StackTemp"] = "[-11059] No Good Data For Calculation"
    res = resource(pi)
    with pytest.raises(HistorianError, match=r"Boiler1.StackTemp .*No Good Data For Calculation") as err:
        res.read_recorded(tags(res), START, START + HOUR)
    assert "Boiler1.SteamFlow" not in str(err.value)


def test_web_exception_is_an_error(pi):
    pi.faults.web_exception = 1
    res = resource(pi)
    with pytest.raises(HistorianError, match=r"WebException.*data archive stopped"):
        res.read_recorded(tags(res), START, START + HOUR)


def test_web_exception_on_interpolated_values_is_an_error(pi):
    pi.faults.web_exception = 1
    res = resource(pi)
    with pytest.raises(HistorianError, match=r"Boiler1.SteamFlow .*data archive stopped"):
        res.read_interpolated(tags(res, ["Boiler1.SteamFlow"]), START, START + HOUR, timedelta(minutes=1))


def test_stream_without_items_is_an_error_not_empty_data():
    res = HistorianResource(base_url="http://127.0.0.1:1/piwebapi", source_name="test-pi")
    tag = PiTag("Boiler1.SteamFlow", res.point_path("Boiler1.SteamFlow"), "t/h")
    body = {"Items": [{"WebId": "W1", "Name": "Boiler1.SteamFlow"}]}
    with pytest.raises(HistorianError, match=r"Boiler1.SteamFlow .*stream without an Items list"):
        res._items_by_tag([tag], {tag.path: "W1"}, body)


def test_flags_and_digital_states_map_to_quality(pi):
    pi.faults.marks = [
        Mark("Boiler1.SteamFlow", START, START + timedelta(minutes=1), "Shutdown"),
        Mark("Boiler1.DrumPressure", START, START + timedelta(minutes=1), "I/O Timeout"),
        Mark("Boiler1.FeedwaterTemp", START, START + timedelta(minutes=1), "Substituted"),
        Mark("Boiler1.FlueGasO2", START, START + timedelta(minutes=1), "Annotated"),
    ]
    res = resource(pi)
    frame = res.read_recorded(tags(res), START, START + timedelta(minutes=2)).frame
    first = frame[frame["ts"] < START + timedelta(minutes=1)].set_index("tag")
    shutdown = first.loc["Boiler1.SteamFlow"]
    assert shutdown["value"].isna().all() and (shutdown["quality"] == "bad").all()
    assert (shutdown["status"] == "Shutdown").all()
    assert (first.loc["Boiler1.DrumPressure", "status"] == "I/O Timeout").all()
    assert (first.loc["Boiler1.FeedwaterTemp", "quality"] == "uncertain").all()
    assert first.loc["Boiler1.FeedwaterTemp", "value"].notna().all()
    annotated = first.loc["Boiler1.FlueGasO2"]
    assert (annotated["quality"] == "good").all() and (annotated["status"] == "Annotated").all()
    later = frame[frame["ts"] >= START + timedelta(minutes=1)]
    assert later["value"].notna().all() and set(later["status"]) <= {"", "Questionable"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"Value": 1.5, "Good": True}, (1.5, "good", "")),
        ({"Value": 2, "Good": True, "Questionable": True}, (2.0, "uncertain", "Questionable")),
        ({"Value": {"Name": "Bad Input", "Value": 307, "IsSystem": True}, "Good": False}, (None, "bad", "Bad Input")),
        ({"Value": {"Name": "Open", "Value": 1, "IsSystem": False}, "Good": True}, (None, "good", "Open")),
        ({"Value": "ERR", "Good": True}, (None, "bad", "non-numeric value")),
        ({"Value": True, "Good": True}, (None, "bad", "non-numeric value")),
        ({"Value": None}, (None, "bad", "no value")),
    ],
)
def test_quality_and_status(item, expected):
    assert quality_and_status(item) == expected


def test_retries_429_with_retry_after_and_503(pi):
    pi.faults.statuses = [429, 503]
    pi.faults.retry_after = "1"
    res = resource(pi)
    read = res.read_recorded(tags(res), START, START + HOUR)
    assert_model_values(read.frame, NAMES, START, START + HOUR)
    assert read.stats["retries"] == 2


def test_malformed_json_and_wrong_content_type_are_clear_errors(pi):
    res = resource(pi)
    res.read_recorded(tags(res), START, START + timedelta(minutes=1))  # resolve WebIds first
    pi.faults.malformed_json = 1
    with pytest.raises(
        HttpResponseFormatError, match=r"test-pi: GET /piwebapi/streamsets/recorded -> HTTP 200: malformed"
    ):
        res.read_recorded(tags(res), START, START + HOUR)
    pi.faults.wrong_content_type = 1
    with pytest.raises(HttpResponseFormatError, match=r"expected a JSON content type, got 'text/html"):
        res.read_recorded(tags(res), START, START + HOUR)


def test_unit_mismatch_is_named(pi):
    res = resource(pi)
    wrong = [PiTag("Boiler1.SteamFlow", res.point_path("Boiler1.SteamFlow"), "bar")]
    with pytest.raises(HistorianError, match=r"recorded in 't/h' but configured as 'bar'"):
        res.read_recorded(wrong, START, START + timedelta(minutes=1))


def test_interpolated_values_match_the_model_at_sample_times(pi):
    res = resource(pi)
    frame = res.read_interpolated(tags(res), START, START + HOUR, timedelta(minutes=1)).frame
    assert len(frame) == 60 * len(NAMES)
    for model in PROCESS_TAGS:
        times = sample_times(START, START + HOUR, 60)
        got = frame[frame["tag"] == model.name].sort_values("ts")
        np.testing.assert_allclose(got["value"].to_numpy(), model.values(times), rtol=1e-12)


def test_summaries_match_the_model(pi):
    res = resource(pi)
    summary = res.read_summaries(tags(res, ["Boiler1.SteamFlow"]), START, START + HOUR)
    values = PROCESS_TAGS[0].values(sample_times(START, START + HOUR))
    got = summary.set_index("summary")["value"]
    assert got["Average"] == pytest.approx(values.mean())
    assert got["Minimum"] == pytest.approx(values.min()) and got["Maximum"] == pytest.approx(values.max())
    assert got["Total"] == pytest.approx(values.mean() * 1.0)  # t/h over one hour
    assert set(summary["unit"]) == {"t/h"}
    chicago = res.read_summaries(
        tags(res, ["Boiler1.SteamFlow"]), *(t.astimezone(CHICAGO) for t in (START, START + HOUR))
    )
    assert str(chicago["start"].dtype) == "datetime64[ns, UTC]" and chicago["start"].iloc[0] == START


def test_oauth2_token_refresh_and_secret_never_logged(pi, caplog):
    pi.oauth_clients = {PI_CLIENT_ID: PI_CLIENT_SECRET}
    caplog.set_level(logging.DEBUG)
    res = resource(
        pi,
        auth_mode="oauth2",
        token_url=pi.url + "/token",
        client_id=PI_CLIENT_ID,
        client_secret=PI_CLIENT_SECRET,
    )
    pi.faults.statuses = [503]
    read = res.read_recorded(tags(res), START, START + HOUR)
    assert_model_values(read.frame, NAMES, START, START + HOUR)
    assert read.stats["token_fetches"] == 1 and read.stats["retries"] == 1
    assert pi.stats.token_requests == 1
    bad = resource(pi, auth_mode="oauth2", token_url=pi.url + "/token", client_id=PI_CLIENT_ID, client_secret="nope-x1")
    with pytest.raises(HttpSourceError, match="token request refused") as err:
        bad.read_recorded(tags(bad), START, START + HOUR)
    for text in (caplog.text, str(err.value), repr(res)):
        assert PI_CLIENT_SECRET not in text and "nope-x1" not in text
    assert "retrying" in caplog.text


def test_health_check(pi):
    assert resource(pi).health_check().ok
    pi.oauth_clients = {PI_CLIENT_ID: PI_CLIENT_SECRET}
    assert not resource(pi, max_attempts=1).health_check().ok


def test_a_server_that_repeats_its_page_is_stopped_at_the_second_page(pi):
    pi.faults.repeat_first_page = True
    res = resource(pi, max_count=100)
    with pytest.raises(
        HistorianError,
        match=r"^test-pi: tag Boiler1.SteamFlow \(.*\), page 2 \(asked from 2026-11-01T09:16:30\+00:00, reached "
        r"2026-11-01T09:16:30\+00:00\): the page made no progress, it starts at 2026-11-01T09:00:00\+00:00",
    ):
        res.read_recorded(tags(res, ["Boiler1.SteamFlow"]), START, START + HOUR)
    assert pi.stats.streamset_requests == 2


def test_a_read_past_max_pages_is_stopped(pi):
    res = resource(pi, max_count=100, max_pages=2)  # an hour at 10 s is 4 pages of 100
    with pytest.raises(HistorianError, match=r"Boiler1.SteamFlow .*page 2 .*still paging after max_pages=2 pages"):
        res.read_recorded(tags(res, ["Boiler1.SteamFlow"]), START, START + HOUR)
    assert pi.stats.streamset_requests == 2
