"""Modbus read planning: the fewest requests that cover a device's points, and decoding their replies.

Pure functions, no I/O: the resource sends what `plan_reads` returns and hands each reply to
`decode_block`. A request per point would cost a round trip each (a 1,000-register meter map means
hundreds of requests); merging neighbours into blocks up to the protocol limits costs a few.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gl_pipelines.config import BIT_TABLES, ModbusPoint
from gl_pipelines.resources.modbus_codec import decode_registers

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


def plan_reads(points: Iterable[ModbusPoint], max_gap: int = 10) -> list[ReadBlock]:
    """Blocks covering every point once, per table in address order, each within the protocol limit.

    Two neighbours share a block when at most `max_gap` unused addresses lie between them: reading
    a few unused registers is cheaper than another round trip. Some devices answer "illegal data
    address" for unmapped registers; `max_gap=0` never reads one. Greedy extension is optimal here:
    the blocks are runs of consecutive points, and any run that fits still fits without its first point.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    by_table: dict[str, list[ModbusPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)
    blocks: list[ReadBlock] = []
    for table in sorted(by_table):
        limit = read_limit(table)
        run: list[ModbusPoint] = []
        start = end = 0
        for point in sorted(by_table[table], key=lambda p: p.address):
            point_end = point.address + point.register_count
            if run and point.address - end <= max_gap and point_end - start <= limit:
                run.append(point)
                end = max(end, point_end)
                continue
            if run:
                blocks.append(ReadBlock(table, start, end - start, tuple(run)))
            run, start, end = [point], point.address, point_end
        if run:
            blocks.append(ReadBlock(table, start, end - start, tuple(run)))
    return blocks


def decode_block(block: ReadBlock, values: Sequence[int] | Sequence[bool]) -> dict[str, float | int | bool]:
    """Raw value of every point in `block` from the registers (or bits) its request returned.

    Bit reads come back padded to a whole byte, so `values` may be longer than the block; shorter
    means the device sent less than asked for, which must not be decoded as if it were complete.
    """
    if len(values) < block.count:
        raise ValueError(f"{block.table} read at {block.address} returned {len(values)} values, expected {block.count}")
    raw: dict[str, float | int | bool] = {}
    for point in block.points:
        offset = point.address - block.address
        if block.table in BIT_TABLES:
            raw[point.name] = bool(values[offset])
        else:
            words = list(values[offset : offset + point.register_count])
            raw[point.name] = decode_registers(words, point.type, point.byte_order, point.word_order)
    return raw
