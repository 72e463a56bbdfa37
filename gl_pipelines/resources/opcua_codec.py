"""Binary codec for the DataValues inside HistoryRead responses, vectorized where it can be.

asyncua decodes every DataValue into Python objects (~8 µs each), which makes a 1,000-tag hour
(360k values) cost seconds of CPU before we even build a frame. HistoryData bodies from real
servers are long runs of identically laid out records (same encoding mask, same scalar type), so
we read them with one numpy structured view; any other layout goes through a plain loop, and
anything we do not understand (arrays, structures) through asyncua itself. The demo plant uses
the encoder to answer as fast as a compiled server would.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

EPOCH_TICKS = 116_444_736_000_000_000
"""100 ns ticks from 1601-01-01 (OPC UA DateTime origin) to 1970-01-01."""
HISTORY_DATA_BINARY = ua.NodeId(ua.ObjectIds.HistoryData_Encoding_DefaultBinary)

_VALUE, _STATUS, _SOURCE_TS, _SERVER_TS, _SOURCE_PICO, _SERVER_PICO = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_STRING = ua.VariantType.String.value
_SCALARS = {  # VariantType id -> little-endian numpy/struct format
    ua.VariantType.Boolean.value: "?",
    ua.VariantType.SByte.value: "b",
    ua.VariantType.Byte.value: "B",
    ua.VariantType.Int16.value: "h",
    ua.VariantType.UInt16.value: "H",
    ua.VariantType.Int32.value: "i",
    ua.VariantType.UInt32.value: "I",
    ua.VariantType.Int64.value: "q",
    ua.VariantType.UInt64.value: "Q",
    ua.VariantType.Float.value: "f",
    ua.VariantType.Double.value: "d",
}
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_INT64 = struct.Struct("<q")


class UnsupportedEncoding(ValueError):
    """A DataValue layout the fast path does not handle; the caller falls back to asyncua."""


@dataclass(frozen=True)
class RawValues:
    """One node's DataValues as columns: timestamps in OPC UA ticks (source, else server; 0 = none)."""

    ticks: np.ndarray
    values: list | np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class RawResult:
    status: int
    continuation_point: bytes | None
    data: RawValues | None


def decode_history_read_response(data: Buffer) -> list[RawResult]:
    """Decode a HistoryReadResponse body (after asyncua's ServiceFault check) into column results."""
    nodeid_from_binary(data)  # the response's type id
    header = struct_from_binary(ua.ResponseHeader, data)
    header.ServiceResult.check()
    count = _INT32.unpack(data.read(4))[0]
    results = []
    for _ in range(max(count, 0)):
        status = _UINT32.unpack(data.read(4))[0]
        length = _INT32.unpack(data.read(4))[0]
        point = bytes(data.read(length)) if length > 0 else None
        type_id = nodeid_from_binary(data)
        encoding = data.read(1)[0]
        body = None
        if encoding == 0x01:
            body = bytes(data.read(_INT32.unpack(data.read(4))[0]))
        elif encoding != 0x00:
            raise UnsupportedEncoding(f"ExtensionObject encoding {encoding}")
        values = None
        if body is not None:
            if type_id != HISTORY_DATA_BINARY:
                raise UnsupportedEncoding(f"history payload of type {type_id}")
            values = decode_history_data(body)
        results.append(RawResult(status, point, values))
    return results


def decode_history_data(body: bytes) -> RawValues:
    """A HistoryData body: Int32 count, then DataValues. Fast path, loop, or asyncua fallback."""
    count = _INT32.unpack_from(body, 0)[0]
    if count <= 0:
        return RawValues(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint32))
    try:
        return _uniform(body, count) or _loop(body, count)
    except UnsupportedEncoding:
        history = struct_from_binary(ua.HistoryData, Buffer(body))
        return from_datavalues(history.DataValues)


def from_datavalues(datavalues: list[ua.DataValue]) -> RawValues:
    """Columns from asyncua DataValue objects (the slow, general path)."""
    ticks = np.array([_ticks(dv.SourceTimestamp or dv.ServerTimestamp) for dv in datavalues], dtype=np.int64)
    values = [dv.Value.Value if dv.Value is not None else None for dv in datavalues]
    codes = np.array([dv.StatusCode.value if dv.StatusCode else 0 for dv in datavalues], dtype=np.uint32)
    return RawValues(ticks, values, codes)


def _ticks(moment) -> int:
    if moment is None:
        return 0
    return EPOCH_TICKS + round(moment.timestamp() * 1e7)


def _record_dtype(mask: int, scalar: str | None) -> np.dtype:
    fields = [("mask", "u1")]
    if mask & _VALUE:
        fields += [("vtype", "u1"), ("value", "<" + scalar)]
    if mask & _STATUS:
        fields.append(("status", "<u4"))
    if mask & _SOURCE_TS:
        fields.append(("source", "<i8"))
    if mask & _SOURCE_PICO:
        fields.append(("source_pico", "<u2"))
    if mask & _SERVER_TS:
        fields.append(("server", "<i8"))
    if mask & _SERVER_PICO:
        fields.append(("server_pico", "<u2"))
    return np.dtype(fields)


def _uniform(body: bytes, count: int) -> RawValues | None:
    """Every record laid out like the first (same mask, same scalar type): one numpy view."""
    mask = body[4]
    scalar = None
    if mask & _VALUE:
        scalar = _SCALARS.get(body[5])
        if scalar is None or scalar == "?":
            return None
    dtype = _record_dtype(mask, scalar)
    if 4 + count * dtype.itemsize != len(body):
        return None
    records = np.frombuffer(body, dtype=dtype, count=count, offset=4)
    if (records["mask"] != mask).any() or (scalar and (records["vtype"] != body[5]).any()):
        return None
    ticks = records["source"] if mask & _SOURCE_TS else records["server"] if mask & _SERVER_TS else None
    return RawValues(
        ticks.astype(np.int64) if ticks is not None else np.zeros(count, np.int64),
        records["value"].astype(np.float64) if mask & _VALUE else np.full(count, np.nan),
        records["status"].astype(np.uint32) if mask & _STATUS else np.zeros(count, np.uint32),
    )


def _loop(body: bytes, count: int) -> RawValues:
    """Mixed layouts (e.g. Bad samples without a value among good ones), one record at a time."""
    ticks = np.zeros(count, np.int64)
    codes = np.zeros(count, np.uint32)
    values: list = [None] * count
    offset = 4
    for index in range(count):
        mask = body[offset]
        offset += 1
        if mask & _VALUE:
            vtype = body[offset]
            offset += 1
            scalar = _SCALARS.get(vtype)
            if scalar is not None:
                values[index] = struct.unpack_from("<" + scalar, body, offset)[0]
                offset += struct.calcsize("<" + scalar)
            elif vtype == _STRING:
                length = _INT32.unpack_from(body, offset)[0]
                offset += 4
                if length >= 0:
                    values[index] = body[offset : offset + length].decode("utf-8", "replace")
                    offset += length
            elif vtype != 0:
                raise UnsupportedEncoding(f"variant type {vtype}")
        if mask & _STATUS:
            codes[index] = _UINT32.unpack_from(body, offset)[0]
            offset += 4
        source = server = 0
        if mask & _SOURCE_TS:
            source = _INT64.unpack_from(body, offset)[0]
            offset += 8
        if mask & _SOURCE_PICO:
            offset += 2
        if mask & _SERVER_TS:
            server = _INT64.unpack_from(body, offset)[0]
            offset += 8
        if mask & _SERVER_PICO:
            offset += 2
        ticks[index] = source or server
    if offset != len(body):
        raise UnsupportedEncoding("trailing bytes after the DataValues")
    return RawValues(ticks, values, codes)


def encode_history_data(
    epoch_s: np.ndarray, values: np.ndarray, codes: np.ndarray, no_value: np.ndarray, text: dict[int, str]
) -> bytes:
    """A HistoryData body: Double values with status and source/server timestamps; rows flagged
    in `no_value` carry no value (as servers send Bad samples), rows in `text` a String value."""
    ticks = epoch_s.astype(np.int64) * 10_000_000 + EPOCH_TICKS
    count = len(ticks)
    if not no_value.any() and not text:
        records = np.zeros(count, dtype=_record_dtype(_VALUE | _STATUS | _SOURCE_TS | _SERVER_TS, "d"))
        records["mask"] = _VALUE | _STATUS | _SOURCE_TS | _SERVER_TS
        records["vtype"] = ua.VariantType.Double.value
        records["value"], records["status"], records["source"], records["server"] = values, codes, ticks, ticks
        return _INT32.pack(count) + records.tobytes()
    parts = [_INT32.pack(count)]
    for index in range(count):
        stamp = _INT64.pack(int(ticks[index]))
        status = _UINT32.pack(int(codes[index]))
        if no_value[index]:
            parts.append(bytes([_STATUS | _SOURCE_TS | _SERVER_TS]) + status + stamp + stamp)
        elif index in text:
            encoded = text[index].encode()
            head = bytes([_VALUE | _STATUS | _SOURCE_TS | _SERVER_TS, _STRING])
            parts.append(head + _INT32.pack(len(encoded)) + encoded + status + stamp + stamp)
        else:
            head = bytes([_VALUE | _STATUS | _SOURCE_TS | _SERVER_TS, ua.VariantType.Double.value])
            parts.append(head + struct.pack("<d", float(values[index])) + status + stamp + stamp)
    return b"".join(parts)
