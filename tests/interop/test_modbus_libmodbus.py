"""ModbusResource against libmodbus's server (Debian libmodbus, C; nothing shared with pymodbus or us).

One server for the module, on a free loopback port, with this map:

- holding 0..399, input 1000..1099, coils 0..15, discrete inputs 100..115 (libmodbus's
  `modbus_mapping_new_start_address`): every other address answers 2, ILLEGAL DATA ADDRESS;
- every register type in all four byte/word layouts, with literal values whose bytes all differ, so
  that any layout mistake changes the value, laid out by the vendor names (ABCD, CDAB, BADC, DCBA;
  ABCDEFGH ... for 64 bits) written out here, not by our codec. (libmodbus's own float helpers are
  not used: in 3.1.6 on little-endian hosts `modbus_set_float_abcd` writes BADC, libmodbus #358);
- holes inside the map (holding 217 and 250) that answer 2 as well.

The server logs every request as (function code, address, count): the tests state exactly which
requests the client sends, including how it narrows down a refused block.
"""

from __future__ import annotations

import pytest

from gl_pipelines.config import ModbusDevice, ModbusPoint
from gl_pipelines.resources.modbus import ModbusResource
from gl_pipelines.resources.modbus_plan import AddressRange
from tests.interop.modbus_fixtures import libmodbus_server, libmodbus_server_binary  # noqa: F401 (fixture)

LAYOUTS = {  # (byte_order, word_order) -> vendor name of the byte sequence, by value width in bytes
    ("big", "big"): {2: "AB", 4: "ABCD", 8: "ABCDEFGH"},
    ("big", "little"): {2: "AB", 4: "CDAB", 8: "GHEFCDAB"},
    ("little", "big"): {2: "BA", 4: "BADC", 8: "BADCFEHG"},
    ("little", "little"): {2: "BA", 4: "DCBA", 8: "HGFEDCBA"},
}
# type -> (the value's big-endian bytes, the value they are)
VALUES = {
    "int16": ("8765", -30875),
    "uint16": ("BEEF", 48879),
    "int32": ("87654321", -2023406815),
    "uint32": ("89ABCDEF", 2309737967),
    "int64": ("8123456789ABCDEF", -9141386507638288913),
    "uint64": ("FEDCBA9876543210", 18364758544493064720),
    "float32": ("4640E6B6", 12345.677734375),
    "float64": ("C0934A456D5CFAAD", -1234.5678),
}
COILS = [1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0]
DISCRETE = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1]


def vendor_words(big_endian_hex: str, name: str) -> list[int]:
    """Registers holding the value whose big-endian bytes are A, B, C... in the order `name` spells."""
    raw = bytes.fromhex(big_endian_hex)
    laid_out = bytes(raw[ord(letter) - ord("A")] for letter in name)
    return [int.from_bytes(laid_out[i : i + 2], "big") for i in range(0, len(laid_out), 2)]


def typed_points() -> list[tuple[ModbusPoint, float]]:
    """Every type in every layout, one unused register after each: integers in holding from 10,
    floats in input from 1000."""
    points, address = [], {"holding": 10, "input": 1000}
    for data_type, (_, value) in VALUES.items():
        table = "input" if data_type.startswith("float") else "holding"
        for byte_order, word_order in LAYOUTS:
            name = f"T.{data_type}.{LAYOUTS[byte_order, word_order][4]}"
            point = ModbusPoint(
                name=name,
                table=table,
                address=address[table],
                type=data_type,
                byte_order=byte_order,
                word_order=word_order,
                unit="1",
            )
            points.append((point, float(value)))
            address[table] += point.register_count + 1
    return points


ISOLATION = [*range(200, 240), *range(245, 250), *range(251, 256), *range(395, 401)]
"""uint16 points (value 3 x address) around the holes at holding 217 and 250 and the map's end at 400."""


def map_lines() -> list[str]:
    lines = ["map holding 0 400", "map input 1000 100", "map coil 0 16", "map discrete 100 16"]
    lines += ["hole holding 217", "hole holding 250"]
    for point, _ in typed_points():
        data_type, order = point.type, LAYOUTS[point.byte_order, point.word_order]
        words = vendor_words(VALUES[data_type][0], order[len(VALUES[data_type][0]) // 2])
        lines += [f"reg {point.table} {point.address + i} {word:#06x}" for i, word in enumerate(words)]
    lines += [f"reg holding {address} {3 * address}" for address in ISOLATION if address < 400]
    lines += [f"reg coil {i} {bit}" for i, bit in enumerate(COILS)]
    lines += [f"reg discrete {100 + i} {bit}" for i, bit in enumerate(DISCRETE)]
    return lines


@pytest.fixture(scope="module")
def server(libmodbus_server_binary, tmp_path_factory):  # noqa: F811 (the fixture, imported above)
    binary, _ = libmodbus_server_binary
    with libmodbus_server(binary, map_lines(), tmp_path_factory.mktemp("libmodbus-map")) as running:
        yield running


@pytest.fixture
def libmodbus(server):
    server.clear()
    yield server
    assert [r for r in server.requests() if r[0] > 4] == []  # never a write


def device(server, points: list[ModbusPoint], name: str = "lm") -> ModbusDevice:
    return ModbusDevice(name=name, host="127.0.0.1", port=server.port, device_id=1, timeout_s=2, points=points)


def reader(**settings) -> ModbusResource:
    return ModbusResource(devices_json="[]", source_name="libmodbus", **settings)


def test_every_type_in_every_layout_reads_the_exact_value(libmodbus):
    typed = typed_points()
    bits = [ModbusPoint(name=f"C{i}", table="coil", address=i, type="bool", unit="1") for i in range(16)]
    bits += [ModbusPoint(name=f"D{i}", table="discrete", address=100 + i, type="bool", unit="1") for i in range(16)]
    snapshot = reader().read_points([device(libmodbus, [p for p, _ in typed] + bits)])
    frame = snapshot.frame.set_index("tag")
    assert set(frame["quality"]) == {"good"} and set(frame["status"]) == {"ok"}
    assert {p.name: frame.loc[p.name, "value"] for p, _ in typed} == {p.name: value for p, value in typed}
    assert [frame.loc[f"C{i}", "value"] for i in range(16)] == [float(bit) for bit in COILS]
    assert [frame.loc[f"D{i}", "value"] for i in range(16)] == [float(bit) for bit in DISCRETE]
    # One request per table: holding 10..89 (6 integer types x 4, one unused register after each),
    # input 1000..1031, coils 0..15, discrete 100..115.
    assert libmodbus.requests() == [(1, 0, 16), (2, 100, 16), (3, 10, 79), (4, 1000, 31)]
    assert snapshot.requests == 4 and snapshot.refused == {}


def test_illegal_addresses_are_isolated_and_the_next_read_plans_around_them(libmodbus):
    """Holding 217 (a hole under a point), 250 (a hole between two points) and 400 (past the map's
    end, refused by libmodbus itself). Two blocks: [200, 256) and [395, 401), both refused. Halves:
    [200..224] fails; [200..211] ok, so [212..224] is known to fail; [212..217] fails; [212..214] ok;
    [215] ok; [216] ok, so [217] is refused without asking; [218..224] ok; [225..255] fails; [225..236]
    ok; [237..247] ok; [248..251] fails; [248], [249], [251] ok: 250 lies between; [252..255] ok.
    [395..397] ok, [398], [399] ok, so [400] is refused."""
    points = [ModbusPoint(name=f"R{a}", table="holding", address=a, type="uint16", unit="1") for a in ISOLATION]
    meter = device(libmodbus, points)
    modbus = reader()
    first = modbus.read_points([meter])
    assert libmodbus.requests() == [
        (3, 200, 56),
        (3, 200, 25),
        (3, 200, 12),
        (3, 212, 6),
        (3, 212, 3),
        (3, 215, 1),
        (3, 216, 1),
        (3, 218, 7),
        (3, 225, 31),
        (3, 225, 12),
        (3, 237, 11),
        (3, 248, 4),
        (3, 248, 1),
        (3, 249, 1),
        (3, 251, 1),
        (3, 252, 4),
        (3, 395, 6),
        (3, 395, 3),
        (3, 398, 1),
        (3, 399, 1),
    ]
    assert first.requests == 20
    frame = first.frame.set_index("tag")
    bad = frame[frame["quality"] == "bad"]
    assert bad["status"].to_dict() == {
        "R217": "exception 2 (ILLEGAL DATA ADDRESS) from device lm: point R217 at holding 217",
        "R400": "exception 2 (ILLEGAL DATA ADDRESS) from device lm: point R400 at holding 400",
    }
    good = frame[frame["quality"] == "good"]
    assert good["value"].to_dict() == {f"R{a}": 3.0 * a for a in ISOLATION if a not in (217, 400)}
    refused = (AddressRange("holding", 217, 217), AddressRange("holding", 250, 250), AddressRange("holding", 400, 400))
    assert first.refused == {"lm": refused}

    libmodbus.clear()
    second = modbus.read_points([meter])
    assert libmodbus.requests() == [(3, 200, 17), (3, 217, 1), (3, 218, 32), (3, 251, 5), (3, 395, 5), (3, 400, 1)]
    assert second.requests == 6 and second.refused == {"lm": refused}
    assert second.frame.set_index("tag")["status"].to_dict() == first.frame.set_index("tag")["status"].to_dict()


def test_a_bit_before_the_map_start_is_isolated(libmodbus):
    """Discrete input 99 lies before the map (100..115): [99..105] fails, [99..101] fails, [99] fails,
    [100..101] ok, [102..105] ok."""
    points = [ModbusPoint(name=f"D{a}", table="discrete", address=a, type="bool", unit="1") for a in range(99, 106)]
    snapshot = reader().read_points([device(libmodbus, points)])
    assert libmodbus.requests() == [(2, 99, 7), (2, 99, 3), (2, 99, 1), (2, 100, 2), (2, 102, 4)]
    frame = snapshot.frame.set_index("tag")
    assert frame.loc["D99", "status"] == "exception 2 (ILLEGAL DATA ADDRESS) from device lm: point D99 at discrete 99"
    assert frame.loc[frame["quality"] == "good", "value"].to_dict() == {
        f"D{a}": float(DISCRETE[a - 100]) for a in range(100, 106)
    }
    assert snapshot.refused == {"lm": (AddressRange("discrete", 99, 99),)}


def test_libmodbus_version_is_recorded(libmodbus_server_binary):  # noqa: F811
    """What the README's "Tested against" names: Debian bookworm's libmodbus."""
    _, version = libmodbus_server_binary
    assert version.startswith("3.1.")
