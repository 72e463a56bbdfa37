from pathlib import Path

import pytest
import yaml

from gl_pipelines.config import DEMO_SITE_CONFIG, SiteConfigError, load_site_config


def write_variant(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(DEMO_SITE_CONFIG.read_text())
    mutate(raw)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_demo_config_loads():
    site = load_site_config()
    assert site.opcua.tags[0].name == "Boiler1.SteamFlow"
    assert site.opcua.tag_ranges()["Boiler1.FlueGasO2"] == (0.0, 21.0)


def test_env_var_selects_config(tmp_path, monkeypatch):
    path = write_variant(tmp_path, lambda raw: raw["site"].update(name="other-site"))
    monkeypatch.setenv("GL_SITE_CONFIG", str(path))
    assert load_site_config().site.name == "other-site"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda raw: raw["opcua"]["tags"][1].update(node_id="ns=2;x=oops"),
            "field 'opcua.tags.1.node_id' = 'ns=2;x=oops'",
        ),
        (lambda raw: raw["opcua"]["tags"][0].update(min=100), "opcua.tags.0"),
        (lambda raw: raw["opcua"].update(endpoint="http://plant:4840"), "field 'opcua.endpoint' = 'http://plant:4840'"),
        (lambda raw: raw["opcua"].update(sample_interval_s=0), "field 'opcua.sample_interval_s' = 0"),
        (lambda raw: raw["site"].update(timezone="Mars/Olympus"), "field 'site.timezone' = 'Mars/Olympus'"),
        (lambda raw: raw["opcua"]["tags"][0].pop("unit"), "field 'opcua.tags.0.unit' is missing"),
        (lambda raw: raw["opcua"]["tags"][0].update(units="bar"), "field 'opcua.tags.0.units' = 'bar'"),
        (lambda raw: raw["checks"].update(min_good_share=1.5), "field 'checks.min_good_share' = 1.5"),
        (
            lambda raw: raw["opcua"]["tags"].append(dict(raw["opcua"]["tags"][0])),
            "duplicate tag name 'Boiler1.SteamFlow'",
        ),
    ],
)
def test_bad_config_names_file_field_and_value(tmp_path, mutate, expected):
    path = write_variant(tmp_path, mutate)
    with pytest.raises(SiteConfigError) as error:
        load_site_config(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert expected in message


def test_range_error_names_both_bounds(tmp_path):
    path = write_variant(tmp_path, lambda raw: raw["opcua"]["tags"][0].update(min=100))
    with pytest.raises(SiteConfigError, match=r"min \(100.0\) must be below max \(60.0\)"):
        load_site_config(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SiteConfigError, match="cannot read site config"):
        load_site_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("opcua: [unclosed")
    with pytest.raises(SiteConfigError, match="broken.yaml: not valid YAML"):
        load_site_config(broken)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda raw: raw["modbus"]["devices"][1]["points"][0].update(table="holding", address=202),
            "device gas_meter: point 'GasMeter.Total' overlaps point 'GasMeter.Flow' at holding address 202",
        ),
        (
            lambda raw: raw["modbus"]["devices"][1]["points"][0].update(address=65535),
            "float32 at address 65535 ends at 65536, past 65535",
        ),
        (lambda raw: raw["modbus"]["devices"][1]["points"][0].update(address=70000), "address' = 70000"),
        (lambda raw: raw["modbus"]["devices"][0]["points"][0].update(type="float16"), "type' = 'float16'"),
        (
            lambda raw: raw["modbus"]["devices"][2]["points"][2].update(table="holding"),
            "type 'bool' cannot live in table 'holding'",
        ),
        (
            lambda raw: raw["modbus"]["devices"][0]["points"][0].update(type="bool"),
            "type 'bool' cannot live in table 'input'",
        ),
        (lambda raw: raw["modbus"]["devices"][0]["points"][0].update(rollover=10), "rollover is only meaningful"),
        (lambda raw: raw["modbus"]["devices"].append(dict(raw["modbus"]["devices"][0])), "duplicate device name"),
    ],
)
def test_bad_register_map_names_device_and_point(tmp_path, mutate, expected):
    path = write_variant(tmp_path, mutate)
    with pytest.raises(SiteConfigError) as error:
        load_site_config(path)
    assert str(error.value).startswith(str(path))
    assert expected in str(error.value)


def test_register_map_of_the_demo_site():
    modbus = load_site_config().modbus
    points = {point.name: point for device in modbus.devices for point in device.points}
    assert points["GasMeter.Total"].register_count == 4 and points["GasMeter.Total"].totalizer
    assert points["SteamMeter.Total"].word_order == "little"  # CDAB, as many flow computers store counters
