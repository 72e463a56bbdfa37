from datetime import UTC, datetime, timedelta

import numpy as np

from gl_demo_plant import plant_model

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def test_values_are_a_pure_function_of_tag_time_and_seed():
    times = plant_model.sample_times(DAY, DAY + timedelta(hours=1))
    tag = plant_model.PROCESS_TAGS[0]
    np.testing.assert_array_equal(tag.values(times), tag.values(times.copy()))
    assert not np.array_equal(tag.values(times), tag.values(times, seed=1))


def test_sample_grid_is_half_open_and_aligned():
    start = DAY + timedelta(seconds=3)
    times = plant_model.sample_times(start, DAY + timedelta(minutes=1))
    assert list(times - int(DAY.timestamp())) == [10, 20, 30, 40, 50]


def test_fuel_follows_steam_like_a_real_boiler():
    times = plant_model.sample_times(DAY, DAY + timedelta(days=7))
    models = {m.name: m for m in plant_model.PROCESS_TAGS}
    steam = models["Boiler1.SteamFlow"].values(times)
    gas = models["Boiler1.FuelGasFlow"].values(times)
    o2 = models["Boiler1.FlueGasO2"].values(times)
    assert np.corrcoef(steam, gas)[0, 1] > 0.95
    assert np.corrcoef(steam, o2)[0, 1] < -0.9  # excess air falls as load rises
    ratio = gas.mean() / steam.mean()
    assert 80 < ratio < 90  # m3 of natural gas per tonne of steam at ~85 % efficiency
    assert steam.min() > 20 and steam.max() < 60


def test_synthetic_tags_scale_past_a_thousand():
    tags = plant_model.catalogue(1200)
    assert len(tags) == 1206
    assert "ns=2;s=Synthetic.T1200" in tags
