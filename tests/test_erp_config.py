"""The `erp:` section of the site config: mistakes fail at load, naming the field."""

import pytest
import yaml

from gl_pipelines.config import DEMO_SITE_CONFIG, SiteConfigError, parse_site_config


def demo_raw() -> dict:
    return yaml.safe_load(DEMO_SITE_CONFIG.read_text())


def test_demo_site_has_an_erp_on_loopback():
    site = parse_site_config(demo_raw(), "demo")
    assert site.erp.service_url.startswith("http://127.0.0.1:")
    assert site.erp.units["M3"] == "m**3" and site.erp.fuel_receipts.entity_set == "GoodsReceiptSet"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda erp: erp["fuel_receipts"]["fields"].pop("quantity"), "fuel_receipts.fields must map quantity"),
        (lambda erp: erp["units"].update(M3="not_a_unit"), "erp.units.M3"),
        (lambda erp: erp.pop("token_url"), "auth 'oauth2' needs token_url"),
        (lambda erp: erp.update(service_url="ftp://erp"), "field 'erp.service_url' = 'ftp://erp'"),
    ],
)
def test_bad_erp_section_is_refused_at_load(change, message):
    raw = demo_raw()
    change(raw["erp"])
    with pytest.raises(SiteConfigError, match="invalid site config") as error:
        parse_site_config(raw, "site.yaml")
    assert message in str(error.value)
