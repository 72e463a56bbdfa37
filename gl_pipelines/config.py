"""Site configuration: what to extract from which system, validated before anything runs.

A plant engineer edits one YAML file per site. A mistake in it must fail at load time with the
file, the field and the offending value, not hours later inside a run. The message stays short
and safe: a value is quoted as a short scrubbed excerpt, a whole section never, the value of an
unknown or secret-named field not at all (it may be a password pasted into the wrong place).
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gl_pipelines.cems.schema import STATUS_COLUMNS as CEMS_STATUS_COLUMNS
from gl_pipelines.cems.schema import VALUE_COLUMNS as CEMS_VALUE_COLUMNS
from gl_pipelines.reporting.settings import ReportingConfig
from gl_pipelines.reporting.units import PintUnit, validate_unit
from gl_pipelines.scrub import excerpt, scrub

_SOURCE_TREE = Path(__file__).resolve().parents[1]
DEMO_SITE_CONFIG = _SOURCE_TREE / "config" / "demo_site.yaml"
SITE_CONFIG_ENV = "GL_SITE_CONFIG"
# Relative paths in the site config (and the default warehouse) are taken from the source checkout; an
# installed package (a wheel, a container image) has none, so they are taken from the working directory.
PROJECT_ROOT = _SOURCE_TREE if (_SOURCE_TREE / "pyproject.toml").is_file() else Path.cwd()
MAX_YAML_NODES = 1_000_000
"""A site file may not expand (aliases counted at each use) past this many YAML nodes: 1,006 tags
take about 11,000, and a 400-byte alias bomb expands to hundreds of millions."""
MAX_PROBLEMS_SHOWN = 5
MAX_PROBLEM_CHARS = 300
_SECRET_FIELD = re.compile(r"password|passwd|secret|(?<!_)token(?!_url)|api_?key|credential", re.IGNORECASE)


class SiteConfigError(ValueError):
    """A site configuration file that cannot be used, with the file, field and value named."""


def _no_credentials(url: str | None) -> str | None:
    """Refuse user:password@ in a URL: credentials come from the environment, never the site file."""
    if url is not None and "@" in urlsplit(url).netloc:
        raise ValueError("credentials must not be written into the URL (user:password@); set them in the environment")
    return url


class _Strict(BaseModel):
    # `.inf` / `.nan` are valid YAML floats that pass every gt/lt bound: `sample_interval_s: .inf` silently
    # turned the completeness check off. No field of a site config has a use for them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
        from asyncua.ua.ua_binary import nodeid_to_binary

        try:
            node = ua.NodeId.from_string(value)
        except Exception as exc:  # asyncua raises several types for malformed ids
            raise ValueError(f"not a valid OPC UA NodeId: {exc}") from None
        # asyncua parses any integer; the wire format (OPC UA Part 6) takes a UInt16 namespace index, a
        # UInt32 numeric id and Part 3 limits string ids to 4096 characters. Out of range used to
        # surface in the run as a bare struct.error.
        if not 0 <= node.NamespaceIndex <= 65535:
            raise ValueError(f"namespace index {node.NamespaceIndex} is out of range 0-65535")
        if node.NodeIdType in (ua.NodeIdType.Numeric, ua.NodeIdType.TwoByte, ua.NodeIdType.FourByte):
            if not 0 <= node.Identifier <= 4_294_967_295:
                raise ValueError(f"numeric identifier {node.Identifier} is out of range 0-4294967295")
        elif isinstance(node.Identifier, str | bytes) and len(node.Identifier) > 4096:
            raise ValueError(f"identifier is {len(node.Identifier)} characters long, more than 4096")
        try:
            nodeid_to_binary(node)
        except Exception as exc:  # the encoder is the last word on what the server can be sent
            raise ValueError(f"cannot be encoded as an OPC UA NodeId: {exc}") from None
        return value

    @field_validator("unit")
    @classmethod
    def _unit_parses(cls, value: str) -> str:
        return validate_unit(value)

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
    chunk_values: int | None = Field(
        default=None,
        gt=0,
        description="Values one chunked history read holds at once: what bounds a run's memory (about 0.5 KB "
        "a value). Unset: the resource's default (1,000,000).",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_without_credentials(cls, value: str) -> str:
        return _no_credentials(value)

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

    @field_validator("unit")
    @classmethod
    def _unit_parses(cls, value: str) -> str:
        return validate_unit(value)

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


# 40 CFR Part 75 Appendix F Table 1: (Fd dscf/mmBtu, Fc scf CO2/mmBtu) per fuel.
CEMS_F_FACTORS: dict[str, tuple[float, float]] = {
    "coal_anthracite": (10_100.0, 1_970.0),
    "coal_bituminous": (9_780.0, 1_800.0),
    "coal_subbituminous": (9_820.0, 1_840.0),
    "coal_lignite": (9_860.0, 1_910.0),
    "oil": (9_190.0, 1_420.0),
    "natural_gas": (8_710.0, 1_040.0),
    "propane": (8_710.0, 1_190.0),
    "butane": (8_710.0, 1_250.0),
    "wood_bark": (9_600.0, 1_920.0),
    "wood_residue": (9_240.0, 1_830.0),
}


class AppendixD(_Strict):
    """A unit monitored by 40 CFR 75 Appendix D (fuel flowmeter + fuel sampling) instead of flow/SO2 CEMS."""

    fuel: Literal["pipeline_natural_gas", "natural_gas", "oil"] = Field(
        description="'pipeline_natural_gas' may use the 0.0006 lb/mmBtu SO2 default (App. D §2.3.1.4, paragraph "
        "not verified)."
    )
    gcv: float = Field(gt=0, description="Gross calorific value: Btu/100 scf (gas) or Btu/lb (oil).")
    sulfur: float | None = Field(
        default=None, ge=0, description="Sulfur content: grain/100 scf (gas) or weight percent (oil)."
    )
    so2_from: Literal["default_rate", "sulfur"] = Field(
        default="default_rate",
        description="SO2 by the 0.0006 lb/mmBtu default rate (D-5) or from sulfur content (D-2/D-4).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AppendixD:
        if self.so2_from == "sulfur" and self.sulfur is None:
            raise ValueError("so2_from 'sulfur' needs sulfur (grain/100 scf for gas, weight % for oil)")
        if self.so2_from == "default_rate" and self.fuel != "pipeline_natural_gas":
            raise ValueError("the 0.0006 lb/mmBtu SO2 default is for pipeline natural gas only; set so2_from: sulfur")
        return self


class CemsUnit(_Strict):
    """One Part 75 unit: how its monitors report and which Appendix F equations apply."""

    unit_id: str = Field(min_length=1, description="Unit id as in the DAHS files and EPA data (e.g. 'CT1').")
    fuel: Literal[
        "coal_anthracite",
        "coal_bituminous",
        "coal_subbituminous",
        "coal_lignite",
        "oil",
        "natural_gas",
        "propane",
        "butane",
        "wood_bark",
        "wood_residue",
    ] = Field(description="Primary fuel; picks the Appendix F Table 1 F-factors unless given.")
    fd_factor: float = Field(gt=0, description="Dry F-factor, dscf/mmBtu (default: App. F Table 1 for `fuel`).")
    fc_factor: float = Field(gt=0, description="Carbon F-factor, scf CO2/mmBtu (default: App. F Table 1).")
    co2_basis: Literal["wet", "dry"] = "wet"
    so2_basis: Literal["wet", "dry"] = "wet"
    nox_basis: Literal["wet", "dry"] = "dry"
    o2_basis: Literal["wet", "dry"] = "dry"
    moisture_method: Literal["measured", "default"] = "default"
    moisture_default_pct: float | None = Field(
        default=None, ge=0, lt=100, description="Stack moisture % used when moisture_method is 'default'."
    )
    so2_method: Literal["cems", "default_rate", "appendix_d"] = Field(
        default="cems",
        description="'default_rate': a default SO2 rate x heat input (gas units with a CEMS heat input); "
        "'appendix_d': SO2 from the metered fuel as `appendix_d` says (D-5 default rate or D-2/D-4 sulfur).",
    )
    so2_default_rate_lb_mmbtu: float | None = Field(default=None, gt=0, description="e.g. 0.0006 pipeline gas.")
    nox_method: Literal["ppm", "rate"] = Field(
        default="ppm", description="'ppm': rate from NOx ppm and diluent (F-5/F-6); 'rate': monitor reports lb/mmBtu."
    )
    heat_input_method: Literal["co2", "o2"] = "co2"
    co2_method: Literal["cems", "appendix_g"] = Field(
        default="cems",
        description="'cems': CO2 mass from the CO2 monitor and flow (App. F Eq. F-11); 'appendix_g': from the "
        "hour's heat input and the fuel's carbon F-factor (App. G Eq. G-4), as EPA computes gas- and oil-fired units.",
    )
    appendix_d: AppendixD | None = Field(
        default=None,
        description="Fuel-flow monitoring (App. D) instead of flow and SO2 monitors: heat input from the hour's "
        "fuel flow x GCV (D-6/D-8); needs so2_method 'appendix_d' and co2_method 'appendix_g'.",
    )
    so2_mpc_ppm: float | None = Field(default=None, gt=0, description="SO2 maximum potential concentration.")
    co2_mpc_pct: float = Field(gt=0, le=100, description="CO2 maximum potential concentration, %.")
    o2_min_pct: float = Field(default=0.0, ge=0, lt=20.9, description="O2 value substituted when O2 PMA < 80 %.")
    nox_mpc_ppm: float | None = Field(default=None, gt=0, description="NOx maximum potential concentration, ppm.")
    nox_mer_lb_mmbtu: float = Field(gt=0, description="NOx maximum potential emission rate, lb/mmBtu.")
    flow_mpf_scfh: float | None = Field(
        default=None, gt=0, description="Maximum potential stack flow rate, scfh (wet); not for an App. D unit."
    )
    max_load_mw: float = Field(gt=0, description="Maximum hourly gross load; sets the ten load ranges.")

    @model_validator(mode="before")
    @classmethod
    def _table_f_factors(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("fuel") in CEMS_F_FACTORS:
            fd, fc = CEMS_F_FACTORS[data["fuel"]]
            data = {"fd_factor": fd, "fc_factor": fc, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> CemsUnit:
        if self.moisture_method == "default" and self.moisture_default_pct is None:
            raise ValueError("moisture_method 'default' needs moisture_default_pct")
        if self.so2_method == "default_rate" and self.so2_default_rate_lb_mmbtu is None:
            raise ValueError("so2_method 'default_rate' needs so2_default_rate_lb_mmbtu")
        if self.so2_method == "cems" and self.so2_mpc_ppm is None:
            raise ValueError("so2_method 'cems' needs so2_mpc_ppm (maximum potential concentration)")
        if self.nox_method == "ppm" and self.nox_mpc_ppm is None:
            raise ValueError("nox_method 'ppm' needs nox_mpc_ppm (maximum potential concentration)")
        if self.appendix_d is None:
            if self.so2_method == "appendix_d":
                raise ValueError("so2_method 'appendix_d' needs appendix_d (the metered fuel's GCV and sulfur)")
            if self.flow_mpf_scfh is None:
                raise ValueError("a unit with a stack flow monitor needs flow_mpf_scfh (maximum potential flow)")
        elif (self.so2_method, self.co2_method) != ("appendix_d", "appendix_g"):
            raise ValueError(
                "an appendix_d unit has no flow or SO2 monitor: set so2_method 'appendix_d' and co2_method 'appendix_g'"
            )
        return self


# The PLC block carries the raw schema's values and statuses, one point per field.
CEMS_PLC_VALUE_FIELDS = tuple(CEMS_VALUE_COLUMNS)
CEMS_PLC_STATUS_FIELDS = tuple(CEMS_STATUS_COLUMNS)
CEMS_PLC_FIELDS = ("hour_start_epoch", *CEMS_PLC_VALUE_FIELDS, *CEMS_PLC_STATUS_FIELDS)
"""Points of the CEMS PLC's last-completed-hour block, named `<unit_id>.<field>`: the hour start
(UTC epoch seconds), the hourly values and a status word per parameter (0 valid, 1 missing,
2 failed calibration, 3 out of control)."""


def standard_utc_offset(zone_name: str) -> int:
    """Standard-time UTC offset (whole hours) of an IANA zone: its offset minus daylight saving, so
    'America/Los_Angeles' gives -8 all year (Part 75 hours are local standard time)."""
    zone = ZoneInfo(zone_name)
    moment = datetime(2021, 1, 15, 12, tzinfo=zone)
    offset = moment.utcoffset() - moment.dst()
    hours, rest = divmod(offset.total_seconds(), 3600)
    if rest:
        raise ValueError(f"time zone {zone_name!r}: standard offset {offset} is not a whole number of hours")
    return int(hours)


class EpaFacility(_Strict):
    """One EPA facility (ORIS code) whose local standard time differs from its state's main zone."""

    facility_id: int = Field(gt=0, description="EPA facility id (ORISPL code), e.g. 7456 (Rathdrum).")
    utc_offset_hours: int | None = Field(default=None, ge=-12, le=14, description="Standard time minus UTC.")
    time_zone: str | None = Field(default=None, description="IANA zone; its standard offset is used (no DST).")

    @model_validator(mode="after")
    def _one_of(self) -> EpaFacility:
        if (self.utc_offset_hours is None) == (self.time_zone is None):
            raise ValueError("give exactly one of utc_offset_hours and time_zone")
        if self.time_zone is not None:
            try:
                standard_utc_offset(self.time_zone)
            except ZoneInfoNotFoundError:
                raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        return self

    @property
    def standard_offset_hours(self) -> int:
        return self.utc_offset_hours if self.time_zone is None else standard_utc_offset(self.time_zone)


class CemsSource(_Strict):
    """CEMS of the site: its Part 75 units and where their hourly data comes from. Relative folders
    are resolved against the project root (the folder holding `config/`)."""

    units: list[CemsUnit] = Field(min_length=1)
    lst_utc_offset_hours: int = Field(
        ge=-12, le=14, description="Local standard time (Part 75 hours, no daylight saving) minus UTC, e.g. -6."
    )
    dahs_drop_folder: Path = Field(description="Where the DAHS drops its hourly export CSV files.")
    quarantine_folder: Path = Field(description="Malformed files are moved here, with the reason beside them.")
    accepted_folder: Path = Field(description="Content-addressed copies of every accepted file, read by the assets.")
    epa_folder: Path | None = Field(default=None, description="EPA CAMPD hourly emissions files to load.")
    epa_daily_folder: Path | None = Field(
        default=None, description="EPA daily emissions files (DLY_<year><state>Q<n>.csv or CAMPD daily) to load."
    )
    epa_facilities: list[EpaFacility] = Field(
        default_factory=list, description="Facilities whose local standard time is not their state's main zone."
    )
    epa_complete_period: Literal["quarter", "year", "off"] = Field(
        default="quarter",
        description="Every unit must have every hour of each quarter (or year) its EPA hours touch, else the "
        "import fails and the stored table stays as it was; 'off' loads and reports the gaps.",
    )
    history_start: date = Field(
        default=date(2025, 1, 1), description="First day of the CEMS partitions (DAHS raw, emissions, reports)."
    )
    epa_history_start: date | None = Field(
        default=None, description="First quarter of the EPA quarterly report partitions (default: history_start)."
    )
    lookback_days: int = Field(
        default=90, ge=1, le=400, description="Raw history read for missing-data look-backs (720/2,160 hours)."
    )
    plc: ModbusDevice | None = Field(
        default=None, description="The CEMS PLC's last-completed-hour block (fallback for the live hour)."
    )

    @field_validator("dahs_drop_folder", "quarantine_folder", "accepted_folder", "epa_folder", "epa_daily_folder")
    @classmethod
    def _under_project(cls, value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else PROJECT_ROOT / value

    @model_validator(mode="after")
    def _consistent(self) -> CemsSource:
        ids = [unit.unit_id for unit in self.units]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate unit_id in {ids}")
        facilities = [facility.facility_id for facility in self.epa_facilities]
        if len(set(facilities)) != len(facilities):
            raise ValueError(f"duplicate facility_id in epa_facilities {facilities}")
        if self.plc is not None:
            for point in self.plc.points:
                unit, _, name = point.name.partition(".")
                if unit not in ids or name not in CEMS_PLC_FIELDS:
                    raise ValueError(
                        f"plc point {point.name!r} must be '<unit_id>.<field>' with a configured unit and a field "
                        f"of {', '.join(CEMS_PLC_FIELDS)}"
                    )
            names = {point.name for point in self.plc.points}
            for unit in {p.name.partition(".")[0] for p in self.plc.points}:
                if f"{unit}.hour_start_epoch" not in names or f"{unit}.op_time" not in names:
                    raise ValueError(f"plc block of unit {unit!r} needs its hour_start_epoch and op_time points")
        return self

    def epa_utc_offsets(self) -> dict[int, int]:
        """Facility id -> standard UTC offset for the facilities configured apart from their state."""
        return {facility.facility_id: facility.standard_offset_hours for facility in self.epa_facilities}

    @property
    def epa_start(self) -> date:
        return self.epa_history_start or self.history_start


class HistorianTag(_Strict):
    name: str = Field(min_length=1, description="Site tag name stored in the warehouse.")
    path: str | None = Field(
        default=None,
        description="PI point path, e.g. '\\\\PISRV\\Boiler1.SteamFlow'; default \\\\<data_server>\\<name>.",
    )
    unit: str = Field(min_length=1, description="Engineering unit, pint-parsable; must match the point's unit.")
    min: float = Field(description="Lowest plausible value in `unit`.")
    max: float = Field(description="Highest plausible value in `unit`.")

    @field_validator("unit")
    @classmethod
    def _unit_parses(cls, value: str) -> str:
        return validate_unit(value)

    @model_validator(mode="after")
    def _range_ordered(self) -> HistorianTag:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class HistorianSource(_Strict):
    """A PI Web API historian. Secrets (password, token, client secret) come from the environment only."""

    base_url: str = Field(pattern=r"^https?://", description="PI Web API root, e.g. https://pi.example/piwebapi.")
    source_name: str = Field(default="pi", description="Name recorded in the `source` column.")
    data_server: str = Field(min_length=1, description="PI Data Archive name, used in default point paths.")
    sample_interval_s: float = Field(gt=0, description="Expected spacing of recorded values, for completeness.")
    auth_mode: Literal["none", "basic", "bearer", "oauth2"] = "none"
    username: str | None = Field(default=None, description="Basic auth user (the password: $GL_HISTORIAN_PASSWORD).")
    token_url: str | None = Field(
        default=None, description="OAuth2 token endpoint (secret: $GL_HISTORIAN_CLIENT_SECRET)."
    )
    client_id: str | None = None
    scope: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    max_count: int = Field(default=10_000, gt=0, description="maxCount per stream per call (<= server limit).")
    tags_per_request: int = Field(default=100, gt=0)
    window_hours: float = Field(default=24.0, gt=0, description="Longer reads are split into windows this long.")
    chunk_values: int | None = Field(
        default=None,
        gt=0,
        description="Values one chunked recorded read holds at once (points in batches, a long day in time "
        "slices): what bounds a run's memory. Unset: the resource's default (250,000).",
    )
    max_in_flight: int = Field(default=8, gt=0)
    requests_per_second: float | None = Field(default=None, gt=0)
    tags: list[HistorianTag] = Field(min_length=1)

    @field_validator("base_url", "token_url")
    @classmethod
    def _url_without_credentials(cls, value: str | None) -> str | None:
        return _no_credentials(value)

    @model_validator(mode="after")
    def _unique_tags(self) -> HistorianSource:
        for label, values in (("name", [t.name for t in self.tags]), ("path", self.paths())):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate tag {label} {duplicates[0]!r}")
        if self.auth_mode == "oauth2" and not (self.token_url and self.client_id):
            raise ValueError("auth_mode 'oauth2' needs token_url and client_id")
        return self

    def path_of(self, tag: HistorianTag) -> str:
        return tag.path or f"\\\\{self.data_server}\\{tag.name}"

    def paths(self) -> list[str]:
        return [self.path_of(tag) for tag in self.tags]

    def tag_ranges(self) -> dict[str, tuple[float, float]]:
        return {tag.name: (tag.min, tag.max) for tag in self.tags}


ERP_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "fuel_receipts": (
        "document",
        "item",
        "posting_date",
        "plant",
        "material",
        "quantity",
        "unit",
        "amount",
        "currency",
    ),
    "production": ("confirmation", "counter", "posting_date", "plant", "product", "quantity", "unit"),
    "materials": ("material", "description", "base_unit"),
    "plants": ("plant", "name"),
}
ERP_KEYS = {
    "fuel_receipts": ("document", "item"),
    "production": ("confirmation", "counter"),
    "materials": ("material",),
    "plants": ("plant",),
}


class ErpEntity(_Strict):
    """One OData entity set and how its properties become our columns."""

    entity_set: str = Field(min_length=1, description="OData entity set name, e.g. GoodsReceiptSet.")
    fields: dict[str, str] = Field(description="Our column -> OData property name.")
    filter: str | None = Field(default=None, description="Extra $filter, e.g. \"Plant eq '1000'\".")


class ErpEntitySet(_Strict):
    """Any entity set as its own asset: key, columns, an optional date (daily partitions on the site's
    clock) or none (the whole set replaced on each run), and the blocking checks that fit."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Asset name, e.g. sales_orders.")
    entity_set: str = Field(min_length=1, description="OData entity set, e.g. SalesOrderSet.")
    fields: dict[str, str] = Field(min_length=1, description="Our column -> OData property name.")
    key: list[str] = Field(min_length=1, description="Columns that identify a row (checked unique).")
    date_column: str | None = Field(
        default=None, description="Column the daily partitions window on; none: a full refresh."
    )
    required: list[str] = Field(default=[], description="Columns every row must have (checked not null).")
    filter: str | None = Field(default=None, description="Extra $filter, e.g. \"CurrencyCode eq 'EUR'\".")
    description: str | None = None

    @model_validator(mode="after")
    def _columns_mapped(self) -> ErpEntitySet:
        named = [*self.key, *self.required, *([self.date_column] if self.date_column else [])]
        missing = [column for column in named if column not in self.fields]
        if missing:
            raise ValueError(f"entity set {self.name}: {', '.join(missing)} must be in fields")
        return self


class ErpSource(_Strict):
    """An SAP OData v2 service (Gateway): documents for the fuel and production reports."""

    service_url: str = Field(pattern=r"^https?://", description="Service root, e.g. .../sap/opu/odata/sap/ZSRV/.")
    source_name: str = Field(default="erp", description="Recorded in the `source` column.")
    auth: Literal["none", "basic", "oauth2"] = Field(default="oauth2", description="Credentials from the environment.")
    token_url: str | None = Field(default=None, description="OAuth2 token URL; a path is taken on the service's host.")
    page_size: int | None = Field(default=5000, gt=0, description="$top per request; null = server paging only.")
    units: dict[str, PintUnit] = Field(min_length=1, description="Allowed ERP unit codes -> pint unit, e.g. M3: m**3.")
    currencies: list[str] = Field(default=["USD"], min_length=1, description="Allowed currency codes.")
    fuel_receipts: ErpEntity | None = Field(default=None, description="Role read by the GHG inventory.")
    production: ErpEntity | None = Field(default=None, description="Role read by the emissions intensity.")
    materials: ErpEntity | None = None
    plants: ErpEntity | None = None
    entity_sets: list[ErpEntitySet] = Field(default=[], description="Further entity sets, one asset each.")
    change_lookback_days: int = Field(
        default=92, ge=1, le=3660, description="Stored plant days the change sensor compares with the ERP."
    )
    change_poll_seconds: int = Field(default=300, ge=30, description="How often the change sensor asks for changes.")
    full_compare_hours: float = Field(
        default=24, gt=0, description="Hours between full comparisons (a delta shows no deleted documents)."
    )

    @field_validator("service_url", "token_url")
    @classmethod
    def _url_without_credentials(cls, value: str | None) -> str | None:
        return _no_credentials(value)

    @model_validator(mode="after")
    def _columns_mapped(self) -> ErpSource:
        for name, required in ERP_REQUIRED_COLUMNS.items():
            if getattr(self, name) is None:
                continue
            missing = [column for column in required if column not in getattr(self, name).fields]
            if missing:
                raise ValueError(f"{name}.fields must map {', '.join(missing)} to OData properties")
        names = [*self.roles(), *(entity.name for entity in self.entity_sets)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate entity set name {duplicates[0]!r}")
        if not names:
            raise ValueError("no entity set: give entity_sets or a role (fuel_receipts, production, ...)")
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth 'oauth2' needs token_url")
        return self

    def roles(self) -> list[str]:
        """The fixed roles configured (fuel_receipts, production, materials, plants)."""
        return [name for name in ERP_REQUIRED_COLUMNS if getattr(self, name) is not None]


class SiteConfig(_Strict):
    site: SiteInfo
    opcua: OpcUaSource
    modbus: ModbusSource | None = None
    checks: CheckThresholds = CheckThresholds()
    reporting: ReportingConfig | None = Field(default=None, description="Report assets; none without it.")
    cems: CemsSource | None = Field(default=None, description="CEMS (Part 75) assets; none without it.")
    historian: HistorianSource | None = Field(default=None, description="PI Web API assets; none without it.")
    erp: ErpSource | None = Field(default=None, description="SAP OData (ERP) assets; none without it.")


def _item_label(raw: Any, loc: tuple) -> str:
    """' (tag 'Boiler1.SteamFlow')' when the failing field sits in a list item that has a name."""
    node, label = raw, ""
    for parent, part in zip((None, *loc), loc, strict=False):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict) and isinstance(parent, str):
            name = node.get("name", node.get("unit_id"))
            if isinstance(name, str):
                label = f" (in {parent.removesuffix('s')} {excerpt(name)})"
    return label


def _describe(error: dict[str, Any], raw: Any) -> str:
    loc = tuple(error["loc"])
    where, item = f"field '{'.'.join(str(part) for part in loc)}'", _item_label(raw, loc)
    if error["type"] == "missing":
        return f"{where} is missing{item}"
    message = scrub(error["msg"])
    if len(message) > MAX_PROBLEM_CHARS:
        message = message[:MAX_PROBLEM_CHARS] + "…"
    value = error.get("input")
    if error["type"] == "extra_forbidden" or (loc and _SECRET_FIELD.search(str(loc[-1]))):
        return f"{where} (value not shown): {message}{item}"
    if isinstance(value, dict | list) and value:
        return f"{where}: {message}{item}"  # a whole section is never quoted
    shown = excerpt(value) if isinstance(value, str) else repr(value)
    return f"{where} = {shown}: {message}{item}"


def parse_site_config(raw: Any, origin: str) -> SiteConfig:
    """Validate an already-parsed YAML document; `origin` names it in errors."""
    try:
        return SiteConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_describe(err, raw) for err in errors[:MAX_PROBLEMS_SHOWN])
        if len(errors) > MAX_PROBLEMS_SHOWN:
            problems += f"; and {len(errors) - MAX_PROBLEMS_SHOWN} more problem(s)"
        raise SiteConfigError(f"{origin}: invalid site config: {problems}") from None


class _SiteYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a document whose aliases expand past MAX_YAML_NODES.

    Aliases stay allowed (shared defaults are a fair use); only the expanded size is bounded,
    counted once per distinct node so the check itself stays linear."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return self.construct_document(node)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        raise _YamlTooLarge("an alias refers to a node that contains it (recursive alias)")
    size = 1
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
        active.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        for child in children:
            size += _expanded_size(child, sizes, active)
            if size > MAX_YAML_NODES:
                raise _YamlTooLarge(
                    f"aliases expand it past {MAX_YAML_NODES:,} nodes (an alias bomb?); write the values out"
                )
        active.discard(key)
    sizes[key] = size
    return size


class _YamlTooLarge(ValueError):
    pass


def load_site_config(path: str | Path | None = None) -> SiteConfig:
    """Load the site config from `path`, else $GL_SITE_CONFIG, else the demo site (in a source checkout)."""
    path = path or os.environ.get(SITE_CONFIG_ENV)
    if not path and not DEMO_SITE_CONFIG.is_file():
        raise SiteConfigError(
            f"no site config: set {SITE_CONFIG_ENV} to the site's YAML file (an installed package has no demo "
            "site; the demo's is config/demo_site.yaml in the source repository)"
        )
    path = Path(path or DEMO_SITE_CONFIG)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read site config: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SiteConfigError(
            f"{path}: not UTF-8 text: byte {exc.start} (line {line}) is {data[exc.start : exc.start + 1]!r}; "
            "save the file as UTF-8"
        ) from None
    try:
        raw = yaml.load(text, Loader=_SiteYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except _YamlTooLarge as exc:
        raise SiteConfigError(f"{path}: refused: {exc}") from None
    except RecursionError:
        raise SiteConfigError(f"{path}: refused: YAML nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        # Not str(exc): it quotes the offending line, which may be the one holding a password.
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        detail = scrub(" ".join(filter(None, (exc.context, exc.problem))))[:MAX_PROBLEM_CHARS]
        raise SiteConfigError(f"{path}: not valid YAML: {where}{detail}") from None
    except yaml.YAMLError as exc:
        raise SiteConfigError(f"{path}: not valid YAML: {scrub(exc)[:MAX_PROBLEM_CHARS]}") from None
    return parse_site_config(raw, str(path))
