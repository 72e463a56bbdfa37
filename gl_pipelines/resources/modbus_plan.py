"""Modbus read planning: the fewest requests that cover a device's points, and decoding their replies.

Pure functions, no I/O: the resource sends what `plan_reads` returns and hands each reply to
`decode_values`. A request per point would cost a round trip each (a 1,000-register meter map means
hundreds of requests); merging neighbours into blocks up to the protocol limits costs a few.
A block's reply is decoded with numpy, one step per register layout rather than one per point.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gl_pipelines.config import BIT_TABLES, ModbusPoint
from gl_pipelines.resources.modbus_codec import NUMPY_TYPES

MAX_REGISTERS_PER_READ = 125
"""Read Holding/Input Registers (0x03/0x04) carry at most 125 registers (Modbus spec 6.3, 6.4)."""
MAX_BITS_PER_READ = 2000
"""Read Coils/Discrete Inputs (0x01/0x02) carry at most 2,000 bits (Modbus spec 6.1, 6.2)."""


def read_limit(table: str) -> int:
    return MAX_BITS_PER_READ if table in BIT_TABLES else MAX_REGISTERS_PER_READ


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers (or bits) of `table` from `address`, covering `points`."""

    table: str
    address: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def end(self) -> int:
        """First address past the block."""
        return self.address + self.count

    @cached_property
    def layouts(self) -> tuple[_Layout, ...]:
        """The block's points grouped by register layout, with where each one's words sit in the reply."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, point in enumerate(self.points):
            groups.setdefault((point.type, point.byte_order, point.word_order), []).append(i)
        return tuple(_Layout.of(self, key, positions) for key, positions in groups.items())


@dataclass(frozen=True)
class _Layout:
    """Points of one block sharing a type and byte/word order."""

    positions: np.ndarray
    """Indices into the block's points."""
    offsets: np.ndarray
    """Per point, offsets into the reply of its words, most significant first (bits: one offset each)."""
    dtype: np.dtype | None
    """Big-endian numpy type of the value; None for bits."""
    byte_swap: bool

    @classmethod
    def of(cls, block: ReadBlock, key: tuple[str, str, str], positions: list[int]) -> _Layout:
        data_type, byte_order, word_order = key
        starts = np.array([block.points[i].address - block.address for i in positions])
        if data_type == "bool":
            return cls(np.array(positions), starts, None, False)
        words = np.arange(block.points[positions[0]].register_count)
        if word_order == "little":
            words = words[::-1]
        return cls(
            positions=np.array(positions),
            offsets=starts[:, None] + words,
            dtype=np.dtype(">" + NUMPY_TYPES[data_type]),
            byte_swap=byte_order == "little",
        )

    def decode(self, reply: np.ndarray) -> np.ndarray:
        """This layout's raw values from the reply (uint16 registers, or bools for bit tables)."""
        if self.dtype is None:
            return reply[self.offsets]
        words = reply[self.offsets]
        if self.byte_swap:
            words = words.byteswap()
        return words.astype(">u2").view(self.dtype).reshape(-1)


@dataclass(frozen=True, order=True)
class AddressRange:
    """Addresses `first..last` of `table` that a device refused to read (exception 2, illegal data address)."""

    table: str
    first: int
    last: int

    def overlaps(self, table: str, start: int, end: int) -> bool:
        """Whether any of [start, end) of `table` lies in this range."""
        return table == self.table and start <= self.last and end > self.first

    def __str__(self) -> str:
        return f"{self.table} {self.first}" if self.first == self.last else f"{self.table} {self.first}..{self.last}"

    @classmethod
    def parse(cls, text: str) -> AddressRange:
        """The range `str` printed, e.g. `holding 299..300` or `input 7`."""
        table, _, span = text.partition(" ")
        first, _, last = span.partition("..")
        return cls(table, int(first), int(last or first))


def plan_reads(points: Iterable[ModbusPoint], max_gap: int = 10, avoid: Iterable[AddressRange] = ()) -> list[ReadBlock]:
    """Blocks covering every point once, per table in address order, each within the protocol limit.

    Two neighbours share a block when at most `max_gap` unused addresses lie between them: reading
    a few unused registers is cheaper than another round trip. Some devices answer "illegal data
    address" for unmapped registers; `max_gap=0` never reads one. Greedy extension is optimal here:
    the blocks are runs of consecutive points, and any run that fits still fits without its first point.

    `avoid` are addresses the device refused before: no block bridges one, and a point lying on one
    is read alone, so that it fails without taking its neighbours with it.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    avoided: dict[str, list[AddressRange]] = {}
    for refused in avoid:
        avoided.setdefault(refused.table, []).append(refused)
    by_table: dict[str, list[ModbusPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)
    blocks: list[ReadBlock] = []
    for table in sorted(by_table):
        limit = read_limit(table)
        refused = avoided.get(table, [])
        run: list[ModbusPoint] = []
        start = end = 0
        alone = False  # the run is one point on a refused address
        for point in sorted(by_table[table], key=lambda p: p.address):
            point_end = point.address + point.register_count
            on_refused = any(r.overlaps(table, point.address, point_end) for r in refused)
            if (
                run
                and not alone
                and not on_refused
                and point.address - end <= max_gap
                and point_end - start <= limit
                and not any(r.overlaps(table, end, point.address) for r in refused)
            ):
                run.append(point)
                end = max(end, point_end)
                continue
            if run:
                blocks.append(ReadBlock(table, start, end - start, tuple(run)))
            run, start, end, alone = [point], point.address, point_end, on_refused
        if run:
            blocks.append(ReadBlock(table, start, end - start, tuple(run)))
    return blocks


def split_block(block: ReadBlock) -> tuple[ReadBlock, ReadBlock]:
    """A block of two or more points as two blocks of half its points each (in address order),
    each as tight as its points: what an exception reply to the whole block is narrowed down with."""
    if len(block.points) < 2:
        raise ValueError(f"a block of {len(block.points)} point cannot be split")
    points = sorted(block.points, key=lambda p: p.address)
    half = len(points) // 2
    return _tight(block.table, points[:half]), _tight(block.table, points[half:])


def _tight(table: str, points: Sequence[ModbusPoint]) -> ReadBlock:
    start = points[0].address
    end = max(p.address + p.register_count for p in points)
    return ReadBlock(table, start, end - start, tuple(points))


def _decoded(block: ReadBlock, values: Sequence[int] | Sequence[bool]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions in block.points, raw values) per layout.

    Bit reads come back padded to a whole byte, so `values` may be longer than the block; shorter
    means the device sent less than asked for, which must not be decoded as if it were complete.
    """
    if len(values) < block.count:
        raise ValueError(f"{block.table} read at {block.address} returned {len(values)} values, expected {block.count}")
    reply = np.asarray(values[: block.count], dtype=bool if block.table in BIT_TABLES else np.uint16)
    for layout in block.layouts:
        yield layout.positions, layout.decode(reply)


def decode_values(block: ReadBlock, values: Sequence[int] | Sequence[bool]) -> np.ndarray:
    """Raw value of every point in `block`, in the order of `block.points`, as float64 (bits 0/1)."""
    raw = np.empty(len(block.points))
    for positions, decoded in _decoded(block, values):
        raw[positions] = decoded
    return raw


def decode_block(block: ReadBlock, values: Sequence[int] | Sequence[bool]) -> dict[str, float | int | bool]:
    """Raw value of every point in `block` by name, exact: Python ints for integer types (all 64 bits)."""
    raw: dict[str, float | int | bool] = {}
    for positions, decoded in _decoded(block, values):
        for i, value in zip(positions.tolist(), decoded.tolist(), strict=True):
            raw[block.points[i].name] = value
    return raw
