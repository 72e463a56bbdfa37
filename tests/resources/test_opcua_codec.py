"""Our DataValue codec against asyncua's own encoder/decoder, byte for byte."""

from datetime import UTC, datetime

import numpy as np
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from gl_pipelines.resources.opcua_codec import EPOCH_TICKS, decode_history_data, encode_history_data

T0 = datetime(2026, 11, 1, 3, tzinfo=UTC)
T0_TICKS = EPOCH_TICKS + int(T0.timestamp()) * 10_000_000


def body(datavalues) -> bytes:
    history = ua.HistoryData()
    history.DataValues = datavalues
    return struct_to_binary(history)


def test_uniform_doubles_take_the_vectorized_path():
    values = [ua.DataValue(ua.Variant(i / 3, ua.VariantType.Double), ua.StatusCode(0), T0, T0) for i in range(500)]
    decoded = decode_history_data(body(values))
    assert isinstance(decoded.values, np.ndarray)
    np.testing.assert_array_equal(decoded.values, [i / 3 for i in range(500)])
    assert (decoded.ticks == T0_TICKS).all() and (decoded.codes == 0).all()


def test_mixed_layouts_types_and_missing_parts():
    values = [
        ua.DataValue(ua.Variant(1.5, ua.VariantType.Double), ua.StatusCode(0), T0, T0),
        ua.DataValue(ua.Variant(7, ua.VariantType.Int32), ua.StatusCode(0x40900000), T0),  # no server ts
        ua.DataValue(ua.Variant(), ua.StatusCode(0x808B0000), None, T0),  # Bad, no value, server ts only
        ua.DataValue(ua.Variant("ERR", ua.VariantType.String), ua.StatusCode(0), T0),
        ua.DataValue(ua.Variant(True, ua.VariantType.Boolean), ua.StatusCode(0), T0),
        ua.DataValue(ua.Variant(2.5, ua.VariantType.Float), SourceTimestamp=T0, SourcePicoseconds=5),
    ]
    decoded = decode_history_data(body(values))
    assert decoded.values == [1.5, 7, None, "ERR", True, 2.5]
    assert list(decoded.codes) == [0, 0x40900000, 0x808B0000, 0, 0, 0]
    assert (decoded.ticks == T0_TICKS).all()


def test_arrays_fall_back_to_asyncua():
    values = [ua.DataValue(ua.Variant([1.0, 2.0], ua.VariantType.Double), ua.StatusCode(0), T0)]
    decoded = decode_history_data(body(values))
    assert decoded.values == [[1.0, 2.0]] and decoded.ticks[0] == T0_TICKS


def test_encoder_output_is_what_asyncua_reads():
    epoch = np.array([1793502000, 1793502010, 1793502020])
    values = np.array([1.0, 2.0, 3.0])
    codes = np.array([0, 0x40900000, 0x808B0000], dtype=np.uint32)
    for no_value, text in [(np.zeros(3, bool), {}), (np.array([False, False, True]), {0: "ERR"})]:
        encoded = encode_history_data(epoch, values, codes, no_value, text)
        parsed = struct_from_binary(ua.HistoryData, Buffer(encoded)).DataValues
        got = [dv.Value.Value if dv.Value else None for dv in parsed]
        expected = ["ERR" if 0 in text else 1.0, 2.0, None if no_value[2] else 3.0]
        assert got == expected
        assert [dv.StatusCode.value for dv in parsed] == list(codes)
        assert [dv.SourceTimestamp.timestamp() for dv in parsed] == list(epoch)
        roundtrip = decode_history_data(encoded)
        assert list(roundtrip.codes) == list(codes)
