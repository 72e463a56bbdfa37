"""EPA's published Part 75 history: hourly and daily files, and quarterly reports over them.

- `cems_campd_hourly` (unpartitioned): every EPA hourly .csv/.zip in `cems.epa_folder` (AMPD or CAMPD
  naming), reloaded whole. Hours go to UTC with each facility's standard offset: `cems.epa_facilities`
  (an offset or an IANA zone), else the state's main zone.
- `cems_epa_daily` (unpartitioned): every EPA daily file in `cems.epa_daily_folder` (`DLY_` or CAMPD).
- `cems_epa_quarterly` (calendar quarters from `cems.epa_history_start`): per unit and quarter of local
  standard time, the totals of the stored EPA hours and days, with the hours/days present and expected.

An import that fails raises before anything is written, so the stored table stays exactly as it was:
a malformed file (a missing figure column, a value that is not a clean number, a short row), or, unless
`cems.epa_complete_period` is 'off', a unit short of hours (days) in a quarter or year its data touches
(a file cut at a line boundary). The quarterly report then still reads the last complete import.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionsDefinition,
    asset,
)

from gl_pipelines.assets.charts import bar_chart, chart_metadata
from gl_pipelines.assets.partitions import QUARTER_CRON, WAREHOUSE_POOL
from gl_pipelines.assets.provenance import preview_markdown, provenance_metadata
from gl_pipelines.cems.epa_campd import (
    EpaFileError,
    coverage,
    hourly_period_totals,
    incomplete_periods,
    read_epa_hourly,
)
from gl_pipelines.cems.epa_daily import daily_period_totals, read_epa_daily
from gl_pipelines.components.naming import InstanceNames
from gl_pipelines.config import CemsSource
from gl_pipelines.resources.warehouse import table_name
from gl_pipelines.resources.warehouse_reader import WindowRead

WAREHOUSE_READER_KEY = "warehouse_reader"
EPA_QUARTERLY_COLUMNS = [
    "quarter_start_lst",
    "data",
    "facility_id",
    "unit_id",
    "expected",
    "present",
    "complete",
    "op_hours",
    "gross_load_mwh",
    "heat_input_mmbtu",
    "so2_mass_tons",
    "nox_mass_tons",
    "co2_mass_tons",
]


def epa_quarterly_partitions(start: str) -> TimeWindowPartitionsDefinition:
    """Calendar quarters from `start`. Keys name the quarter's first day of local standard time; the
    window is that wall-clock date read as UTC, which is how the EPA tables' naive LST columns
    (`hour_start_lst`, `day_lst`) are selected: each facility's quarter in its own standard time."""
    return TimeWindowPartitionsDefinition(cron_schedule=QUARTER_CRON, start=start, fmt="%Y-%m-%d", timezone="UTC")


def _files(folder: Path | None, asset_name: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".zip")) if folder else []
    if not files:
        raise Failure(description=f"{asset_name}: no EPA .csv or .zip files in {folder}; nothing replaced")
    return files


def _digest(files: list[Path]) -> str:
    parts = [f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}" for path in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _read(asset_name: str, read, files: list[Path]) -> pd.DataFrame:
    try:
        return read(files)
    except EpaFileError as exc:
        raise Failure(
            description=f"{asset_name}: {exc}; nothing replaced, the stored table is unchanged",
            metadata={"error": str(exc)},
        ) from None


def _complete_or_fail(source: CemsSource, asset_name: str, report: pd.DataFrame, unit: str) -> list[str]:
    short = incomplete_periods(report, unit)
    if short and source.epa_complete_period != "off":
        raise Failure(
            description=f"{asset_name}: {len(short)} unit-{source.epa_complete_period}(s) short of {unit} "
            f"(a file cut short or left out?): {'; '.join(short[:5])}; nothing replaced, the stored table is "
            "unchanged (set cems.epa_complete_period: off to load incomplete periods)",
            metadata={"incomplete_periods": MetadataValue.json(short)},
        )
    return short


def _period(source: CemsSource) -> str:
    return "year" if source.epa_complete_period == "year" else "quarter"


_IMPORT_ASSET = {
    "io_manager_key": "warehouse",
    "kinds": {"csv", "duckdb"},
    "pool": WAREHOUSE_POOL,
}
"""How both EPA import assets are stored."""


@dataclass(frozen=True)
class _EpaImport:
    """What differs between the EPA imports; `_load` does the rest the same way for each."""

    asset_name: str
    folder: Path | None
    read: Callable[[list[Path]], pd.DataFrame]
    counted: str  # "hours" or "days": what a unit's period can lack
    lst_column: str  # the local-standard-time column completeness is checked on
    step: str
    window_column: str
    what: str  # the files, as the query metadata names them
    resource_version: str


def _load(source: CemsSource, spec: _EpaImport) -> tuple[pd.DataFrame, dict]:
    """Read every file of the folder, enforce the completeness rule (raising before anything is written),
    and the provenance of what was read."""
    began = time.perf_counter()
    files = _files(spec.folder, spec.asset_name)
    frame = _read(spec.asset_name, spec.read, files)
    report = coverage(frame, _period(source), time_column=spec.lst_column, step=spec.step)
    short = _complete_or_fail(source, spec.asset_name, report, spec.counted)
    column = frame[spec.window_column]
    # a naive LST day is shown as that date in UTC: the window names the days read, not instants
    first, last = ((t if t.tzinfo else t.tz_localize(UTC)).to_pydatetime() for t in (column.min(), column.max()))
    metadata = provenance_metadata(
        endpoint=f"file://{spec.folder}",
        window=(first, last),
        query=f"{len(files)} {spec.what}",
        payload_sha256=_digest(files),
        resource_version=spec.resource_version,
        duration_s=time.perf_counter() - began,
        frame=frame,
    )
    metadata.update(
        {"files": MetadataValue.json([path.name for path in files]), "incomplete_periods": MetadataValue.json(short)}
    )
    return frame, metadata


def build_epa_assets(source: CemsSource, names: InstanceNames | None = None) -> list[AssetsDefinition]:
    """The EPA history assets for the folders the CEMS instance configures (none without them); keys and
    tables carry the instance (`names`), the single-site file's short ones without it."""
    names = names or InstanceNames.single("cems")
    placed = names.asset_args("cems")
    assets = []
    offsets = source.epa_utc_offsets()
    hourly_import = _EpaImport(
        names.key("cems_campd_hourly").to_user_string(),
        source.epa_folder,
        lambda paths: read_epa_hourly(paths, facility_utc_offsets=offsets),
        "hours",
        "hour_start_lst",
        "h",
        "hour_start_utc",
        "EPA hourly file(s)",
        "gl-pipelines-epa-campd/2",
    )
    daily_import = _EpaImport(
        names.key("cems_epa_daily").to_user_string(),
        source.epa_daily_folder,
        read_epa_daily,
        "days",
        "day_lst",
        "D",
        "day_lst",
        "EPA daily file(s); window = first and last LST day",
        "gl-pipelines-epa-daily/1",
    )

    @asset(
        **_IMPORT_ASSET,
        **placed,
        description=f"EPA CAMPD/AMPD hourly emissions published for units, from every .csv/.zip in "
        f"{source.epa_folder}; reloaded whole (unpartitioned: EPA republishes whole files). A bad or "
        "incomplete file fails the run and leaves the stored table as it was.",
    )
    def cems_campd_hourly(context: AssetExecutionContext) -> Output[pd.DataFrame]:
        epa, metadata = _load(source, hourly_import)
        per_unit = epa.groupby(["facility_id", "unit_id"])["co2_mass_tons"].sum()
        labels = [f"{facility}:{unit}" for facility, unit in per_unit.index]
        chart = bar_chart(labels, {"CO2": per_unit.tolist()}, "CO2 published by EPA per unit", "short tons")
        metadata.update(
            {
                "units": len(per_unit),
                "facility_utc_offsets": MetadataValue.json({str(k): v for k, v in offsets.items()}),
                "chart": chart_metadata(chart, "EPA CO2 per unit"),
            }
        )
        return Output(epa, metadata=metadata)

    @asset(
        **_IMPORT_ASSET,
        **placed,
        description=f"EPA daily emissions per unit (DLY_<year><state>Q<n>.csv or CAMPD daily; masses in short "
        f"tons), from every .csv/.zip in {source.epa_daily_folder}; reloaded whole. A bad or incomplete file "
        "fails the run and leaves the stored table as it was.",
    )
    def cems_epa_daily(context: AssetExecutionContext) -> Output[pd.DataFrame]:
        daily, metadata = _load(source, daily_import)
        metadata.update(
            {
                "units": int(daily.groupby(["facility_id", "unit_id"]).ngroups),
                "so2_tons": float(daily["so2_mass_tons"].sum()),
            }
        )
        return Output(daily, metadata=metadata)

    reads = {}
    if source.epa_folder:
        assets.append(cems_campd_hourly)
        reads["hourly"] = WindowRead(
            table_name(names.key("cems_campd_hourly")),
            "hour_start_lst",
            ["facility_id", "unit_id", "hour_start_lst", "op_time", "gross_load_mw", "heat_input_mmbtu"]
            + ["so2_mass_lb", "nox_mass_lb", "co2_mass_tons"],
        )
    if source.epa_daily_folder:
        assets.append(cems_epa_daily)
        reads["daily"] = WindowRead(
            table_name(names.key("cems_epa_daily")),
            "day_lst",
            ["facility_id", "unit_id", "day_lst", "op_hours", "gross_load_mwh", "heat_input_mmbtu"]
            + ["so2_mass_tons", "nox_mass_tons", "co2_mass_tons"],
        )
    if not reads:
        return assets

    @asset(
        partitions_def=epa_quarterly_partitions(source.epa_start.isoformat()),
        deps=[asset_def.key for asset_def in assets],
        io_manager_key="warehouse",
        **placed,
        kinds={"pandas", "duckdb"},
        metadata={"partition_expr": "quarter_start_lst"},
        pool=WAREHOUSE_POOL,
        required_resource_keys={WAREHOUSE_READER_KEY},
        description="Per unit and calendar quarter (local standard time) of EPA's published data: operating "
        "hours, gross MWh, heat input, SO2/NOx/CO2 tons, from the stored EPA hours and/or days, with the "
        "hours (days) present and expected.",
    )
    def cems_epa_quarterly(context: AssetExecutionContext) -> Output[pd.DataFrame]:
        window = context.partition_time_window
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        stored = getattr(context.resources, WAREHOUSE_READER_KEY).read_windows(reads, start, end)
        frames = []
        for kind, rows in stored.items():
            if rows is None or rows.empty:
                continue
            if kind == "hourly":
                rows = rows.assign(hour_start_lst=pd.to_datetime(rows["hour_start_lst"]))
                totals, report = hourly_period_totals(rows), coverage(rows)
            else:
                rows = rows.assign(day_lst=pd.to_datetime(rows["day_lst"]))
                totals = daily_period_totals(rows)
                report = coverage(rows, time_column="day_lst", step="D")
            keys = ["facility_id", "unit_id", "period_start_lst"]
            frames.append(totals.merge(report, on=keys).assign(data=kind))
        quarter = datetime.fromisoformat(context.partition_key)
        if not frames:
            raise Failure(
                description=f"{context.asset_key.to_user_string()}[{context.partition_key}]: no EPA hours or days "
                f"stored for this quarter (tables: {', '.join(read.table for read in reads.values())}); nothing written"
            )
        out = pd.concat(frames, ignore_index=True)
        out["quarter_start_lst"] = pd.Timestamp(quarter)
        out["complete"] = out["present"] >= out["expected"]
        out = out[EPA_QUARTERLY_COLUMNS].sort_values(["data", "facility_id", "unit_id"], ignore_index=True)
        by_unit = out.groupby(["data", "facility_id", "unit_id"])["co2_mass_tons"].sum()
        labels = [f"{facility}:{unit} ({kind})" for kind, facility, unit in by_unit.index]
        chart = bar_chart(labels, {"CO2": by_unit.tolist()}, f"EPA CO2, quarter {context.partition_key}", "short tons")
        return Output(
            out,
            metadata={
                "dagster/row_count": len(out),
                "so2_tons": MetadataValue.json(out.groupby("data")["so2_mass_tons"].sum().round(3).to_dict()),
                "co2_tons": MetadataValue.json(out.groupby("data")["co2_mass_tons"].sum().round(1).to_dict()),
                "incomplete_units": int((~out["complete"]).sum()),
                "totals": MetadataValue.md(preview_markdown(out, rows=50)),
                "chart": chart_metadata(chart, f"EPA CO2 quarter {context.partition_key}"),
            },
        )

    return [*assets, cems_epa_quarterly]
