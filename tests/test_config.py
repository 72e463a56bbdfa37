from pathlib import Path

import pytest
import yaml

from gl_pipelines.config import DEMO_SITE_CONFIG, SiteConfigError, load_site_config
from gl_pipelines.resources.alerting import AlertWebhookResource
from gl_pipelines.resources.historian import HistorianResource
from gl_pipelines.resources.opcua import OpcUaResource


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
        (
            lambda raw: raw["opcua"]["tags"][0].update(units="bar"),
            "field 'opcua.tags.0.units' (value not shown): Extra inputs are not permitted (in tag 'Boiler1.SteamFlow')",
        ),
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


# --- implausible and hostile input (issue 18): each message is short and names file, field and reason ---


def load_error(path: Path) -> str:
    with pytest.raises(SiteConfigError) as error:
        load_site_config(path)
    return str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sample_interval_s: .inf",
            "field 'opcua.sample_interval_s' = inf: Input should be a finite number",
        ),
        (
            "sample_interval_s: .nan",
            "field 'opcua.sample_interval_s' = nan: Input should be a finite number",
        ),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path, text, expected):
    """Before: `.inf` passed `gt=0` and silently turned the completeness check off."""
    path = tmp_path / "site.yaml"
    path.write_text(DEMO_SITE_CONFIG.read_text().replace("sample_interval_s: 10", text, 1))
    assert load_error(path) == f"{path}: invalid site config: {expected}"


def test_non_finite_numbers_are_refused_in_every_section_and_resource(tmp_path):
    path = write_variant(tmp_path, lambda raw: raw["opcua"]["tags"][2].update(max=float("inf")))
    assert "field 'opcua.tags.2.max' = inf: Input should be a finite number (in tag " in load_error(path)
    path = write_variant(tmp_path, lambda raw: raw["historian"].update(window_hours=float("nan")))
    assert "field 'historian.window_hours' = nan: Input should be a finite number" in load_error(path)
    for build in (
        lambda: OpcUaResource(endpoint="opc.tcp://h:4840", request_timeout_s=float("inf")),
        lambda: HistorianResource(base_url="http://h/piwebapi", data_server="D", read_timeout_s=float("inf")),
        lambda: AlertWebhookResource(timeout_s=float("nan")),
    ):
        with pytest.raises(ValueError, match="Input should be a finite number"):
            build()


@pytest.mark.parametrize(
    ("node_id", "reason"),
    [
        ("ns=70000;s=Boiler1.SteamFlow", "namespace index 70000 is out of range 0-65535"),
        ("ns=-1;i=5", "namespace index -1 is out of range 0-65535"),
        ("ns=2;i=4294967296", "numeric identifier 4294967296 is out of range 0-4294967295"),
        ("ns=2;s=" + "x" * 5000, "identifier is 5000 characters long, more than 4096"),
    ],
)
def test_out_of_range_node_ids_fail_at_validation(tmp_path, node_id, reason):
    """Before: they passed and the run failed later with a bare struct.error."""
    path = write_variant(tmp_path, lambda raw: raw["opcua"]["tags"][0].update(node_id=node_id))
    message = load_error(path)
    assert f"field 'opcua.tags.0.node_id' = '{node_id[:60]}'" in message
    assert f"Value error, {reason} (in tag 'Boiler1.SteamFlow')" in message
    assert len(message) < len(str(path)) + 250


def test_yaml_alias_bomb_is_refused_with_a_short_message(tmp_path):
    """Before: 10.8 s and a 480-million-character message for these 400 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    lines.append("opcua: *i")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 450
    assert load_error(path) == (
        f"{path}: refused: aliases expand it past 1,000,000 nodes (an alias bomb?); write the values out"
    )


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("opcua: &x\n  tags: [*x]\n")
    assert load_error(path) == f"{path}: refused: an alias refers to a node that contains it (recursive alias)"


def test_modest_aliases_still_work(tmp_path):
    text = "defaults: &d {unit: bar}\n" + DEMO_SITE_CONFIG.read_text()
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteConfigError, match="field 'defaults' \\(value not shown\\): Extra inputs"):
        load_site_config(path)  # parsed fine; only the unknown top-level key is refused


def test_non_utf8_file_names_the_file_and_byte(tmp_path):
    """Before: a bare UnicodeDecodeError without the file name."""
    text = DEMO_SITE_CONFIG.read_text()
    data = text.encode().replace(b"name: ", b"name: Centrale \xe9lectrique ", 1)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    line = data[:offset].count(b"\n") + 1
    assert load_error(path) == (
        f"{path}: not UTF-8 text: byte {offset} (line {line}) is b'\\xe9'; save the file as UTF-8"
    )


def test_duplicate_tag_among_a_thousand_gives_a_short_message(tmp_path):
    """Before: the whole `opcua` section was quoted, 108,015 characters for 1,006 tags."""

    def many(raw):
        tag = raw["opcua"]["tags"][0]
        raw["opcua"]["tags"] = [dict(tag, name=f"T{i:04d}", node_id=f"ns=2;s=T{i:04d}") for i in range(1005)]
        raw["opcua"]["tags"].append(dict(tag, name="T0500", node_id="ns=2;s=Other"))

    path = write_variant(tmp_path, many)
    assert load_error(path) == f"{path}: invalid site config: field 'opcua': Value error, duplicate tag name 'T0500'"


def test_many_problems_are_capped(tmp_path):
    def broken(raw):
        for tag in raw["opcua"]["tags"]:
            tag["min"] = "low"

    path = write_variant(tmp_path, broken)
    message = load_error(path)
    assert message.count("Input should be a valid number") == 5
    assert message.endswith(
        f"; and {len(yaml.safe_load(DEMO_SITE_CONFIG.read_text())['opcua']['tags']) - 5} more problem(s)"
    )


def test_malformed_unit_names_tag_unit_and_pint(tmp_path):
    """Before: "Assertion failed, " and nothing else."""
    path = write_variant(tmp_path, lambda raw: raw["opcua"]["tags"][0].update(unit="m**"))
    assert load_error(path) == (
        f"{path}: invalid site config: field 'opcua.tags.0.unit' = 'm**': Value error, unit 'm**': pint cannot parse "
        "it (malformed expression) (in tag 'Boiler1.SteamFlow')"
    )


SECRET = "Hunter2-Pl4nt-Secret"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda raw: raw["historian"].update(password=SECRET),
            "field 'historian.password' (value not shown): Extra inputs are not permitted",
        ),
        (
            lambda raw: raw["historian"].update(client_secret=SECRET),
            "field 'historian.client_secret' (value not shown): Extra inputs are not permitted",
        ),
        (
            lambda raw: raw["historian"].update(base_url=f"http://pi-reader:{SECRET}@127.0.0.1:5450/piwebapi"),
            "field 'historian.base_url' = 'http://***@127.0.0.1:5450/piwebapi': Value error, credentials must not be "
            "written into the URL (user:password@); set them in the environment",
        ),
        (
            lambda raw: raw["opcua"].update(endpoint=f"opc.tcp://op:{SECRET}@127.0.0.1:4840"),
            "field 'opcua.endpoint' = 'opc.tcp://***@127.0.0.1:4840': Value error, credentials must not",
        ),
    ],
)
def test_a_secret_put_in_the_yaml_is_never_echoed(tmp_path, mutate, expected):
    """Before: `field 'historian.password' = 'Hunter2-…': Extra inputs are not permitted`."""
    path = write_variant(tmp_path, mutate)
    message = load_error(path)
    assert expected in message
    assert SECRET not in message


def test_yaml_syntax_error_does_not_quote_the_line(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(f'historian:\n  password: "{SECRET}\n  other: [\n')
    message = load_error(path)
    assert SECRET not in message
    assert message.startswith(f"{path}: not valid YAML: line ")
    assert len(message) < len(str(path)) + 200
