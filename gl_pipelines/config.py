"""Site configuration: what to extract from which system, validated before anything runs.

A plant engineer edits one YAML file per site. A mistake in it must fail at load time with the
file, the field and the offending value, not hours later inside a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEMO_SITE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo_site.yaml"
SITE_CONFIG_ENV = "GL_SITE_CONFIG"


class SiteConfigError(ValueError):
    """A site configuration file that cannot be used, with the file, field and value named."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpcUaTag(_Strict):
    name: str = Field(min_length=1, description="Site tag name stored in the warehouse.")
    node_id: str = Field(description="OPC UA NodeId string, e.g. 'ns=2;s=Boiler1.SteamFlow'.")
    unit: str = Field(min_length=1, description="Engineering unit, pint-parsable.")
    min: float = Field(description="Lowest plausible value in `unit`.")
    max: float = Field(description="Highest plausible value in `unit`.")

    @field_validator("node_id")
    @classmethod
    def _node_id_parses(cls, value: str) -> str:
        from asyncua import ua

        try:
            ua.NodeId.from_string(value)
        except Exception as exc:  # asyncua raises several types for malformed ids
            raise ValueError(f"not a valid OPC UA NodeId: {exc}") from None
        return value

    @model_validator(mode="after")
    def _range_ordered(self) -> OpcUaTag:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class OpcUaSource(_Strict):
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="Server endpoint URL.")
    source_name: str = Field(default="opcua", description="Name recorded in the `source` column.")
    sample_interval_s: float = Field(gt=0, description="Expected spacing of raw samples, for completeness.")
    tags: list[OpcUaTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tags(self) -> OpcUaSource:
        for field in ("name", "node_id"):
            seen: set[str] = set()
            for tag in self.tags:
                value = getattr(tag, field)
                if value in seen:
                    raise ValueError(f"duplicate tag {field} {value!r}")
                seen.add(value)
        return self

    def tag_ranges(self) -> dict[str, tuple[float, float]]:
        return {tag.name: (tag.min, tag.max) for tag in self.tags}


REGISTER_TABLES = ("holding", "input")
BIT_TABLES = ("coil", "discrete")
REGISTER_COUNT = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}


class ModbusPoint(_Strict):
    """One value on a Modbus device. `address` is the 0-based protocol address: holding register
    `40001` in a vendor manual is table `holding`, address 0 (subtract 40001; input registers
    `30001` -> subtract 30001; coils `00001` -> subtract 1; discrete inputs `10001` -> subtract 10001)."""

    name: str = Field(min_length=1, description="Site point name stored in the warehouse.")
    table: Literal["holding", "input", "coil", "discrete"]
    address: int = Field(ge=0, le=65535)
    type: Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool"]
    byte_order: Literal["big", "little"] = Field(default="big", description="Bytes within each 16-bit word.")
    word_order: Literal["big", "little"] = Field(default="big", description="Words within a multi-word value.")
    scale: float = 1.0
    offset: float = 0.0
    unit: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    totalizer: bool = Field(default=False, description="A cumulative counter read for consumption.")
    rollover: float | None = Field(default=None, gt=0, description="Raw count at which the totalizer wraps to 0.")

    @property
    def register_count(self) -> int:
        return 1 if self.type == "bool" else REGISTER_COUNT[self.type]

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        if (self.type == "bool") != (self.table in BIT_TABLES):
            raise ValueError(f"type {self.type!r} cannot live in table {self.table!r} (bool <-> coil/discrete)")
        last = self.address + self.register_count - 1
        if last > 65535:
            raise ValueError(f"{self.type} at address {self.address} ends at {last}, past 65535")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.rollover is not None and not self.totalizer:
            raise ValueError("rollover is only meaningful for a totalizer")
        return self


class ModbusDevice(_Strict):
    name: str = Field(min_length=1)
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    device_id: int = Field(default=1, ge=0, le=255, description="Modbus unit/device id.")
    timeout_s: float = Field(default=3.0, gt=0)
    points: list[ModbusPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> ModbusDevice:
        names: set[str] = set()
        taken: dict[tuple[str, int], str] = {}
        for point in self.points:
            if point.name in names:
                raise ValueError(f"device {self.name}: duplicate point name {point.name!r}")
            names.add(point.name)
            for address in range(point.address, point.address + point.register_count):
                other = taken.get((point.table, address))
                if other:
                    raise ValueError(
                        f"device {self.name}: point {point.name!r} overlaps point {other!r} "
                        f"at {point.table} address {address}"
                    )
                taken[(point.table, address)] = point.name
        return self


class ModbusSource(_Strict):
    source_name: str = "modbus"
    max_gap: int = Field(default=10, ge=0, le=124, description="Unused registers bridged to merge two reads.")
    max_read_delay_s: float = Field(
        default=900, gt=0, description="A boundary snapshot read later than this is refused: meters keep no history."
    )
    devices: list[ModbusDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_devices(self) -> ModbusSource:
        seen: set[str] = set()
        for device in self.devices:
            if device.name in seen:
                raise ValueError(f"duplicate device name {device.name!r}")
            seen.add(device.name)
        return self


class SiteInfo(_Strict):
    name: str
    timezone: str = Field(description="IANA zone of the plant, for local-day reporting and schedules.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone") from None
        return value


class CheckThresholds(_Strict):
    min_expected_share: float = Field(default=0.95, ge=0, le=1)
    min_good_share: float = Field(default=0.9, ge=0, le=1)


class SiteConfig(_Strict):
    site: SiteInfo
    opcua: OpcUaSource
    modbus: ModbusSource | None = None
    checks: CheckThresholds = CheckThresholds()


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"field '{location}' is missing"
    return f"field '{location}' = {error.get('input')!r}: {error['msg']}"


def parse_site_config(raw: Any, origin: str) -> SiteConfig:
    """Validate an already-parsed YAML document; `origin` names it in errors."""
    try:
        return SiteConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise SiteConfigError(f"{origin}: invalid site config: {problems}") from None


def load_site_config(path: str | Path | None = None) -> SiteConfig:
    """Load the site config from `path`, else $GL_SITE_CONFIG, else the demo site."""
    path = Path(path or os.environ.get(SITE_CONFIG_ENV) or DEMO_SITE_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read site config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SiteConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_site_config(raw, str(path))
