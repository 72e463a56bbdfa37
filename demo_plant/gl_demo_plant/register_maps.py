"""Synthetic Modbus register maps for scale tests and benchmarks (the demo server serves any map)."""

from gl_pipelines.config import ModbusDevice, ModbusPoint


def contiguous_1000(name: str, device_id: int = 1) -> ModbusDevice:
    """1,000 holding registers with no gap: per 125, one uint16 then 62 float32 (none straddles a
    request limit), so the fewest reads is exactly 8."""
    points = []
    for block in range(8):
        base = block * 125
        points.append(ModbusPoint(name=f"{name}.U{block}", table="holding", address=base, type="uint16", unit="1"))
        points += [
            ModbusPoint(
                name=f"{name}.F{block}_{i}", table="holding", address=base + 1 + 2 * i, type="float32", unit="1"
            )
            for i in range(62)
        ]
    return ModbusDevice(name=name, host="127.0.0.1", device_id=device_id, points=points)
