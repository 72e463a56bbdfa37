"""EPA history assets on the real EPA files: a failed import keeps the stored table, facility time zones,
daily files, and quarterly reports of past years (partitions from the configured history start)."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile

import duckdb
import pandas as pd
import pytest
from dagster import instance_for_test

from gl_pipelines.assets.partitions import cems_daily_partitions, cems_hourly_partitions, cems_quarterly_partitions
from gl_pipelines.components.site_file import build_definitions
from gl_pipelines.config import CemsSource, SiteConfigError, load_site_config, parse_site_config
from tests.epa_data import EPA_DIR
from tests.runs import run

LANGLEY = EPA_DIR / "langley_gulch_57028_CT1_2018_hourly.csv"
IDAHO_Q1_2017 = [EPA_DIR / "hourly_idaho_2017_2018" / f"epacems2017id0{month}.zip" for month in (1, 2, 3)]
DAILY = sorted((EPA_DIR / "daily_alabama_1995").glob("DLY_1995alQ*.csv"))
pytestmark = pytest.mark.skipif(
    not LANGLEY.exists() or not all(p.exists() for p in IDAHO_Q1_2017) or len(DAILY) != 4,
    reason="needs ../shared/data/epa (real EPA files)",
)


def epa_site(tmp_path, **cems):
    """The demo site with only its CEMS section changed (no PLC: these assets read files)."""
    demo = load_site_config()
    settings = {**demo.cems.model_dump(), "plc": None, "epa_folder": tmp_path / "epa", **cems}
    for key in ("dahs_drop_folder", "quarantine_folder", "accepted_folder"):
        settings[key] = tmp_path / key
    return demo.model_copy(update={"cems": CemsSource.model_validate(settings)})


def table(warehouse, name, order):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"select * from plant.{name} order by {order}").fetchdf()


def failure_text(result) -> str:
    return "\n".join(
        e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )


def langley_lines() -> list[str]:
    return LANGLEY.read_text(encoding="latin-1").splitlines(keepends=True)


BAD_LANGLEY = {
    # The case: a file without CO2_MASS loaded as nulls (0 tons) and replaced good data.
    "missing CO2 column": (
        lambda lines: [line.replace(',"CO2_MASS (tons)"', ',"CO2 (tons)"', 1) for line in lines],
        "langley_gulch_57028_CT1_2018_hourly.csv: line 1, column(s) 'CO2_MASS (tons)' missing from the header",
    ),
    "NUL in a number": (
        lambda lines: lines[:2] + [lines[2].replace('"119"', '"11\x009"', 1)] + lines[3:],
        "line 3, column 'CO2_MASS (tons)' value '11\\x009': control byte (NUL or similar) inside a value",
    ),
    "cut at a line boundary": (
        lambda lines: lines[:-48],
        "1 unit-quarter(s) short of hours (a file cut short or left out?): "
        "57028:CT1 2018-10-01: 2160/2208 hours, first missing 2018-12-30 00:00 LST",
    ),
}


def test_a_failed_import_leaves_the_stored_table_exactly_as_it_was(tmp_path):
    site = epa_site(tmp_path)
    (tmp_path / "epa").mkdir()
    target = tmp_path / "epa" / LANGLEY.name
    shutil.copy(LANGLEY, target)
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    with instance_for_test() as instance:
        good = run(defs, instance, ["cems_campd_hourly"])
        assert good.success, failure_text(good)
        before = table(warehouse, "cems_campd_hourly", "facility_id, unit_id, hour_start_lst")
        published = pd.read_csv(LANGLEY)["CO2_MASS (tons)"].sum()
        assert len(before) == 8_760 and before["co2_mass_tons"].sum() == pytest.approx(published) == 466_582.792
        for name, (edit, message) in BAD_LANGLEY.items():
            target.write_text("".join(edit(langley_lines())), encoding="latin-1")
            result = run(defs, instance, ["cems_campd_hourly"])
            assert not result.success, name
            assert message in failure_text(result), name
            assert "nothing replaced, the stored table is unchanged" in failure_text(result)
            after = table(warehouse, "cems_campd_hourly", "facility_id, unit_id, hour_start_lst")
            pd.testing.assert_frame_equal(after, before)


def test_completeness_rule_off_loads_and_reports_the_gap(tmp_path):
    site = epa_site(tmp_path, epa_complete_period="off")
    (tmp_path / "epa").mkdir()
    (tmp_path / "epa" / LANGLEY.name).write_text("".join(langley_lines()[:-48]), encoding="latin-1")
    with instance_for_test() as instance:
        result = run(build_definitions(site, tmp_path / "w.duckdb"), instance, ["cems_campd_hourly"])
        assert result.success, failure_text(result)
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["incomplete_periods"].value == [
            "57028:CT1 2018-10-01: 2160/2208 hours, first missing 2018-12-30 00:00 LST"
        ]


def idaho_rows() -> list[dict]:
    """Q1 2017 of every Idaho unit read with the csv module (independent of the importer)."""
    rows = []
    for path in IDAHO_Q1_2017:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                rows.extend(csv.DictReader(io.StringIO(archive.read(name).decode("latin-1"))))
    return rows


def test_facility_time_zones_history_start_and_quarterly_reports_of_past_years(tmp_path):
    """Rathdrum (northern Idaho) keeps Pacific time: 7456 by zone name, 55179 by offset; the rest of
    Idaho is Mountain (UTC-7). EPA history of 2017 (hourly) and 1995 (daily) gets quarterly reports."""
    site = epa_site(
        tmp_path,
        epa_daily_folder=tmp_path / "daily",
        epa_facilities=[
            {"facility_id": 7456, "time_zone": "America/Los_Angeles"},
            {"facility_id": 55179, "utc_offset_hours": -8},
        ],
        epa_history_start="1995-01-01",
    )
    for folder, files in (("epa", IDAHO_Q1_2017), ("daily", DAILY)):
        (tmp_path / folder).mkdir()
        for path in files:
            shutil.copy(path, tmp_path / folder / path.name)
    warehouse = tmp_path / "w.duckdb"
    defs = build_definitions(site, warehouse)
    with instance_for_test() as instance:
        loaded = run(defs, instance, ["cems_campd_hourly", "cems_epa_daily"])
        assert loaded.success, failure_text(loaded)
        hourly = table(warehouse, "cems_campd_hourly", "facility_id, unit_id, hour_start_lst")
        offset = hourly["hour_start_utc"].dt.tz_convert(None) - hourly["hour_start_lst"]
        by_facility = (
            offset.groupby(hourly["facility_id"]).unique().map(lambda v: [x / pd.Timedelta(hours=1) for x in v])
        )
        assert by_facility.to_dict() == {7456: [8.0], 7953: [7.0], 55179: [8.0], 55733: [7.0], 57028: [7.0]}
        first = hourly[hourly["facility_id"] == 7456].iloc[0]
        assert (str(first["hour_start_lst"]), str(first["hour_start_utc"])) == (
            "2017-01-01 00:00:00",
            "2017-01-01 08:00:00+00:00",
        )

        quarter = run(defs, instance, ["cems_epa_quarterly"], partition_key="2017-01-01")
        assert quarter.success, failure_text(quarter)
        summer_1995 = run(defs, instance, ["cems_epa_quarterly"], partition_key="1995-07-01")
        assert summer_1995.success, failure_text(summer_1995)
        report = table(warehouse, "cems_epa_quarterly", "quarter_start_lst, data, facility_id, unit_id")

    q1 = report[report["quarter_start_lst"] == pd.Timestamp("2017-01-01")]
    assert (q1["data"] == "hourly").all() and len(q1) == 8
    assert (q1["expected"] == 2_160).all() and (q1["present"] == 2_160).all() and q1["complete"].all()
    rows = idaho_rows()
    assert q1["co2_mass_tons"].sum() == pytest.approx(sum(float(r["CO2_MASS (tons)"] or 0) for r in rows), abs=1e-6)
    assert q1["so2_mass_tons"].sum() == pytest.approx(sum(float(r["SO2_MASS (lbs)"] or 0) for r in rows) / 2000)
    assert q1["heat_input_mmbtu"].sum() == pytest.approx(sum(float(r["HEAT_INPUT (mmBtu)"] or 0) for r in rows))
    q3_1995 = report[report["quarter_start_lst"] == pd.Timestamp("1995-07-01")]
    assert (q3_1995["data"] == "daily").all() and len(q3_1995) == 14
    assert (q3_1995["expected"] == 92).all() and q3_1995["complete"].all()
    assert q3_1995["so2_mass_tons"].sum() == pytest.approx(49_646.269, abs=1e-6)


def test_history_start_is_configuration_and_the_demo_keeps_2025(tmp_path):
    demo = load_site_config().cems
    assert demo.history_start.isoformat() == "2025-01-01" and demo.epa_start.isoformat() == "2025-01-01"
    start = demo.history_start.isoformat()
    assert cems_daily_partitions(-6, start).get_first_partition_key() == "2025-01-01"
    past = epa_site(tmp_path, history_start="2017-01-01").cems
    assert past.epa_start.isoformat() == "2017-01-01"
    assert cems_hourly_partitions(-7, "2017-01-01").get_first_partition_key() == "2017-01-01-00:00"
    assert cems_quarterly_partitions(-7, "2017-01-01").get_first_partition_key() == "2017-01-01"
    defs = build_definitions(epa_site(tmp_path, history_start="2017-01-01"), tmp_path / "w.duckdb")
    raw = defs.get_assets_def("cems_hourly_raw")
    assert raw.partitions_def.get_first_partition_key() == "2017-01-01-00:00"


@pytest.mark.parametrize(
    ("facilities", "message"),
    [
        ([{"facility_id": 7456}], "give exactly one of utc_offset_hours and time_zone"),
        ([{"facility_id": 7456, "time_zone": "Pacific/Atlantis"}], "unknown time zone 'Pacific/Atlantis'"),
        ([{"facility_id": 7456, "utc_offset_hours": -8, "time_zone": "America/Los_Angeles"}], "exactly one"),
        (
            [{"facility_id": 7456, "utc_offset_hours": -8}, {"facility_id": 7456, "utc_offset_hours": -7}],
            "duplicate facility_id in epa_facilities [7456, 7456]",
        ),
    ],
)
def test_facility_time_zone_config_errors_name_the_field(facilities, message):
    raw = load_site_config().model_dump(mode="json")
    raw["cems"]["epa_facilities"] = facilities
    with pytest.raises(SiteConfigError, match=r"field 'cems.*" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_site_config(raw, "site.yaml")
