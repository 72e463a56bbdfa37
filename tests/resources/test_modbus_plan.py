"""The read planner and block decoder, property-based: any register map, any layout."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gl_pipelines.config import BIT_TABLES, REGISTER_COUNT, ModbusPoint
from gl_pipelines.resources.modbus_codec import decode_registers, encode_registers
from gl_pipelines.resources.modbus_plan import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    AddressRange,
    ReadBlock,
    decode_block,
    decode_values,
    plan_reads,
    read_limit,
    split_block,
)

REGISTER_TYPES = sorted(REGISTER_COUNT)
ORDERS = ["big", "little"]
INTEGER_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def point(name: str, table: str, address: int, data_type: str, byte_order="big", word_order="big") -> ModbusPoint:
    return ModbusPoint(
        name=name,
        table=table,
        address=address,
        type=data_type,
        byte_order=byte_order,
        word_order=word_order,
        unit="dimensionless",
    )


@st.composite
def register_maps(draw, tables=("holding", "input", "coil", "discrete"), max_gap_between=40):
    """Non-overlapping points on up to four tables, spaced by random gaps (0 = contiguous)."""
    points = []
    for table in draw(st.lists(st.sampled_from(tables), min_size=1, max_size=len(tables), unique=True)):
        address = draw(st.integers(0, 200))
        for _ in range(draw(st.integers(1, 150))):
            data_type = "bool" if table in BIT_TABLES else draw(st.sampled_from(REGISTER_TYPES))
            size = 1 if data_type == "bool" else REGISTER_COUNT[data_type]
            if address + size > 65536:
                break
            points.append(point(f"{table}.{len(points)}", table, address, data_type))
            address += size + draw(st.integers(0, max_gap_between))
    return points


def refused(ranges: list[AddressRange], table: str, start: int, end: int) -> bool:
    """Whether any address in [start, end) of `table` is in one of `ranges`."""
    return any(r.table == table and max(r.first, start) <= min(r.last, end - 1) for r in ranges)


def fewest_blocks(points: list[ModbusPoint], max_gap: int, avoid: list[AddressRange] = ()) -> int:
    """Independent oracle: the fewest runs of consecutive points that each make one legal request (DP).
    A run of two or more points may neither touch a refused address nor bridge one."""
    total = 0
    for table in {p.table for p in points}:
        ordered = sorted((p for p in points if p.table == table), key=lambda p: p.address)
        best = [0] * (len(ordered) + 1)  # best[i]: fewest requests for ordered[i:]
        for i in range(len(ordered) - 1, -1, -1):
            best[i], j = math.inf, i
            while j < len(ordered):
                previous_end = ordered[j - 1].address + ordered[j - 1].register_count
                gap_ok = j == i or (
                    ordered[j].address - previous_end <= max_gap
                    and not refused(avoid, table, previous_end, ordered[j].address)
                    and not refused(avoid, table, ordered[i].address, ordered[i].address + ordered[i].register_count)
                    and not refused(avoid, table, ordered[j].address, ordered[j].address + ordered[j].register_count)
                )
                if not gap_ok or ordered[j].address + ordered[j].register_count - ordered[i].address > read_limit(
                    table
                ):
                    break  # a run that breaks a rule stays broken however far it extends
                best[i] = min(best[i], 1 + best[j + 1])
                j += 1
        total += best[0]
    return total


@settings(max_examples=150, deadline=None)
@given(points=register_maps(), max_gap=st.integers(0, 30))
def test_every_point_in_exactly_one_block_within_limits(points, max_gap):
    blocks = plan_reads(points, max_gap=max_gap)
    covered = [p.name for block in blocks for p in block.points]
    assert sorted(covered) == sorted(p.name for p in points)
    for block in blocks:
        assert 1 <= block.count <= read_limit(block.table)
        assert {p.table for p in block.points} == {block.table}
        members = sorted(block.points, key=lambda p: p.address)
        # Tight: the block starts at its first point and ends with its last.
        assert block.address == members[0].address
        assert block.end == members[-1].address + members[-1].register_count
        for a, b in pairwise(members):
            assert b.address - (a.address + a.register_count) <= max_gap


@settings(max_examples=150, deadline=None)
@given(points=register_maps(), max_gap=st.integers(0, 30))
def test_request_count_is_minimal(points, max_gap):
    blocks = plan_reads(points, max_gap=max_gap)
    assert len(blocks) == fewest_blocks(points, max_gap)
    # Neighbouring blocks stay apart only for a reason: too far apart, or together too long.
    for a, b in pairwise(blocks):
        if a.table == b.table:
            first = min(b.points, key=lambda p: p.address)
            assert first.address - a.end > max_gap or first.address + first.register_count - a.address > read_limit(
                a.table
            )


@st.composite
def maps_with_refused(draw):
    """A register map and a few refused address ranges of its tables, on points or between them."""
    points = draw(register_maps(max_gap_between=8))
    ranges = []
    for _ in range(draw(st.integers(1, 6))):
        table = draw(st.sampled_from(sorted({p.table for p in points})))
        addresses = [p.address for p in points if p.table == table]
        first = draw(st.integers(min(addresses), max(addresses) + 4))
        ranges.append(AddressRange(table, first, first + draw(st.integers(0, 5))))
    return points, ranges


@settings(max_examples=80, deadline=None)
@given(layout=maps_with_refused(), max_gap=st.integers(0, 30))
def test_refused_addresses_are_read_alone_or_not_at_all_and_the_plan_stays_minimal(layout, max_gap):
    points, avoid = layout
    blocks = plan_reads(points, max_gap=max_gap, avoid=avoid)
    assert sorted(p.name for block in blocks for p in block.points) == sorted(p.name for p in points)
    for block in blocks:
        assert 1 <= block.count <= read_limit(block.table)
        if len(block.points) > 1:
            assert not refused(avoid, block.table, block.address, block.end), block
    assert len(blocks) == fewest_blocks(points, max_gap, avoid)


def test_a_refused_point_splits_its_run_in_three():
    points = [point(f"u{i}", "holding", i, "uint16") for i in range(10)]
    blocks = plan_reads(points, avoid=[AddressRange("holding", 4, 4), AddressRange("input", 0, 9)])
    assert [(b.address, b.count) for b in blocks] == [(0, 4), (4, 1), (5, 5)]
    gap = [point("a", "holding", 0, "uint16"), point("b", "holding", 8, "uint16")]
    assert [(b.address, b.count) for b in plan_reads(gap, avoid=[AddressRange("holding", 3, 5)])] == [(0, 1), (8, 1)]


def test_split_halves_a_block_by_points_each_half_tight():
    points = (
        point("a", "holding", 0, "uint16"),
        point("b", "holding", 5, "float32"),
        point("c", "holding", 20, "uint64"),
        point("d", "holding", 30, "uint16"),
        point("e", "holding", 40, "int16"),
    )
    left, right = split_block(ReadBlock("holding", 0, 41, points))
    assert (left.address, left.count, [p.name for p in left.points]) == (0, 7, ["a", "b"])
    assert (right.address, right.count, [p.name for p in right.points]) == (20, 21, ["c", "d", "e"])
    with pytest.raises(ValueError, match="cannot be split"):
        split_block(left.__class__("holding", 0, 1, points[:1]))


def test_address_range_reads_as_the_status_prints_it():
    assert str(AddressRange("holding", 299, 300)) == "holding 299..300"
    assert str(AddressRange("input", 7, 7)) == "input 7"
    assert AddressRange.parse("holding 299..300") == AddressRange("holding", 299, 300)
    assert AddressRange.parse("input 7") == AddressRange("input", 7, 7)


@settings(max_examples=40, deadline=None)
@given(
    table=st.sampled_from(["holding", "input", "coil", "discrete"]),
    n=st.integers(1, 4500),
    start=st.integers(0, 60000),
    max_gap=st.integers(0, 30),
)
def test_contiguous_map_needs_ceil_total_over_limit(table, n, start, max_gap):
    n = min(n, 65536 - start)
    data_type = "bool" if table in BIT_TABLES else "uint16"
    points = [point(f"p{i}", table, start + i, data_type) for i in range(n)]
    assert len(plan_reads(points, max_gap=max_gap)) == math.ceil(n / read_limit(table))


def test_thousand_register_mixed_map_needs_eight_requests():
    """A uint16 then 62 float32 per 125 registers: no value straddles a limit, so 8 requests cover 1,000."""
    points = []
    for block in range(8):
        base = block * MAX_REGISTERS_PER_READ
        points.append(point(f"u{block}", "holding", base, "uint16"))
        points += [point(f"f{block}.{i}", "holding", base + 1 + 2 * i, "float32") for i in range(62)]
    blocks = plan_reads(points)
    assert [(b.address, b.count) for b in blocks] == [(i * 125, 125) for i in range(8)]


def test_gap_bridged_up_to_max_gap_and_no_further():
    near = [point("a", "holding", 0, "uint16"), point("b", "holding", 11, "uint16")]  # 10 unused between
    assert len(plan_reads(near, max_gap=10)) == 1
    assert len(plan_reads(near, max_gap=9)) == 2
    with pytest.raises(ValueError, match="max_gap"):
        plan_reads(near, max_gap=-1)


def test_a_value_never_straddles_the_limit():
    points = [point(f"u{i}", "input", i, "uint16") for i in range(124)] + [point("wide", "input", 124, "float64")]
    blocks = plan_reads(points)
    assert [(b.address, b.count) for b in blocks] == [(0, 124), (124, 4)]


def test_bit_tables_use_the_bit_limit():
    coils = [point(f"c{i}", "coil", i, "bool") for i in range(MAX_BITS_PER_READ + 1)]
    assert [(b.address, b.count) for b in plan_reads(coils)] == [(0, MAX_BITS_PER_READ), (MAX_BITS_PER_READ, 1)]


def values_for(data_type: str):
    if data_type == "float32":
        return st.floats(width=32, allow_nan=False)
    if data_type == "float64":
        return st.floats(allow_nan=False)
    return st.integers(*INTEGER_RANGES[data_type])


@st.composite
def layouts_with_values(draw):
    """One point of every type in one byte/word order, at random gaps, with a random value each."""
    byte_order, word_order = draw(st.sampled_from(ORDERS)), draw(st.sampled_from(ORDERS))
    address, points, values = draw(st.integers(0, 1000)), [], {}
    for data_type in draw(st.permutations(REGISTER_TYPES)):
        p = point(data_type, "holding", address, data_type, byte_order, word_order)
        points.append(p)
        values[p.name] = draw(values_for(data_type))
        address += p.register_count + draw(st.integers(0, 3))
    return points, values


@settings(max_examples=300, deadline=None)
@given(layouts_with_values())
def test_decode_round_trips_every_type_and_order(layout):
    points, values = layout
    (block,) = plan_reads(points, max_gap=3)
    registers = [0xDEAD] * block.count  # gap filler must never leak into a value
    for p in points:
        words = encode_registers(values[p.name], p.type, p.byte_order, p.word_order)
        registers[p.address - block.address : p.address - block.address + p.register_count] = words
    assert decode_block(block, registers) == values


@st.composite
def mixed_layouts(draw):
    """Points of random types, each in its own byte/word order, side by side in one block of random registers."""
    points, address = [], 0
    for i in range(draw(st.integers(1, 30))):
        data_type = draw(st.sampled_from(REGISTER_TYPES))
        p = point(f"p{i}", "holding", address, data_type, draw(st.sampled_from(ORDERS)), draw(st.sampled_from(ORDERS)))
        points.append(p)
        address += p.register_count + draw(st.integers(0, 2))
    return points, draw(st.lists(st.integers(0, 0xFFFF), min_size=address, max_size=address))


@settings(max_examples=200, deadline=None)
@given(mixed_layouts())
def test_vectorized_decode_matches_the_scalar_codec_point_by_point(layout):
    """decode_values/decode_block decode per layout with numpy; each value must be what decode_registers
    gives for that point's own words (NaN where the words are a NaN)."""
    points, registers = layout
    (block,) = plan_reads(points, max_gap=2)
    expected = [
        decode_registers(registers[p.address : p.address + p.register_count], p.type, p.byte_order, p.word_order)
        for p in points
    ]
    exact = decode_block(block, registers)
    assert [exact[p.name] for p in points] == pytest.approx(expected, nan_ok=True, rel=0, abs=0)
    assert all(type(exact[p.name]) is type(value) for p, value in zip(points, expected, strict=True))
    assert list(decode_values(block, registers)) == pytest.approx([float(v) for v in expected], nan_ok=True, rel=0)


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [("big", "big", [0x4049, 0x0FDB]), ("big", "little", [0x0FDB, 0x4049]), ("little", "big", [0x4940, 0xDB0F])]
    + [("little", "little", [0xDB0F, 0x4940])],
)
def test_float32_layouts_match_vendor_names(byte_order, word_order, registers):
    """ABCD, CDAB, BADC, DCBA of pi as a float32 (0x40490FDB), as meter manuals print them."""
    block = ReadBlock("holding", 0, 2, (point("pi", "holding", 0, "float32", byte_order, word_order),))
    assert decode_block(block, registers)["pi"] == pytest.approx(math.pi, rel=1e-7)


@settings(max_examples=100, deadline=None)
@given(bits=st.lists(st.booleans(), min_size=1, max_size=40), padding=st.integers(0, 7))
def test_bits_decode_with_byte_padding(bits, padding):
    points = [point(f"b{i}", "discrete", 100 + i, "bool") for i in range(len(bits))]
    (block,) = plan_reads(points)
    assert decode_block(block, bits + [True] * padding) == {f"b{i}": bit for i, bit in enumerate(bits)}


def test_short_reply_is_refused():
    block = ReadBlock("holding", 10, 2, (point("x", "holding", 10, "uint32"),))
    with pytest.raises(ValueError, match="returned 1 values, expected 2"):
        decode_block(block, [1])
