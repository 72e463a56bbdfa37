"""Modbus register encoding: every data type in the four byte/word layouts meters use.

Layouts by their usual names, for a 32-bit value with bytes A (most significant) .. D:
ABCD = byte big / word big, CDAB = byte big / word little (word swap), BADC = byte little /
word big (byte swap), DCBA = byte little / word little. pymodbus only swaps words; byte swap
within a word is done here.
"""

from __future__ import annotations

import struct
from typing import Literal

Order = Literal["big", "little"]
_FORMATS = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
# The same types as numpy dtype codes, for decoding and encoding whole blocks at once.
NUMPY_TYPES = {
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "int64": "i8",
    "uint64": "u8",
    "float32": "f4",
    "float64": "f8",
}


def encode_registers(value: float | int, data_type: str, byte_order: Order, word_order: Order) -> list[int]:
    """Raw value -> 16-bit registers in the order the device holds them."""
    fmt = _FORMATS[data_type]
    raw = struct.pack(">" + fmt, float(value) if fmt in "fd" else int(value))
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [word[::-1] for word in words]
    return [int.from_bytes(word, "big") for word in words]


def decode_registers(registers: list[int], data_type: str, byte_order: Order, word_order: Order) -> float | int:
    """16-bit registers as read from the device -> raw value."""
    words = [register.to_bytes(2, "big") for register in registers]
    if byte_order == "little":
        words = [word[::-1] for word in words]
    if word_order == "little":
        words.reverse()
    return struct.unpack(">" + _FORMATS[data_type], b"".join(words))[0]
