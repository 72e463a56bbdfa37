"""Site configuration: what to extract from which system, validated before anything runs.

A plant engineer edits one YAML file per site. A mistake in it must fail at load time with the
file, the field and the offending value, not hours later inside a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
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
