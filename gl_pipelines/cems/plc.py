"""The CEMS PLC's "last completed hour" register block -> `cems_hourly_raw` rows.

The block (points `<unit_id>.<field>`, see `config.CEMS_PLC_FIELDS`) holds, per unit, the start of
the hour it describes (UTC epoch seconds), that hour's averages and one status word per parameter:
0 valid, 1 missing, 2 failed calibration, 3 out of control. A unit whose block could not be read
whole (any `bad` point) gives no row rather than a partial one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from gl_pipelines.cems.schema import (
    PARAMETERS,
    RAW_COLUMNS,
    STATUS_CALIBRATION_FAILED,
    STATUS_MISSING,
    STATUS_OUT_OF_CONTROL,
    STATUS_VALID,
    empty_raw_frame,
    validate_raw_frame,
)
from gl_pipelines.config import CEMS_PLC_STATUS_FIELDS, CEMS_PLC_VALUE_FIELDS

PLC_SOURCE = "plc"
STATUS_CODES = {0: STATUS_VALID, 1: STATUS_MISSING, 2: STATUS_CALIBRATION_FAILED, 3: STATUS_OUT_OF_CONTROL}
CODES_BY_STATUS = {status: code for code, status in STATUS_CODES.items()}


class PlcBlockError(ValueError):
    """A register block that cannot be a CEMS hour; names the unit, the point and the value."""


def plc_block_rows(readings: pd.DataFrame, units: Sequence[str], lst_offset_hours: int, endpoint: str) -> pd.DataFrame:
    """The long snapshot frame of a ModbusResource read (tag, value, quality) -> one raw row per unit."""
    values = dict(zip(readings["tag"], readings["value"], strict=True))
    quality = dict(zip(readings["tag"], readings["quality"], strict=True))
    rows = []
    for unit in units:
        names = [name for name in values if name.startswith(f"{unit}.")]
        if not names or any(quality[name] != "good" for name in names):
            continue
        epoch = values[f"{unit}.hour_start_epoch"]
        hour = datetime.fromtimestamp(int(epoch), tz=UTC)
        if epoch != int(epoch) or hour.minute or hour.second:
            raise PlcBlockError(f"PLC {endpoint}: {unit}.hour_start_epoch = {epoch!r} is not a whole hour")
        row: dict[str, object] = {
            "unit_id": unit,
            "hour_start_utc": hour,
            "hour_start_lst": hour.replace(tzinfo=None) + timedelta(hours=lst_offset_hours),
            **{field: values.get(f"{unit}.{field}", float("nan")) for field in CEMS_PLC_VALUE_FIELDS},
            "source": PLC_SOURCE,
            "source_ref": f"{endpoint} block {unit} hour {hour.isoformat()}",
        }
        for field in CEMS_PLC_STATUS_FIELDS:
            code = values.get(f"{unit}.{field}", 1.0)
            if code not in STATUS_CODES:
                raise PlcBlockError(f"PLC {endpoint}: {unit}.{field} = {code!r} is not a status word 0-3")
            row[field] = STATUS_CODES[int(code)]
        # A PLC has no NaN: a missing parameter reads 0.0 beside status 1. Store no value, not a zero.
        for parameter, (value_column, status_column) in PARAMETERS.items():
            if row.get(status_column) == STATUS_MISSING:
                blank = [value_column, "nox_rate_lb_mmbtu"] if parameter == "nox" else [value_column]
                row.update(dict.fromkeys(blank, float("nan")))
        rows.append(row)
    if not rows:
        return empty_raw_frame()
    frame = pd.DataFrame(rows)
    frame["hour_start_utc"] = pd.to_datetime(frame["hour_start_utc"], utc=True)
    frame["hour_start_lst"] = pd.to_datetime(frame["hour_start_lst"])
    return validate_raw_frame(frame[RAW_COLUMNS], f"PLC {endpoint}")
