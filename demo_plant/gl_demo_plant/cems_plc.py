"""Demo plant, CEMS PLC: a Modbus TCP server holding the "last completed hour" register block.

The block's layout is the site config's `cems.plc` points (`<unit_id>.<field>`, see
`config.CEMS_PLC_FIELDS`). Each read answers from the wall clock: the hour that closed last, its
values from `cems_model` with the demo's daily faults, a status word per parameter (0 valid,
1 missing, 2 failed calibration, 3 out of control). A missing value reads 0.0 with status 1, as a
PLC has no NaN convention worth trusting. Writes are refused and counted. Built like
`modbus_server` on pymodbus's SimDevice API, on its own port.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimDevice

from gl_demo_plant.cems_model import cems_hours, demo_faults
from gl_demo_plant.modbus_server import listen, sim_blocks
from gl_demo_plant.plant_model import DEFAULT_SEED
from gl_demo_plant.threaded import ThreadedServer
from gl_pipelines.cems.plc import CODES_BY_STATUS
from gl_pipelines.config import CemsSource, ModbusPoint
from gl_pipelines.resources.modbus_codec import encode_registers

log = logging.getLogger(__name__)


def last_completed_hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


class DemoCemsPlc:
    """The CEMS PLC of `source` on (host, port); port 0 picks a free one, readable once started."""

    def __init__(
        self,
        source: CemsSource,
        host: str = "127.0.0.1",
        port: int = 5021,
        seed: int = DEFAULT_SEED,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if source.plc is None:
            raise ValueError("the site's cems section has no plc block to serve")
        self.source, self.host, self.port, self.seed, self.clock = source, host, port, seed, clock
        self.device = source.plc
        self.requests = 0
        self.writes_rejected = 0
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        blocks = sim_blocks(self.device.points)
        device = SimDevice(self.device.device_id, simdata=blocks, action=functools.partial(self._on_access))
        self._server = ModbusTcpServer([device], address=(self.host, self.port))
        self.port = await listen(self._server, "the demo CEMS PLC", self.host, self.port)
        log.info("demo CEMS PLC on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server:
            await self._server.shutdown()
            self._server = None

    def block_values(self, hour: datetime) -> dict[str, float]:
        """Point name -> engineering value of the block describing `hour` (UTC hour start)."""
        offset = self.source.lst_utc_offset_hours
        values: dict[str, float] = {}
        for unit in self.source.units:
            frame = cems_hours(
                unit.unit_id, hour, hour + timedelta(hours=1), demo_faults([hour], offset), seed=self.seed
            )
            row = frame.iloc[0].to_dict()
            row["hour_start_epoch"] = hour.timestamp()
            for name, value in row.items():
                if name.endswith("_status"):
                    value = CODES_BY_STATUS[value]
                elif not isinstance(value, int | float) or math.isnan(value):
                    continue
                values[f"{unit.unit_id}.{name}"] = float(value)
        return values

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if set_values is not None:
            self.writes_rejected += 1
            return ExcCodes.ILLEGAL_FUNCTION
        table = {3: "holding", 4: "input"}.get(function_code)
        if table is None:
            return None
        values = self.block_values(last_completed_hour(self.clock()))
        for point in self.device.points:
            if point.table != table or point.address + point.register_count <= address:
                continue
            if point.address >= address + count:
                continue
            words = encode_registers(
                _raw(point, values.get(point.name, 0.0)), point.type, point.byte_order, point.word_order
            )
            slot = point.address - start_address
            registers[slot : slot + len(words)] = words
        return None


def _raw(point: ModbusPoint, value: float) -> float | int:
    raw = (value - point.offset) / point.scale
    return round(raw) if point.type not in ("float32", "float64") else raw


class ThreadedCemsPlcServer(ThreadedServer[DemoCemsPlc]):
    """A DemoCemsPlc on its own event loop in a daemon thread (for tests and the demo)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(DemoCemsPlc(**kwargs), name="demo-cems-plc")
