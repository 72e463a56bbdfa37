"""The EPA hourly importer on the real files in ../shared/data/epa (published by EPA, not made here)."""

import csv
import io
import re
import zipfile
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest

from gl_pipelines.cems.aggregate import daily_totals, quarterly_totals
from gl_pipelines.cems.epa_campd import (
    EpaFileError,
    as_emissions,
    consistency_violations,
    coverage,
    hourly_period_totals,
    incomplete_periods,
    read_epa_hourly,
)
from tests.epa_data import EPA_DIR

LANGLEY = EPA_DIR / "langley_gulch_57028_CT1_2018_hourly.csv"
IDAHO = sorted((EPA_DIR / "hourly_idaho_2017_2018").glob("*.zip"))
pytestmark = pytest.mark.skipif(not LANGLEY.exists() or len(IDAHO) != 24, reason="EPA data files not present")

OLD_TO_NEW = {
    "STATE": "State",
    "FACILITY_NAME": "Facility Name",
    "ORISPL_CODE": "Facility ID",
    "UNITID": "Unit ID",
    "OP_DATE": "Date",
    "OP_HOUR": "Hour",
    "OP_TIME": "Operating Time",
    "GLOAD (MW)": "Gross Load (MW)",
    "SLOAD (1000lb/hr)": "Steam Load (1000 lb/hr)",
    "SO2_MASS (lbs)": "SO2 Mass (lbs)",
    "SO2_MASS_MEASURE_FLG": "SO2 Mass Measure Indicator",
    "SO2_RATE (lbs/mmBtu)": "SO2 Rate (lbs/mmBtu)",
    "SO2_RATE_MEASURE_FLG": "SO2 Rate Measure Indicator",
    "NOX_RATE (lbs/mmBtu)": "NOx Rate (lbs/mmBtu)",
    "NOX_RATE_MEASURE_FLG": "NOx Rate Measure Indicator",
    "NOX_MASS (lbs)": "NOx Mass (lbs)",
    "NOX_MASS_MEASURE_FLG": "NOx Mass Measure Indicator",
    "CO2_MASS (tons)": "CO2 Mass (short tons)",
    "CO2_MASS_MEASURE_FLG": "CO2 Mass Measure Indicator",
    "CO2_RATE (tons/mmBtu)": "CO2 Rate (short tons/mmBtu)",
    "CO2_RATE_MEASURE_FLG": "CO2 Rate Measure Indicator",
    "HEAT_INPUT (mmBtu)": "Heat Input (mmBtu)",
}
RATE_COLUMNS = {  # our column -> old header, for reading the published decimal places
    "heat_input_mmbtu": "HEAT_INPUT (mmBtu)",
    "co2_mass_tons": "CO2_MASS (tons)",
    "so2_mass_lb": "SO2_MASS (lbs)",
    "nox_mass_lb": "NOX_MASS (lbs)",
    "so2_rate_lb_mmbtu": "SO2_RATE (lbs/mmBtu)",
    "co2_rate_tons_mmbtu": "CO2_RATE (tons/mmBtu)",
    "nox_rate_lb_mmbtu": "NOX_RATE (lbs/mmBtu)",
}


@pytest.fixture(scope="module")
def raw_rows():
    """Every data row of the 24 Idaho files, read with the csv module (independent of the importer)."""
    rows = []
    for path in IDAHO:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                rows.extend(csv.DictReader(io.StringIO(archive.read(name).decode("latin-1"))))
    return rows


@pytest.fixture(scope="module")
def idaho(idaho_epa):
    return idaho_epa


@pytest.fixture(scope="module")
def published_decimals(raw_rows):
    """Decimal places EPA printed, per column, on full operating hours (partial hours print rate x time)."""
    places = defaultdict(int)
    for row in raw_rows:
        if row["OP_TIME"] == "1":
            for column, header in RATE_COLUMNS.items():
                if "." in row[header]:
                    places[column] = max(places[column], len(row[header].split(".")[1]))
    return dict(places)


def test_every_unit_hour_once_in_local_standard_time(idaho):
    assert len(idaho) == 140_160
    counts = idaho.groupby(["facility_id", "unit_id"]).size()
    assert len(counts) == 8 and (counts == 17_520).all()
    # Idaho (state map): Mountain Standard Time, UTC-7, no daylight shift
    assert ((idaho["hour_start_utc"].dt.tz_localize(None) - idaho["hour_start_lst"]) == pd.Timedelta(hours=7)).all()
    first = idaho.iloc[0]
    assert first["hour_start_lst"] == pd.Timestamp("2017-01-01 00:00")
    assert first["source_ref"] == "epacems2017id01.zip:2017id01.csv:2"


def test_published_decimals_and_every_hour_internally_consistent(idaho, published_decimals):
    # What EPA prints: rates to 3 decimals, heat input and CO2 mass to 1 (per full hour), SO2/NOx mass to 3
    assert published_decimals == {
        "heat_input_mmbtu": 1,
        "co2_mass_tons": 1,
        "so2_mass_lb": 3,
        "nox_mass_lb": 3,
        "so2_rate_lb_mmbtu": 3,
        "co2_rate_tons_mmbtu": 3,
        "nox_rate_lb_mmbtu": 3,
    }
    violations = consistency_violations(idaho, published_decimals)
    assert violations.empty, violations[["source_ref", "check", "residual"]].head(20).to_string()
    # the check is not vacuous: 29,454 operating hours, and one wrong digit is caught
    assert ((idaho["op_time"] > 0) & idaho["nox_mass_lb"].notna()).sum() == 29_454
    tampered = idaho.copy()
    row = tampered.index[tampered["nox_mass_lb"].gt(10)][0]
    tampered.loc[row, "nox_mass_lb"] += 0.002
    caught = consistency_violations(tampered, published_decimals)
    assert caught["source_ref"].tolist() == [tampered.loc[row, "source_ref"]]


def test_measure_indicators_carried_into_method_flags(idaho, raw_rows):
    expected = Counter()
    for row in raw_rows:
        expected[("so2", row["SO2_MASS_MEASURE_FLG"])] += 1
        expected[("nox", row["NOX_RATE_MEASURE_FLG"])] += 1
        expected[("co2", row["CO2_MASS_MEASURE_FLG"])] += 1
    flags = {
        "": None,
        "Measured": "measured",
        "Substitute": "sub_epa_substitute",
        "Measured and Substitute": "sub_epa_measured_and_substitute",
    }
    for (parameter, indicator), count in expected.items():
        method = idaho[f"{parameter}_method"]
        observed = method.isna().sum() if flags[indicator] is None else method.eq(flags[indicator]).sum()
        assert observed == count, (parameter, indicator)
    assert expected[("nox", "Substitute")] == 248 and expected[("co2", "Measured and Substitute")] == 33


def test_daily_and_quarterly_totals_equal_sum_of_hours(idaho):
    hours = as_emissions(idaho)
    days, quarters = daily_totals(hours), quarterly_totals(hours)
    assert len(days) == 8 * 730 and len(quarters) == 8 * 8
    by_quarter = defaultdict(float)
    substituted = Counter()
    for unit, lst, nox, method in zip(
        hours["unit_id"], hours["hour_start_lst"], hours["nox_mass_lb"], hours["nox_method"], strict=True
    ):
        key = (unit, pd.Timestamp(lst.year, 3 * ((lst.month - 1) // 3) + 1, 1))
        by_quarter[key] += nox
        substituted[key] += method.startswith("sub_")
    for row in quarters.itertuples():
        key = (row.unit_id, row.period_start_lst)
        assert row.nox_mass_lb == pytest.approx(by_quarter[key], rel=1e-12, abs=1e-9)
        assert row.nox_substituted_hours == substituted[key]
    for column in ("heat_input_mmbtu", "so2_mass_lb", "co2_mass_tons", "op_hours"):
        source = hours[column.replace("op_hours", "op_time")].sum()
        assert days[column].sum() == pytest.approx(source, rel=1e-12)
        assert quarters[column].sum() == pytest.approx(source, rel=1e-12)
    assert days["hours"].eq(24).all()
    assert quarters["nox_substituted_hours"].sum() == 248


def test_coverage_finds_hours_a_quarter_lacks(idaho):
    report = coverage(idaho, "quarter")
    assert len(report) == 64 and (report["present"] == report["expected"]).all()
    assert sorted(set(report["expected"])) == [2_160, 2_184, 2_208]
    assert incomplete_periods(report) == []
    # The last file of 2018 cut 5 lines short: Langley Gulch's last 5 hours of Q4 are missing.
    assert incomplete_periods(coverage(idaho.iloc[:-5])) == [
        "57028:CT1 2018-10-01: 2203/2208 hours, first missing 2018-12-31 19:00 LST"
    ]
    # A month left out shows in the year's count.
    no_february = coverage(idaho[idaho["hour_start_lst"].dt.month != 2], "year")
    assert len(incomplete_periods(no_february)) == 16
    assert (
        incomplete_periods(no_february)[0] == "7456:1 2017-01-01: 8088/8760 hours, first missing 2017-02-01 00:00 LST"
    )


def test_hourly_period_totals_match_the_emissions_shape_totals(idaho):
    ours = hourly_period_totals(idaho, "quarter")
    ours["unit_id"] = ours["facility_id"].astype(str) + ":" + ours["unit_id"]
    ours = ours.sort_values(["unit_id", "period_start_lst"], ignore_index=True)
    theirs = quarterly_totals(as_emissions(idaho)).sort_values(["unit_id", "period_start_lst"], ignore_index=True)
    assert len(ours) == len(theirs) == 64
    assert (ours["period_start_lst"] == theirs["period_start_lst"]).all() and (
        ours["unit_id"] == theirs["unit_id"]
    ).all()
    assert np.allclose(ours["co2_mass_tons"], theirs["co2_mass_tons"])
    assert np.allclose(ours["so2_mass_tons"], theirs["so2_mass_tons"])
    assert np.allclose(ours["gross_load_mwh"], theirs["gross_load_mwh"])
    assert ours["co2_mass_tons"].sum() == pytest.approx(idaho["co2_mass_tons"].sum())


def test_old_and_new_naming_read_to_the_same_frame(tmp_path):
    old = read_epa_hourly(LANGLEY)
    assert len(old) == 8_760 and old["hour_start_lst"].is_unique
    with LANGLEY.open(encoding="latin-1", newline="") as handle:
        rows = list(csv.DictReader(handle))
    new_path = tmp_path / "campd_langley.csv"
    with new_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        keep = list(OLD_TO_NEW)
        writer.writerow([OLD_TO_NEW[c] for c in keep] + ["Heat Input Measure Indicator", "Associated Stacks"])
        for row in rows:
            month, day, year = row["OP_DATE"].split("-")
            row["OP_DATE"] = f"{year}-{month}-{day}"
            writer.writerow([row[c] for c in keep] + ["Calculated" if row["OP_TIME"] != "0" else "", ""])
    new = read_epa_hourly(new_path)
    columns = ["hour_start_lst", "hour_start_utc", "op_time", "nox_mass_lb", "so2_method", "nox_method"]
    pd.testing.assert_frame_equal(old[columns], new[columns])
    assert new["source"].iloc[0] == "epa_campd" and old["source"].iloc[0] == "epa_ampd"
    assert new["heat_input_method"].dropna().eq("calculated").all()


def test_utc_offset_overrides(idaho):
    rathdrum = read_epa_hourly(IDAHO[:1], facility_utc_offsets={7456: -8})
    offset = rathdrum["hour_start_utc"].dt.tz_localize(None) - rathdrum["hour_start_lst"]
    assert set(offset[rathdrum["facility_id"] == 7456]) == {pd.Timedelta(hours=8)}
    assert set(offset[rathdrum["facility_id"] != 7456]) == {pd.Timedelta(hours=7)}
    pacific = read_epa_hourly(LANGLEY, utc_offset_hours=-8)
    assert pacific["hour_start_utc"].iloc[0] == pd.Timestamp("2018-01-01 08:00", tz="UTC")


def lines_of_langley(count=5):
    return LANGLEY.read_text(encoding="latin-1").splitlines(keepends=True)[:count]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lines: lines[:3] + [lines[3].rstrip("\r\n") + ',"extra"\r\n'] + lines[4:],
            r"bad\.csv: line 4: 25 fields where the header has 24 \(a broken row or a file cut short\)",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"11x9"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value '11x9': not a number",
        ),
        (
            lambda lines: lines[:4] + [lines[4].replace('"Measured"', '"Guessed"', 1)] + lines[5:],
            r"bad\.csv: line 5, column 'SO2_MASS_MEASURE_FLG' value 'Guessed': unknown measure indicator",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace('"01-01-2018"', '"13-01-2018"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'OP_DATE' value '13-01-2018': not a valid date/hour",
        ),
        (
            lambda lines: lines[:3] + [lines[2]] + lines[4:],
            r"bad\.csv: line 4, column 'OP_HOUR' value '1': duplicated unit-hour",
        ),
        (
            lambda lines: [lines[0].replace('"OP_TIME",', '"OPTIME",')] + lines[1:],
            r"bad\.csv: line 1, column\(s\) 'OP_TIME' missing from the header",
        ),
        (
            lambda lines: lines[:1] + [lines[1].replace('"0","1","315"', '"0","1.5","315"', 1)] + lines[2:],
            r"bad\.csv: line 2, column 'OP_TIME' value '1.5': operating time must be within 0..1",
        ),
        (  # a figure's column missing: refused by name, never loaded as nulls (0 tons)
            lambda lines: [line.replace(',"CO2_MASS (tons)"', ',"CO2 (tons)"', 1) for line in lines],
            r"bad\.csv: line 1, column\(s\) 'CO2_MASS \(tons\)' missing from the header",
        ),
        (  # every missing figure is named at once
            lambda lines: (
                [lines[0].replace('"HEAT_INPUT (mmBtu)"', '"HI"').replace('"NOX_MASS (lbs)"', '"NOX"')] + lines[1:]
            ),
            r"bad\.csv: line 1, column\(s\) 'NOX_MASS \(lbs\)', 'HEAT_INPUT \(mmBtu\)' missing from the header",
        ),
        (  # a NUL byte inside 117.5 would read as 11.0
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"11\x009"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value '11\\x009': control byte \(NUL",
        ),
        (  # stray bytes
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"11\xff9"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value '11\xff9': not a number",
        ),
        (  # a word where a number belongs (an indicator pasted one column left)
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"Calculated"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value 'Calculated': not a number",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"-119"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value '-119': negative",
        ),
        (  # "nan" parses as a float but is no published number
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"nan"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value 'nan': not a number",
        ),
        (  # a row cut mid-line
            lambda lines: lines[:4] + [lines[4][:40] + "\r\n"],
            r"bad\.csv: line 5: 3 fields where the header has 24 \(a broken row or a file cut short\)",
        ),
        (  # a long bad value is quoted short
            lambda lines: lines[:2] + [lines[2].replace('"119"', '"' + "9" * 30 + "x" * 50 + '"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'CO2_MASS \(tons\)' value '9{30}x{6}\.\.\.: not a number",
        ),
    ],
)
def test_malformed_file_names_file_line_and_column(tmp_path, edit, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(edit(lines_of_langley())), encoding="latin-1")
    with pytest.raises(EpaFileError, match=message):
        read_epa_hourly(bad)


def test_bad_zip_is_named(tmp_path):
    broken = tmp_path / "epacems2018id13.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(EpaFileError, match=re.escape(f"{broken}: not a readable zip archive")):
        read_epa_hourly(broken)


def test_corrupt_zip_member_is_named(tmp_path):
    damaged = bytearray(IDAHO[0].read_bytes())
    damaged[2000] ^= 0xFF  # inside the deflated CSV: the member's CRC no longer matches
    broken = tmp_path / IDAHO[0].name
    broken.write_bytes(bytes(damaged))
    with pytest.raises(EpaFileError, match=re.escape(f"{broken}: member '2017id01.csv' cannot be read (Bad CRC-32")):
        read_epa_hourly(broken)


def test_langley_gulch_rates_match_part_75_factors():
    """Gas CT: SO2 at the App. D 0.0006 lb/mmBtu default; CO2/heat input near Fc x 44.01/385.3/2000 = 0.0594."""
    langley = read_epa_hourly(LANGLEY)
    operating = langley[(langley["op_time"] == 1) & (langley["heat_input_mmbtu"] > 500)]
    so2_rate = operating["so2_mass_lb"] / operating["heat_input_mmbtu"]
    assert np.allclose(so2_rate, 0.0006, atol=0.0005 / 500)
    co2_rate = operating["co2_mass_tons"] / operating["heat_input_mmbtu"]
    assert np.allclose(co2_rate, 1040 * 44.01 / 385.3 / 2000, rtol=2e-3, atol=0.05 / 500)


def test_same_hours_in_two_files_is_refused(tmp_path):
    copy = tmp_path / "langley_copy.csv"
    copy.write_bytes(LANGLEY.read_bytes())
    with pytest.raises(
        EpaFileError, match=r"langley_copy\.csv:2: column 'hour' value '2018-01-01 00:00:00': unit 57028:CT1"
    ):
        read_epa_hourly([LANGLEY, copy])
