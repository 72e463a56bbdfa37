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
