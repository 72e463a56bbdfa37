"""The shared scrubber: each kind of secret, planted in a message, comes out masked."""

import logging
import re
from pathlib import Path

from gl_pipelines.scrub import SECRET_ENV_VARS, ScrubFilter, excerpt, register_secret, scrub


def test_known_secret_from_the_environment_in_every_spelling(monkeypatch):
    monkeypatch.setenv("GL_HISTORIAN_PASSWORD", "pa ss/w0rd!")
    assert scrub("a pa ss/w0rd! b pa%20ss%2Fw0rd%21 c") == "a *** b *** c"


def test_webhook_url_from_the_environment_masks_its_path_and_query(monkeypatch):
    monkeypatch.setenv("GL_ALERT_WEBHOOK_URL", "https://alerts.internal/hooks/team7/Zk9secretPart?sig=qq11")
    assert scrub("POST /hooks/team7/Zk9secretPart failed") == "POST /hooks/*** failed"


def test_patterns_without_knowing_the_secret():
    cases = {
        "GET https://bob:hunter22@pi.example/x": "GET https://***@pi.example/x",
        "url=https://tok3n@h/x?sig=abcd&page=2": "url=https://***@h/x?sig=***&page=2",
        "see https://hooks.slack.com/services/T01/B02/xyzSECRET now": "see https://hooks.slack.com/services/*** now",
        "https://acme.webhook.office.com/webhookb2/a-1@b/IncomingWebhook/c/d": "https://acme.webhook.office.com/webhookb2/***",
        "https://discord.com/api/webhooks/123/abcTOKEN": "https://discord.com/api/webhooks/***",
        "header Authorization: Bearer abc.def-123, next": "header Authorization: ***, next",
        "you sent bearer eyJhbGciOi.x.y": "you sent bearer ***",
        "{'authorization': 'Basic dXNlcjpwYXNz'}": "{'authorization': '***'}",
        "nothing secret here: ns=2;s=Boiler1.SteamFlow": "nothing secret here: ns=2;s=Boiler1.SteamFlow",
    }
    assert [scrub(text) for text in cases] == list(cases.values())


def test_registered_secret_and_extra_values():
    register_secret("runtime-access-token-77")
    assert scrub("token runtime-access-token-77 used") == "token *** used"
    assert scrub("x sEcReT42 y", ["sEcReT42", None, "ab"]) == "x *** y"
    assert scrub("ab stays") == "ab stays"  # too short to mask safely


def test_excerpt_is_short_printable_and_scrubbed():
    assert excerpt("a\nb'c") == "'a\\nb\\'c'"
    assert excerpt("x" * 100, limit=5) == "'xxxxx'…"
    assert excerpt(b"caf\xc3\xa9 \xff") == "'café \\\\xff'"
    assert excerpt("https://u:p4ss@h/") == "'https://***@h/'"


def test_filter_scrubs_log_records(caplog, monkeypatch):
    monkeypatch.setenv("GL_ERP_CLIENT_SECRET", "erp-Cl1ent-s3cret")
    logger = logging.getLogger("gl_pipelines.test_scrub")
    logger.addFilter(ScrubFilter())
    with caplog.at_level(logging.INFO):
        logger.info("token refused for %s", "erp-Cl1ent-s3cret")
    assert caplog.messages == ["token refused for ***"]


def test_every_secret_env_var_of_the_definitions_is_known():
    components = Path(__file__).parents[1] / "gl_pipelines" / "components"
    source = "".join((components / name).read_text() for name in ("site_file.py", "shared.py"))
    names = set(re.findall(r'secret_if_set\("(GL_\w+)"\)', source))
    secret_like = {n for n in names if re.search(r"PASSWORD|TOKEN|SECRET|URL", n)}
    assert secret_like and secret_like <= set(SECRET_ENV_VARS)
