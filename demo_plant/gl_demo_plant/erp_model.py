"""The demo plant's ERP documents, derived from the same process the OPC UA server serves.

Natural gas goods receipts are the boiler's gas use (`plant_model`'s FuelGasFlow shape) over each
delivery interval; steam production confirmations are its steam flow over each 8-hour shift. So
the ERP, the historian and SCADA close the same energy balance. Documents are columns of numpy
arrays (vectorized: a year of 200,000 receipts builds in well under a second) and deterministic.

Raw column values: strings as str, Edm.Decimal as int64 scaled by 10**scale, dates as int64
milliseconds UTC (a calendar date as midnight UTC of that date, as SAP sends a DATS field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from gl_demo_plant.plant_model import FULL_LOAD_STEAM_T_H, GAS_M3_PER_T_STEAM, boiler_load

EPOCH_START = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_END = datetime(2027, 1, 1, tzinfo=UTC)
PLANT = "1000"
PLANT_ZONE = "America/Chicago"
SHIFT_S = 8 * 3600


@dataclass(frozen=True)
class Prop:
    name: str
    edm_type: str
    key: bool = False
    date_only: bool = False
    precision: int | None = None
    scale: int | None = None
    max_length: int | None = None
    label: str = ""


@dataclass(frozen=True)
class EntityDef:
    set_name: str
    type_name: str
    props: tuple[Prop, ...]
    delta: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.props if p.key)

    def prop(self, name: str) -> Prop:
        for p in self.props:
            if p.name == name:
                return p
        raise KeyError(name)


_QUANTITY = {"precision": 13, "scale": 3}
ENTITIES: tuple[EntityDef, ...] = (
    EntityDef(
        "GoodsReceiptSet",
        "GoodsReceipt",
        (
            Prop("MaterialDocument", "Edm.String", key=True, max_length=10, label="Material Document"),
            Prop("DocumentItem", "Edm.String", key=True, max_length=4, label="Item"),
            Prop("PostingDate", "Edm.DateTime", date_only=True, precision=7, label="Posting Date"),
            Prop("Plant", "Edm.String", max_length=4, label="Plant"),
            Prop("Material", "Edm.String", max_length=40, label="Material"),
            Prop("Quantity", "Edm.Decimal", **_QUANTITY, label="Quantity"),
            Prop("Unit", "Edm.String", max_length=3, label="Base Unit of Measure"),
            Prop("Amount", "Edm.Decimal", precision=15, scale=2, label="Amount in Local Currency"),
            Prop("Currency", "Edm.String", max_length=5, label="Currency"),
            Prop("ChangedAt", "Edm.DateTimeOffset", precision=7, label="Last Changed"),
        ),
        delta=True,
    ),
    EntityDef(
        "ProductionConfirmationSet",
        "ProductionConfirmation",
        (
            Prop("Confirmation", "Edm.String", key=True, max_length=10, label="Confirmation"),
            Prop("ConfirmationCounter", "Edm.String", key=True, max_length=8, label="Counter"),
            Prop("PostingDate", "Edm.DateTime", date_only=True, precision=7, label="Posting Date"),
            Prop("Plant", "Edm.String", max_length=4, label="Plant"),
            Prop("Product", "Edm.String", max_length=40, label="Material"),
            Prop("Quantity", "Edm.Decimal", **_QUANTITY, label="Yield"),
            Prop("Unit", "Edm.String", max_length=3, label="Unit"),
            Prop("ChangedAt", "Edm.DateTimeOffset", precision=7, label="Last Changed"),
        ),
        delta=True,
    ),
    EntityDef(
        "MaterialSet",
        "Material",
        (
            Prop("Material", "Edm.String", key=True, max_length=40, label="Material"),
            Prop("Description", "Edm.String", max_length=40, label="Material Description"),
            Prop("MaterialType", "Edm.String", max_length=4, label="Material Type"),
            Prop("BaseUnit", "Edm.String", max_length=3, label="Base Unit of Measure"),
        ),
    ),
    EntityDef(
        "PlantSet",
        "Plant",
        (
            Prop("Plant", "Edm.String", key=True, max_length=4, label="Plant"),
            Prop("Name", "Edm.String", max_length=30, label="Name"),
            Prop("Country", "Edm.String", max_length=3, label="Country"),
            Prop("TimeZone", "Edm.String", max_length=40, label="Time Zone"),
        ),
    ),
    # CMMS (SAP PM): maintenance orders, one every shift, alternating preventive and corrective.
    EntityDef(
        "MaintenanceOrderSet",
        "MaintenanceOrder",
        (
            Prop("MaintenanceOrder", "Edm.String", key=True, max_length=12, label="Order"),
            Prop("OrderType", "Edm.String", max_length=4, label="Order Type"),
            Prop("Equipment", "Edm.String", max_length=18, label="Equipment"),
            Prop("Description", "Edm.String", max_length=40, label="Description"),
            Prop("CreatedOn", "Edm.DateTime", date_only=True, precision=7, label="Created On"),
            Prop("Plant", "Edm.String", max_length=4, label="Plant"),
        ),
    ),
    # MES: production orders, one per plant day, for the day's planned steam.
    EntityDef(
        "ProductionOrderSet",
        "ProductionOrder",
        (
            Prop("ProductionOrder", "Edm.String", key=True, max_length=12, label="Production Order"),
            Prop("Material", "Edm.String", max_length=40, label="Material"),
            Prop("TargetQuantity", "Edm.Decimal", **_QUANTITY, label="Target Quantity"),
            Prop("Unit", "Edm.String", max_length=3, label="Unit"),
            Prop("ScheduledStart", "Edm.DateTime", date_only=True, precision=7, label="Scheduled Start"),
            Prop("Plant", "Edm.String", max_length=4, label="Plant"),
        ),
    ),
)
ENTITY_BY_SET = {entity.set_name: entity for entity in ENTITIES}


def _interval_mean_load(starts_s: np.ndarray, length_s: float) -> np.ndarray:
    """Mean of `boiler_load` over [start, start + length) by the midpoint rule at about 1 minute."""
    steps = int(min(60, max(1, round(length_s / 60))))
    offsets = (np.arange(steps) + 0.5) * (length_s / steps)
    return boiler_load(starts_s[:, None].astype(np.float64) + offsets[None, :]).mean(axis=1)


def _calendar_date_ms(epoch_s: np.ndarray, zone: str) -> np.ndarray:
    """Midnight UTC (ms) of each instant's calendar date in `zone`: how SAP sends a DATS value."""
    local = pd.DatetimeIndex(pd.to_datetime(epoch_s, unit="s", utc=True)).tz_convert(zone)
    naive_midnight = local.tz_localize(None).normalize()
    return naive_midnight.as_unit("ms").asi8


def _gas_price_micro_usd_per_m3(epoch_s: np.ndarray) -> np.ndarray:
    """A monthly-ish price around $0.125/m3 (about $3.5/MMBtu), higher in winter."""
    year_phase = 2 * np.pi * (epoch_s % 31_557_600) / 31_557_600
    return (125_000 + 20_000 * np.cos(year_phase)).round().astype(np.int64)


@dataclass
class Table:
    """One entity set's rows as raw columns, with a change sequence for delta queries."""

    entity: EntityDef
    columns: dict[str, np.ndarray]
    seq: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.seq is None:
            self.seq = np.zeros(len(self), dtype=np.int64)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def find(self, key: dict[str, str]) -> int:
        mask = np.ones(len(self), dtype=bool)
        for name, value in key.items():
            mask &= self.columns[name] == value
        hits = np.flatnonzero(mask)
        if len(hits) != 1:
            raise KeyError(f"{self.entity.set_name}: no single row with key {key}")
        return int(hits[0])


def to_raw(prop: Prop, value: object) -> object:
    """A Python value (Decimal, datetime, str) -> the raw column representation."""
    if prop.edm_type == "Edm.Decimal":
        return int(Decimal(str(value)).scaleb(prop.scale or 0).to_integral_value())
    if prop.edm_type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        moment: datetime = value  # type: ignore[assignment]
        if prop.date_only:
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return value


@dataclass
class ErpModel:
    """Every document the demo ERP serves, plus the changes tests make to them."""

    receipt_interval_s: float = 3600.0
    start: datetime = EPOCH_START
    end: datetime = DEFAULT_END
    zone: str = PLANT_ZONE
    tables: dict[str, Table] = field(init=False)
    change_seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.tables = {
            "GoodsReceiptSet": self._gas_receipts(),
            "ProductionConfirmationSet": self._steam_confirmations(),
            "MaterialSet": Table(
                ENTITY_BY_SET["MaterialSet"],
                {
                    "Material": np.array(["ELEC", "NATGAS", "STEAM"], dtype=object),
                    "Description": np.array(["Electricity", "Natural gas, pipeline", "Process steam 42 bar"], object),
                    "MaterialType": np.array(["ENRG", "ROH", "FERT"], dtype=object),
                    "BaseUnit": np.array(["MWH", "M3", "TO"], dtype=object),
                },
            ),
            "PlantSet": Table(
                ENTITY_BY_SET["PlantSet"],
                {
                    "Plant": np.array([PLANT], dtype=object),
                    "Name": np.array(["Demo plant, boiler house"], dtype=object),
                    "Country": np.array(["US"], dtype=object),
                    "TimeZone": np.array([self.zone], dtype=object),
                },
            ),
            "MaintenanceOrderSet": self._maintenance_orders(),
            "ProductionOrderSet": self._production_orders(),
        }

    def _times(self, step_s: float) -> np.ndarray:
        count = int((self.end - self.start).total_seconds() / step_s + 1e-9)
        return (self.start.timestamp() + np.arange(count) * step_s).round().astype(np.int64)

    def _gas_receipts(self) -> Table:
        starts = self._times(self.receipt_interval_s)
        gas_m3 = _interval_mean_load(starts, self.receipt_interval_s) * (
            FULL_LOAD_STEAM_T_H * GAS_M3_PER_T_STEAM * self.receipt_interval_s / 3600
        )
        quantity_milli = np.round(gas_m3 * 1000).astype(np.int64)
        amount_cents = (quantity_milli * _gas_price_micro_usd_per_m3(starts) + 5_000_000) // 10_000_000
        n = len(starts)
        return Table(
            ENTITY_BY_SET["GoodsReceiptSet"],
            {
                "MaterialDocument": np.char.mod("%010d", 5_000_000_000 + np.arange(n)).astype(object),
                "DocumentItem": np.full(n, "0001", dtype=object),
                "PostingDate": _calendar_date_ms(starts, self.zone),
                "Plant": np.full(n, PLANT, dtype=object),
                "Material": np.full(n, "NATGAS", dtype=object),
                "Quantity": quantity_milli,
                "Unit": np.full(n, "M3", dtype=object),
                "Amount": amount_cents,
                "Currency": np.full(n, "USD", dtype=object),
                "ChangedAt": (starts + int(self.receipt_interval_s) + 1800) * 1000,
            },
        )

    def _steam_confirmations(self) -> Table:
        starts = self._times(SHIFT_S)
        steam_t = _interval_mean_load(starts, SHIFT_S) * FULL_LOAD_STEAM_T_H * SHIFT_S / 3600
        n = len(starts)
        return Table(
            ENTITY_BY_SET["ProductionConfirmationSet"],
            {
                "Confirmation": np.char.mod("%010d", 1_000_000 + np.arange(n)).astype(object),
                "ConfirmationCounter": np.full(n, "00000001", dtype=object),
                "PostingDate": _calendar_date_ms(starts, self.zone),
                "Plant": np.full(n, PLANT, dtype=object),
                "Product": np.full(n, "STEAM", dtype=object),
                "Quantity": np.round(steam_t * 1000).astype(np.int64),
                "Unit": np.full(n, "TO", dtype=object),
                "ChangedAt": (starts + SHIFT_S + 600) * 1000,
            },
        )

    def _maintenance_orders(self) -> Table:
        starts = self._times(SHIFT_S)
        n = len(starts)
        corrective = np.arange(n) % 2 == 1
        return Table(
            ENTITY_BY_SET["MaintenanceOrderSet"],
            {
                "MaintenanceOrder": np.char.mod("%012d", 4_000_000 + np.arange(n)).astype(object),
                "OrderType": np.where(corrective, "PM01", "PM02").astype(object),
                "Equipment": np.where(corrective, "FWPUMP1", "BOILER1").astype(object),
                "Description": np.where(corrective, "Feedwater pump seal leak", "Shift inspection").astype(object),
                "CreatedOn": _calendar_date_ms(starts, self.zone),
                "Plant": np.full(n, PLANT, dtype=object),
            },
        )

    def _production_orders(self) -> Table:
        starts = self._times(24 * 3600)
        n = len(starts)
        return Table(
            ENTITY_BY_SET["ProductionOrderSet"],
            {
                "ProductionOrder": np.char.mod("%012d", 1_000_000 + np.arange(n)).astype(object),
                "Material": np.full(n, "STEAM", dtype=object),
                "TargetQuantity": np.full(n, round(FULL_LOAD_STEAM_T_H * 20 * 1000), dtype=np.int64),
                "Unit": np.full(n, "TO", dtype=object),
                # Noon UTC: the order's plant day is the same calendar day in every zone the demo uses.
                "ScheduledStart": _calendar_date_ms(starts + 12 * 3600, self.zone),
                "Plant": np.full(n, PLANT, dtype=object),
            },
        )

    def update(self, set_name: str, key: dict[str, str], **changes: object) -> None:
        """Change one document (Decimal / datetime / str values); it shows up in the next delta."""
        table = self.tables[set_name]
        index = table.find(key)
        self.change_seq += 1
        for name, value in changes.items():
            table.columns[name][index] = to_raw(table.entity.prop(name), value)
        table.seq[index] = self.change_seq

    def add(self, set_name: str, row: dict[str, object]) -> None:
        """Append a new document (every property given); it shows up in the next delta."""
        table = self.tables[set_name]
        self.change_seq += 1
        for prop in table.entity.props:
            column = table.columns[prop.name]
            table.columns[prop.name] = np.append(column, np.array([to_raw(prop, row[prop.name])], dtype=column.dtype))
        table.seq = np.append(table.seq, self.change_seq)
