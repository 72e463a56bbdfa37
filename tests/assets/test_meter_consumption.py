"""Consumption from totalizer snapshots: on the boundary, late reads, rollover, reset, gaps."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gl_pipelines.assets.meter_consumption import Totalizer, hourly_consumption

H0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
H1 = H0 + timedelta(hours=1)
STEAM = Totalizer("SteamMeter.Total", "t", rollover=4_294_967.296)  # uint32 counts x 0.001 t
ENERGY = Totalizer("PowerMeter.Energy", "kW*h", rollover=None)


def snapshot(readings: dict[str, tuple[datetime, float]], quality: str = "good") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"ts": pd.Timestamp(ts), "tag": tag, "value": value, "quality": quality}
            for tag, (ts, value) in readings.items()
        ]
    )


def one(frame: pd.DataFrame, meter: str) -> pd.Series:
    return frame.set_index("meter").loc[meter]


def test_reads_on_the_boundaries_give_the_plain_difference():
    result = hourly_consumption(
        snapshot({"SteamMeter.Total": (H0, 1000.0)}), snapshot({"SteamMeter.Total": (H1, 1040.5)}), [STEAM], (H0, H1)
    )
    row = one(result, "SteamMeter.Total")
    assert row["flag"] == "ok" and row["consumption"] == pytest.approx(40.5)


def test_late_reads_are_pro_rated_to_the_hour():
    late0, late1 = H0 + timedelta(minutes=2), H1 + timedelta(minutes=5)  # 63 minutes apart
    result = hourly_consumption(
        snapshot({"SteamMeter.Total": (late0, 1000.0)}),
        snapshot({"SteamMeter.Total": (late1, 1063.0)}),
        [STEAM],
        (H0, H1),
    )
    assert one(result, "SteamMeter.Total")["consumption"] == pytest.approx(60.0)


def test_rollover_is_corrected_and_flagged():
    result = hourly_consumption(
        snapshot({"SteamMeter.Total": (H0, 4_294_950.0)}), snapshot({"SteamMeter.Total": (H1, 20.0)}), [STEAM], (H0, H1)
    )
    row = one(result, "SteamMeter.Total")
    assert row["flag"] == "rollover"
    assert row["consumption"] == pytest.approx(4_294_967.296 - 4_294_950.0 + 20.0)


def test_reset_is_flagged_not_turned_into_a_number():
    result = hourly_consumption(
        snapshot({"PowerMeter.Energy": (H0, 523_000.0)}),
        snapshot({"PowerMeter.Energy": (H1, 12.0)}),
        [ENERGY],
        (H0, H1),
    )
    row = one(result, "PowerMeter.Energy")
    assert row["flag"] == "reset" and np.isnan(row["consumption"]) and row["raw_delta"] == -522_988.0


def test_counter_far_from_its_rollover_going_back_is_a_reset():
    result = hourly_consumption(
        snapshot({"SteamMeter.Total": (H0, 2_000_000.0)}), snapshot({"SteamMeter.Total": (H1, 5.0)}), [STEAM], (H0, H1)
    )
    assert one(result, "SteamMeter.Total")["flag"] == "reset"


def test_missing_or_bad_snapshot_gives_no_number():
    result = hourly_consumption(
        snapshot({}),
        snapshot({"SteamMeter.Total": (H1, 10.0), "PowerMeter.Energy": (H1, 7.0)}, quality="bad"),
        [STEAM, ENERGY],
        (H0, H1),
    )
    assert list(result["flag"]) == ["missing_reading", "missing_reading"]
    assert result["consumption"].isna().all()
