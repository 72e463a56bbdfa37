"""Demo CEMS physics, the PLC register block over real Modbus TCP, and the `cems:` site config."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymodbus.client import AsyncModbusTcpClient

from gl_demo_plant import cems_model
from gl_demo_plant.cems_dahs import lst_day_window
from gl_demo_plant.cems_plc import last_completed_hour
from gl_pipelines.cems import equations as eq
from gl_pipelines.cems.plc import PlcBlockError, plc_block_rows
from gl_pipelines.components.site_file import with_cems_environment
from gl_pipelines.config import PROJECT_ROOT, ModbusSource, SiteConfigError, load_site_config, parse_site_config
from gl_pipelines.resources.modbus import ModbusResource

LST = -6


def test_demo_stack_gas_closes_on_the_fuel_with_the_regulation_equations():
    start, end = lst_day_window(date(2026, 7, 15), LST)
    hours = cems_model.hour_starts(start, end)
    frame = cems_model.cems_hours("B1", start, end)
    heat = eq.heat_input_co2_wet(frame["stack_flow_scfh"], frame["co2_pct"], cems_model.FC_NATURAL_GAS)
    assert np.asarray(heat) == pytest.approx(cems_model.fuel_heat_input_mmbtu(hours), rel=0.01)
    # NOx ppm (dry) back through F-5 gives the rate the model emits.
    rate = eq.nox_rate_o2_dry(frame["nox_ppm"], frame["o2_pct"], cems_model.FD_NATURAL_GAS)
    assert np.asarray(rate) == pytest.approx(frame["nox_rate_lb_mmbtu"].to_numpy(), rel=1e-9)
    # Combustion water of natural gas: ~15-16 % stack moisture; CO2 ~8.5 % wet.
    assert frame["moisture_pct"].between(14, 17).all() and frame["co2_pct"].between(7.5, 9.5).all()


def test_faults_blank_missing_values_bias_failed_calibrations_and_drop_hours():
    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    hours = cems_model.hour_starts(start, start + timedelta(hours=4))
    faults = cems_model.CemsFaults(
        missing={hours[0]: ("nox",)},
        calibration_failed={hours[1]: ("co2",)},
        dropped_hours=frozenset({hours[3]}),
    )
    clean = cems_model.cems_hours("B1", hours[0], hours[-1] + timedelta(hours=1))
    faulty = cems_model.cems_hours("B1", hours[0], hours[-1] + timedelta(hours=1), faults)
    assert len(faulty) == 3 and pd.isna(faulty.loc[0, ["nox_ppm", "nox_rate_lb_mmbtu"]]).all()
    assert faulty.loc[1, "co2_status"] == "calibration_failed"
    assert faulty.loc[1, "co2_pct"] == pytest.approx(clean.loc[1, "co2_pct"] * 1.12)


def test_plc_serves_the_last_completed_hour_and_refuses_writes(demo_cems_plc):
    source = load_site_config().cems
    device = source.plc.model_copy(update={"port": demo_cems_plc.port})
    snapshot = ModbusResource.from_source(ModbusSource(devices=[device])).read_points()
    hour = last_completed_hour(datetime.now(UTC))
    rows = plc_block_rows(snapshot.frame, ["B1"], LST, snapshot.endpoints[0])
    if rows["hour_start_utc"].item() != pd.Timestamp(hour):  # the hour turned between the two reads
        hour = last_completed_hour(datetime.now(UTC))
    assert rows["hour_start_utc"].item() == pd.Timestamp(hour)
    expected = cems_model.cems_hours("B1", hour, hour + timedelta(hours=1), cems_model.demo_faults([hour], LST))
    for column in ("stack_flow_scfh", "co2_pct", "o2_pct", "nox_ppm", "moisture_pct"):
        # nan_ok: at 20:00-21:59 LST the demo's stack flow is missing (NaN in both)
        assert rows[column].item() == pytest.approx(expected[column].item(), rel=1e-6, nan_ok=True), column
    assert rows["source"].item() == "plc" and rows["hour_start_lst"].item() == pd.Timestamp(hour).tz_localize(
        None
    ) + pd.Timedelta(hours=LST)

    async def write():
        client = AsyncModbusTcpClient("127.0.0.1", port=demo_cems_plc.port)
        await client.connect()
        try:
            return await client.write_register(2, 7, device_id=device.device_id)
        finally:
            client.close()

    before = demo_cems_plc.writes_rejected
    assert asyncio.run(write()).isError() and demo_cems_plc.writes_rejected == before + 1


def _block(**overrides) -> pd.DataFrame:
    values = {"B1.hour_start_epoch": 1_793_548_800.0, "B1.op_time": 1.0, "B1.co2_pct": 8.5, "B1.co2_status": 0.0}
    values.update(overrides)
    return pd.DataFrame({"tag": list(values), "value": list(values.values()), "quality": "good"})


def test_plc_block_decoding_refuses_nonsense_and_skips_a_unit_read_badly():
    rows = plc_block_rows(_block(), ["B1"], LST, "plc")
    assert rows["co2_status"].item() == "valid" and rows["so2_status"].item() == "missing"
    # A PLC has no NaN: a missing parameter reads 0.0 beside status 1, and is stored as no value.
    missing = plc_block_rows(
        _block(**{"B1.nox_ppm": 0.0, "B1.nox_rate_lb_mmbtu": 0.0, "B1.nox_status": 1.0}), ["B1"], LST, "plc"
    )
    assert missing[["nox_ppm", "nox_rate_lb_mmbtu"]].isna().all(axis=None) and missing["co2_pct"].item() == 8.5
    with pytest.raises(PlcBlockError, match=r"B1.co2_status = 7.0 is not a status word"):
        plc_block_rows(_block(**{"B1.co2_status": 7.0}), ["B1"], LST, "plc")
    with pytest.raises(PlcBlockError, match="not a whole hour"):
        plc_block_rows(_block(**{"B1.hour_start_epoch": 1_793_548_801.0}), ["B1"], LST, "plc")
    bad = _block().assign(quality=["good", "bad", "good", "good"])
    assert plc_block_rows(bad, ["B1"], LST, "plc").empty


def _site_with(cems: dict) -> dict:
    import yaml

    raw = yaml.safe_load(Path(PROJECT_ROOT / "config" / "demo_site.yaml").read_text())
    raw["cems"].update(cems)
    return raw


def test_demo_config_resolves_folders_under_the_project():
    cems = load_site_config().cems
    assert cems.dahs_drop_folder == PROJECT_ROOT / "data" / "cems" / "dahs_drop"
    assert cems.units[0].fc_factor == 1_040.0 and cems.units[0].fd_factor == 8_710.0


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"lst_utc_offset_hours": -20}, "cems.lst_utc_offset_hours' = -20"),
        ({"plc": {"name": "p", "host": "h", "points": [{"name": "B7.op_time", "table": "holding", "address": 0,
                                                          "type": "float32", "unit": "dimensionless"}]}},
         "plc point 'B7.op_time' must be '<unit_id>.<field>'"),
        ({"units": []}, "cems.units' = []"),
    ],
)  # fmt: skip
def test_bad_cems_config_names_the_field_and_value(change, text):
    with pytest.raises(SiteConfigError) as error:
        parse_site_config(_site_with(change), "site.yaml")
    assert str(error.value).startswith("site.yaml: invalid site config") and text in str(error.value)


def test_environment_moves_folders_and_plc():
    site = with_cems_environment(
        load_site_config(),
        {
            "GL_CEMS_DROP_FOLDER": "/srv/dahs",
            "GL_CEMS_EPA_DAILY_FOLDER": "/srv/epa-daily",
            "GL_CEMS_PLC_HOST": "10.1.2.3",
            "GL_CEMS_PLC_PORT": "1502",
        },
    )
    assert site.cems.dahs_drop_folder == Path("/srv/dahs")
    assert site.cems.epa_daily_folder == Path("/srv/epa-daily")
    assert (site.cems.plc.host, site.cems.plc.port) == ("10.1.2.3", 1502)
