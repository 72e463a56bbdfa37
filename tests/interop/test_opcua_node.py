"""Our OPC UA resource and fast decoder against node-opcua, a server that shares no code with us.

node-opcua's own historian includes a value stamped exactly at EndTime, pages with its own
continuation points and rejects a HistoryRead over MaxNodesPerHistoryReadData with BadTooManyOperations.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from asyncua import Client, ua

from gl_pipelines.resources.opcua import OpcUaResource, TagRef
from gl_pipelines.resources.opcua_codec import EPOCH_TICKS, decode_history_read_response
from tests.interop.conftest import SERVER_LIMIT

START = datetime(2026, 11, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


def refs(server, names=None) -> list[TagRef]:
    return [TagRef(t.name, t.node_id, t.unit) for t in server.tags if names is None or t.name in names]


def resource(server, **overrides) -> OpcUaResource:
    settings = {"retry_attempts": 1, "connect_timeout_s": 10.0, "source_name": "node-opcua"} | overrides
    return OpcUaResource(endpoint=server.endpoint, **settings)


def assert_rows(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = frame.sort_values(["tag", "ts"], ignore_index=True)
    assert len(got) == len(expected)
    assert (got["ts"] == expected["ts"]).all()
    assert got["tag"].tolist() == expected["tag"].tolist()
    np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy())
    np.testing.assert_array_equal(got["status_code"].to_numpy(), expected["status_code"].to_numpy())
    assert got["unit"].tolist() == expected["unit"].tolist()


def test_an_hour_holds_exactly_start_to_end_and_counts_node_opcuas_end_bound(node_server):
    """node-opcua answers 361 values for [09:00, 10:00]: the one at 10:00 is dropped and counted;
    pages of 100 follow its continuation points; 6 tags over its limit of 4 go in batches of 4 and 2."""
    names = [t.name for t in node_server.tags]
    history = resource(node_server, max_values_per_node=100).read_raw_history(refs(node_server), START, START + HOUR)
    assert_rows(history.frame, node_server.expected(names, START, START + HOUR))
    assert len(history.frame) == 6 * 360
    assert history.frame["ts"].min() == pd.Timestamp("2026-11-01T09:00:00Z")
    assert history.frame["ts"].max() == pd.Timestamp("2026-11-01T09:59:50Z")
    assert history.dropped_outside_window == dict.fromkeys(sorted(names), 1)
    assert history.requests == 2 * 4  # (4 + 2 nodes) x pages of 100, 100, 100, 61


def test_known_values_and_qualities_row_by_row(node_server):
    history = resource(node_server).read_raw_history(refs(node_server), START, START + HOUR)
    frame = history.frame.set_index(["tag", "ts"])

    def row(tag: str, at: str) -> tuple:
        found = frame.loc[(tag, pd.Timestamp(at))]
        return found["value"], found["quality"], found["status"], found["unit"]

    assert row("Interop.Flow", "2026-11-01T09:00:00Z") == (100.0, "good", "Good", "t/h")
    assert row("Interop.Flow", "2026-11-01T09:00:10Z") == (100.25, "uncertain", "UncertainLastUsableValue", "t/h")
    value, *rest = row("Interop.Flow", "2026-11-01T09:00:40Z")
    assert np.isnan(value) and rest == ["bad", "BadSensorFailure", "t/h"]
    assert row("Interop.Level", "2026-11-01T09:59:50Z") == (10.0 + 359 * 0.5, "good", "Good", "percent")
    assert row("Interop.Count", "2026-11-01T09:00:00Z") == (-5.0, "good", "Good", "1")
    assert row("Interop.Speed", "2026-11-01T09:59:50Z") == (1718.0, "good", "Good", "rpm")
    assert row("Interop.Pressure", "2026-11-01T09:01:00Z") == (-49.25, "good", "Good", "bar")
    qualities = history.frame.groupby("tag")["quality"].value_counts().to_dict()
    assert qualities[("Interop.Flow", "good")] == 240
    assert qualities[("Interop.Flow", "uncertain")] == 60 and qualities[("Interop.Flow", "bad")] == 60
    assert qualities[("Interop.Temp", "bad")] == 36 and qualities[("Interop.Temp", "good")] == 324


def test_a_range_lands_exactly_the_rows_of_its_hours(node_server):
    read = resource(node_server).read_raw_history
    ranged = read(refs(node_server), START, START + 2 * HOUR)
    hours = [read(refs(node_server), START + i * HOUR, START + (i + 1) * HOUR) for i in range(2)]
    key = ["tag", "ts"]
    pd.testing.assert_frame_equal(
        ranged.frame.sort_values(key, ignore_index=True),
        pd.concat([h.frame for h in hours]).sort_values(key, ignore_index=True),
    )
    assert len(ranged.frame) == 6 * 720
    assert ranged.dropped_outside_window == dict.fromkeys(sorted(t.name for t in node_server.tags), 1)


async def _history_read(client: Client, nodes: list[str], point: bytes | None = None, *, raw: bool):
    """One HistoryRead of `nodes` for the first hour, decoded by asyncua (raw=False) or by our codec."""
    params = ua.HistoryReadParameters()
    params.HistoryReadDetails = ua.ReadRawModifiedDetails(
        IsReadModified=False, StartTime=START, EndTime=START + HOUR, NumValuesPerNode=150, ReturnBounds=False
    )
    params.TimestampsToReturn = ua.TimestampsToReturn.Source
    params.ReleaseContinuationPoints = False
    params.NodesToRead = [
        ua.HistoryReadValueId(NodeId=ua.NodeId.from_string(n), ContinuationPoint=point) for n in nodes
    ]
    if not raw:
        return await client.uaclient.history_read(params)
    request = ua.HistoryReadRequest()
    request.Parameters = params
    return decode_history_read_response(await client.uaclient.session._send_request(request))


def test_fast_decoder_equals_asyncuas_own_decoding_value_for_value(node_server):
    """Bytes node-opcua encoded, decoded by our codec and by asyncua, page by page."""

    async def both(node_id: str):
        async with Client(node_server.endpoint) as client:
            ours, theirs = [], []
            point_ours = point_theirs = None
            while True:
                (mine,) = await _history_read(client, [node_id], point_ours, raw=True)
                (lib,) = await _history_read(client, [node_id], point_theirs, raw=False)
                ours.append(mine)
                theirs.append(lib)
                point_ours, point_theirs = mine.continuation_point, lib.ContinuationPoint
                if not point_ours and not point_theirs:
                    return ours, theirs

    for tag in node_server.tags:
        ours, theirs = asyncio.run(both(tag.node_id))
        assert len(ours) == len(theirs) == 3  # 150 + 150 + 61 values
        datavalues = [dv for result in theirs for dv in result.HistoryData.DataValues]
        ticks = np.concatenate([page.data.ticks for page in ours])
        codes = np.concatenate([page.data.codes for page in ours])
        values = [v for page in ours for v in list(page.data.values)]
        assert len(datavalues) == len(ticks) == 361
        assert [round((t - EPOCH_TICKS) / 1e7, 3) for t in ticks] == [
            dv.SourceTimestamp.timestamp() for dv in datavalues
        ]
        assert codes.tolist() == [dv.StatusCode.value for dv in datavalues]
        for mine, dv in zip(values, datavalues, strict=True):
            if dv.Value is None or dv.Value.Value is None:
                assert mine is None or np.isnan(mine), tag.name
            else:
                assert mine == dv.Value.Value, tag.name


def test_the_server_really_enforces_its_node_limit(node_server):
    """Without reading MaxNodesPerHistoryReadData first, 6 nodes in one request are refused: the
    batched read above succeeding shows we honour a limit below the tag count."""

    async def read_all() -> None:
        async with Client(node_server.endpoint) as client:
            limit = await client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
            ).read_value()
            assert limit == SERVER_LIMIT
            await _history_read(client, [t.node_id for t in node_server.tags], raw=False)

    with pytest.raises(ua.uaerrors.BadTooManyOperations):
        asyncio.run(read_all())


def test_unknown_node_is_named(node_server):
    ghost = TagRef("Interop.Ghost", "ns=1;s=Interop.Ghost", "bar")
    with pytest.raises(Exception, match=r"tag Interop.Ghost \(ns=1;s=Interop.Ghost\): HistoryRead failed with Bad"):
        resource(node_server).read_raw_history([*refs(node_server)[:1], ghost], START, START + HOUR)
