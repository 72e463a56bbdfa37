"""Pure decoding: JSON topic mappings, Sparkplug B state, redelivery dedup, config errors (no broker)."""

from __future__ import annotations

import pytest

from gl_pipelines.mqtt import sparkplug_b_pb2 as pb
from gl_pipelines.mqtt.collector import Collector, Inbound
from gl_pipelines.mqtt.config import DEMO_MQTT_CONFIG, load_mqtt_source
from gl_pipelines.mqtt.json_topics import JsonTopics, Malformed, filter_regex
from gl_pipelines.mqtt.sparkplug import MalformedWithRebirth, SparkplugDecoder

NOW_US = 1_796_000_000_000_000


@pytest.fixture
def demo(tmp_path):
    return load_mqtt_source(DEMO_MQTT_CONFIG).model_copy(update={"landing_path": tmp_path / "landing.sqlite"})


def test_topic_filters():
    assert filter_regex("plant/+/telemetry").match("plant/gw1/telemetry")
    assert not filter_regex("plant/+/telemetry").match("plant/gw1/x/telemetry")
    assert filter_regex("plant/#").match("plant") and filter_regex("plant/#").match("plant/a/b")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff", "not JSON"),
        (b'{"ts": 1}', "field 'v' missing"),
        (b'{"ts": 1, "v": "12"}', "field 'v' is '12', not a number"),
        (b'{"ts": 1, "v": NaN}', "field 'v' is nan, not a finite number"),
        (b'{"ts": "2026-12-03T10:00:00", "v": 1}', "a time without UTC offset"),
    ],
)
def test_json_payloads_that_do_not_fit_name_field_and_value(demo, payload, reason):
    topics = JsonTopics(demo)
    topic = "plant/gw1/boiler_temp/telemetry"
    with pytest.raises(Malformed, match=reason):
        topics.decode(topics.mapping(topic), topic, payload, NOW_US)


def test_json_mapping_tag_unit_and_time(demo):
    topics = JsonTopics(demo)
    topic = "plant/gw1/stack_o2/telemetry"
    iso = b'{"ts": "2026-12-03T10:00:00+01:00", "v": 4}'
    assert topics.decode(topics.mapping(topic), topic, iso, NOW_US) == [
        (1_796_288_400_000_000, "gw1.stack_o2", 4.0, "percent", "good")
    ]
    assert topics.mapping("other/topic") is None


def _payload(seq, *metrics, timestamp=1_000):
    payload = pb.Payload(seq=seq, timestamp=timestamp)
    for metric in metrics:
        payload.metrics.add(**metric)
    return payload.SerializeToString()


def test_sparkplug_signed_types_death_and_seq_gap():
    decoder = SparkplugDecoder({})
    decoder.decode("spBv1.0/g/NBIRTH/n", _payload(0, {"name": "bdSeq", "datatype": pb.Int64, "long_value": 3}), 0)
    birth = _payload(1, {"name": "t", "alias": 7, "datatype": pb.Int16, "int_value": 65535})
    assert decoder.decode("spBv1.0/g/DBIRTH/n/d", birth, 0).readings == [(1_000_000, "n/d/t", -1.0, "", "good")]
    data = decoder.decode("spBv1.0/g/DDATA/n/d", _payload(3, {"alias": 7, "int_value": 5}), 0)
    assert data.readings == [(1_000_000, "n/d/t", 5.0, "", "good")]
    assert data.rebirth_node == "g/n" and data.events[0][0] == "seq_gap"
    stale = decoder.decode("spBv1.0/g/NDEATH/n", _payload(0, {"name": "bdSeq", "long_value": 2}), 0)
    assert stale.readings == [] and stale.events[0][0] == "stale_death"
    death = decoder.decode("spBv1.0/g/NDEATH/n", _payload(0, {"name": "bdSeq", "long_value": 3}, timestamp=9), 0)
    assert death.readings == [(9_000, "n/d/t", None, "", "bad")]
    after = decoder.decode("spBv1.0/g/DDATA/n/d", _payload(4, {"alias": 7, "int_value": 6}), 0)
    assert after.readings[0][4] == "bad"  # dead until rebirth


def test_sparkplug_data_without_birth_asks_for_rebirth():
    with pytest.raises(MalformedWithRebirth, match="before its birth") as error:
        SparkplugDecoder({}).decode("spBv1.0/g/DDATA/n/d", _payload(5, {"alias": 1, "double_value": 1.0}), 0)
    assert error.value.edge == "g/n"


def test_redelivery_is_skipped_only_with_dup_flag_and_same_packet_id(demo):
    collector = Collector(demo)
    message = Inbound("plant/gw1/boiler_temp/telemetry", b'{"ts": 1, "v": 2}', mid=7, qos=1, dup=False, retain=False)
    collector.store.land(collector.process([message], NOW_US)[0])
    redelivered = Inbound(message.topic, message.payload, mid=7, qos=1, dup=True, retain=False)
    other_id = Inbound(message.topic, message.payload, mid=8, qos=1, dup=True, retain=False)
    batch, _ = collector.process([redelivered, other_id, message], NOW_US)
    assert len(batch.readings) == 2 and collector.skipped_redeliveries == 1


def test_a_bad_config_names_file_field_and_value(tmp_path):
    path = tmp_path / "demo_plant" / "mqtt" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(DEMO_MQTT_CONFIG.read_text().replace("publish_interval_s: 5", "publish_interval_s: -5"))
    with pytest.raises(ValueError, match=r"defs.yaml: publish_interval_s: .*greater than 0.*-5"):
        load_mqtt_source(path)


def test_process_quarantines_skips_retained_and_never_raises(demo):
    collector = Collector(demo)
    messages = [
        Inbound("other/topic", b"{}", mid=1, qos=1, dup=False, retain=False),
        Inbound("plant/gw1/boiler_temp/telemetry", b'{"ts": 1, "v": 2}', mid=2, qos=1, dup=False, retain=True),
        Inbound("spBv1.0/plant/DDATA/edge9/d", b"\x08\x01", mid=3, qos=1, dup=False, retain=False),
    ]
    batch, rebirths = collector.process(messages, NOW_US)
    assert batch.readings == [] and set(batch.keys) == {1, 2, 3}
    assert [reason for _, reason, _ in batch.quarantined] == [
        "no json_topics mapping matches this topic",
        "DDATA from plant/edge9/d before its birth; rebirth requested",
    ]
    assert batch.events[0][1] == "retained_skipped" and rebirths == {"plant/edge9"}


def test_sparkplug_quality_property():
    decoder = SparkplugDecoder({"n/m": "kPa"})
    decoder.decode("spBv1.0/g/NBIRTH/n", _payload(0, {"name": "m", "alias": 1, "datatype": pb.Float}), 0)
    payload = pb.Payload(seq=1, timestamp=5)
    metric = payload.metrics.add(alias=1, float_value=2.5)
    metric.properties.keys.append("Quality")
    metric.properties.values.add(type=pb.Int32, int_value=64)
    assert decoder.decode("spBv1.0/g/NDATA/n", payload.SerializeToString(), 0).readings == [
        (5_000, "n/m", 2.5, "kPa", "uncertain")
    ]
