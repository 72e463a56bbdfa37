"""EPA daily files on the real Alabama 1995 quarters (DLY_1995alQ1..4, EPA's own daily summaries)."""

import csv
import re

import numpy as np
import pandas as pd
import pytest

from gl_pipelines.cems.epa_campd import EpaFileError, coverage, incomplete_periods, read_epa_hourly
from gl_pipelines.cems.epa_daily import daily_period_totals, read_epa_daily
from tests.epa_data import EPA_DIR

DAILY = sorted((EPA_DIR / "daily_alabama_1995").glob("DLY_1995alQ*.csv"))
ARP = EPA_DIR / "summaries" / "ARPComplianceData-StateLevel.csv"
LANGLEY = EPA_DIR / "langley_gulch_57028_CT1_2018_hourly.csv"
pytestmark = pytest.mark.skipif(len(DAILY) != 4 or not ARP.exists(), reason="EPA daily files not present")
DLY_TO_CAMPD = {
    "STATE": "State",
    "FACILITY_NAME": "Facility Name",
    "ORISPL_CODE": "Facility ID",
    "UNITID": "Unit ID",
    "OP_DATE": "Date",
    "SUM_OP_TIME": "Sum of the Operating Time",
    "COUNT_OP_TIME": "Operating Time Count",
    "GLOAD": "Gross Load (MWh)",
    "SLOAD": "Steam Load (1000 lb)",
    "SO2_MASS": "SO2 Mass (short tons)",
    "SO2_RATE": "SO2 Rate (lbs/mmBtu)",
    "NOX_RATE": "NOx Rate (lbs/mmBtu)",
    "NOX_MASS": "NOx Mass (short tons)",
    "CO2_MASS": "CO2 Mass (short tons)",
    "CO2_RATE": "CO2 Rate (short tons/mmBtu)",
    "HEAT_INPUT": "Heat Input (mmBtu)",
}


@pytest.fixture(scope="module")
def alabama():
    return read_epa_daily(DAILY)


def test_every_unit_day_of_1995_once_with_the_files_numbers(alabama):
    assert len(alabama) == 5_110 and alabama.groupby(["facility_id", "unit_id"]).ngroups == 14
    report = coverage(alabama, "year", time_column="day_lst", step="D")
    assert (report["expected"] == 365).all() and (report["present"] == 365).all()
    assert incomplete_periods(report, "days") == []
    # Independent of the importer: the csv module's sums of the same files.
    sums = {"SO2_MASS": 0.0, "CO2_MASS": 0.0, "HEAT_INPUT": 0.0, "GLOAD": 0.0}
    for path in DAILY:
        with path.open(encoding="latin-1", newline="") as handle:
            for row in csv.DictReader(handle):
                for column in sums:
                    sums[column] += float(row[column] or 0)
    assert alabama["so2_mass_tons"].sum() == pytest.approx(sums["SO2_MASS"], abs=1e-6)
    assert alabama["co2_mass_tons"].sum() == pytest.approx(sums["CO2_MASS"], abs=1e-4)
    assert alabama["heat_input_mmbtu"].sum() == pytest.approx(sums["HEAT_INPUT"], abs=1e-3)
    assert alabama["gross_load_mwh"].sum() == sums["GLOAD"] == 20_032_360
    # Non-operating days (767) publish no figures: nulls there, never elsewhere.
    idle = alabama["op_hours"] == 0
    assert int(idle.sum()) == 767 and alabama.loc[idle, "so2_mass_tons"].isna().all()
    assert alabama.loc[~idle, "so2_mass_tons"].notna().all()


def test_four_quarters_sum_to_the_so2_epa_deducted_as_allowances(alabama):
    """Alabama 1995, Acid Rain Program: EPA deducted 149,995 allowances (1 allowance = 1 ton SO2);
    the four daily files sum to 149,989.524 tons, 5.476 tons (0.0037 %) less.

    Rounding does not explain it: each unit's or facility's year to the nearest ton gives 149,989,
    every unit rounded up 149,997. The deduction is made on the certified annual emissions (quarterly
    reports as finally resubmitted, and in Phase I also substitution and compensating units), which
    the daily file, a snapshot of the hourly data, need not match to the ton; the files here cannot
    tell which of these it is."""
    quarters = daily_period_totals(alabama, "quarter").groupby("period_start_lst")["so2_mass_tons"].sum()
    assert quarters.round(3).tolist() == [23_094.755, 40_445.373, 49_646.269, 36_803.127]
    assert [str(q.date()) for q in quarters.index] == ["1995-01-01", "1995-04-01", "1995-07-01", "1995-10-01"]
    total = quarters.sum()
    arp = pd.read_csv(ARP)
    deducted = arp.query("programCode == 'ARP' and stateCode == 'AL' and year == 1995")["totalAllowancesDeducted"]
    assert set(deducted) == {149_995}
    assert total == pytest.approx(149_989.524, abs=1e-6)
    assert deducted.iloc[0] - total == pytest.approx(5.476, abs=1e-6)
    assert (deducted.iloc[0] - total) / deducted.iloc[0] < 4e-5
    per_unit = daily_period_totals(alabama, "year")["so2_mass_tons"]
    assert (per_unit.round().sum(), np.ceil(per_unit).sum()) == (149_989, 149_997)


# Today's CAMPD daily emissions download, column for column: EPA's own field mapping (US-EPA-CAMD/
# easey-emissions-api src/constants/field-mappings.ts `daily`, commit 60a7334, 2024-10-16) with the
# labels of US-EPA-CAMD/easey-common src/constants/property-metadata.constants.ts (commit 32a1996).
CAMPD_DAILY_HEADER = [
    "State",
    "Facility Name",
    "Facility ID",
    "Unit ID",
    "Associated Stacks",
    "Date",
    "Operating Time Count",
    "Sum of the Operating Time",
    "Gross Load (MWh)",
    "Steam Load (1000 lb)",
    "SO2 Mass (short tons)",
    "SO2 Rate (lbs/mmBtu)",
    "CO2 Mass (short tons)",
    "CO2 Rate (short tons/mmBtu)",
    "NOx Mass (short tons)",
    "NOx Rate (lbs/mmBtu)",
    "Heat Input (mmBtu)",
    "Primary Fuel Type",
    "Secondary Fuel Type",
    "Unit Type",
    "SO2 Controls",
    "NOx Controls",
    "PM Controls",
    "Hg Controls",
    "Program Code",
]


def test_campd_daily_naming_reads_to_the_same_frame(tmp_path, alabama):
    """No CAMPD daily download is stored here: this one is built from the Q1 file in today's CAMPD daily
    layout (header above, its order, ISO dates, unit attributes blank; the same numbers), to show both
    namings meet."""
    rows = list(csv.reader(DAILY[0].open(encoding="latin-1", newline="")))
    named = [dict(zip((DLY_TO_CAMPD[name] for name in rows[0]), row, strict=True)) for row in rows[1:]]
    for row in named:
        month, day, year = row["Date"].split("-")
        row["Date"] = f"{year}-{month}-{day}"
    campd = tmp_path / "daily-emissions-1995-al-q1.csv"
    with campd.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, CAMPD_DAILY_HEADER, restval="")
        writer.writeheader()
        writer.writerows(named)
    new = read_epa_daily(campd)
    old = alabama[alabama["source_ref"].str.startswith(DAILY[0].name)].reset_index(drop=True)
    assert len(new) == len(old) == 1_260
    columns = [c for c in new.columns if c not in ("source", "source_ref")]
    pd.testing.assert_frame_equal(new[columns], old[columns])
    assert (new["source"].iloc[0], old["source"].iloc[0]) == ("epa_campd_daily", "epa_ampd_daily")


def daily_lines(count=6):
    return DAILY[0].read_text(encoding="latin-1").splitlines(keepends=True)[:count]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lines: [lines[0].replace('"SO2_MASS",', '"SO2",')] + lines[1:],
            r"bad\.csv: line 1, column\(s\) 'SO2_MASS' missing from the header",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace('"28.935"', '"28\x00.935"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'SO2_MASS' value '28\\x00\.935': control byte \(NUL",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace('"28.935"', '"Measured"', 1)] + lines[3:],
            r"bad\.csv: line 3, column 'SO2_MASS' value 'Measured': not a number",
        ),
        (
            lambda lines: lines[:3] + [lines[3].replace('"24","24","4', '"25","24","4', 1)] + lines[4:],
            r"bad\.csv: line 4, column 'SUM_OP_TIME' value '25': operating hours must be 0\.\.24",
        ),
        (
            lambda lines: lines[:3] + [lines[1]] + lines[4:],
            r"bad\.csv: line 4, column 'OP_DATE' value '01-11-1995': duplicated unit-day",
        ),
        (
            lambda lines: lines[:5] + [lines[5][:30] + "\r\n"],
            r"bad\.csv: line 6: 5 fields where the header has 16",
        ),
    ],
)
def test_malformed_daily_file_names_file_line_column_and_value(tmp_path, edit, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(edit(daily_lines())), encoding="latin-1")
    with pytest.raises(EpaFileError, match=message):
        read_epa_daily(bad)


def test_daily_and_hourly_files_are_told_apart():
    with pytest.raises(EpaFileError, match=re.escape("an EPA daily file (DLY_ format): read it with read_epa_daily")):
        read_epa_hourly(DAILY[0])
    with pytest.raises(EpaFileError, match=re.escape("an EPA hourly file (AMPD naming): read it with read_epa_hourly")):
        read_epa_daily(LANGLEY)


def test_a_file_cut_at_a_line_boundary_shows_as_missing_days(tmp_path):
    cut = tmp_path / DAILY[3].name
    cut.write_text("".join(DAILY[3].read_text(encoding="latin-1").splitlines(keepends=True)[:-3]), "latin-1")
    daily = read_epa_daily([*DAILY[:3], cut])
    assert incomplete_periods(coverage(daily, "quarter", time_column="day_lst", step="D"), "days") == [
        "56:3 1995-10-01: 89/92 days, first missing 1995-12-28 00:00 LST"
    ]
