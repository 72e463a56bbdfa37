"""Security against node-opcua: Basic256Sha256 Sign and SignAndEncrypt with a user and password, the
server's certificate pinned; a wrong password and a wrong pinned certificate are named."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client

from gl_pipelines.resources.opcua import OpcUaError, OpcUaResource, TagRef
from tests.interop.conftest import PASSWORD
from tests.resources.test_opcua_security import make_pki

START = datetime(2026, 11, 1, 9, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture(scope="module")
def certs(tmp_path_factory, node_server):
    """Our client certificate (generated now) and node-opcua's own, as GetEndpoints serves it."""
    folder = tmp_path_factory.mktemp("node-pki")
    pki = make_pki(folder)

    async def served() -> bytes:
        endpoints = await Client(node_server.endpoint).connect_and_get_server_endpoints()
        return next(bytes(e.ServerCertificate) for e in endpoints if e.ServerCertificate)

    server_cert = folder / "node-opcua-server.der"
    server_cert.write_bytes(asyncio.run(served()))
    return pki, server_cert


def secured(node_server, certs, **overrides) -> OpcUaResource:
    pki, server_cert = certs
    settings = {
        "endpoint": node_server.endpoint,
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_path": str(pki.client_cert),
        "private_key_path": str(pki.client_key),
        "server_certificate_path": str(server_cert),
        "username": "operator",
        "password": PASSWORD,
        "retry_attempts": 1,
        "connect_timeout_s": 20.0,
    }
    return OpcUaResource(**(settings | overrides))


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
def test_reads_the_same_rows_over_basic256sha256_with_a_user(node_server, certs, mode):
    tag = next(t for t in node_server.tags if t.name == "Interop.Flow")
    history = secured(node_server, certs, security_mode=mode).read_raw_history(
        [TagRef(tag.name, tag.node_id, tag.unit)], START, END
    )
    expected = node_server.expected([tag.name], START, END)
    assert len(history.frame) == len(expected) == 360
    assert (history.frame["ts"].to_numpy() == expected["ts"].to_numpy()).all()
    assert history.frame["value"].fillna(-1).tolist() == expected["value"].fillna(-1).tolist()
    assert history.dropped_outside_window == {"Interop.Flow": 1}


def test_wrong_password_is_named_without_the_password(node_server, certs):
    with pytest.raises(OpcUaError) as caught:
        secured(node_server, certs, password="not-" + PASSWORD).read_raw_history(
            [TagRef("Interop.Flow", "ns=1;s=Interop.Flow", "t/h")], START, END
        )
    message = str(caught.value)
    assert message.startswith(f"{node_server.endpoint}: the server rejected user 'operator' (Bad")
    assert message.endswith("); check the user name and password")
    assert PASSWORD not in message


def test_pinned_certificate_of_another_server_is_named(node_server, certs):
    pki, _ = certs
    with pytest.raises(OpcUaError) as caught:
        secured(node_server, certs, server_certificate_path=str(pki.server_cert)).read_raw_history(
            [TagRef("Interop.Flow", "ns=1;s=Interop.Flow", "t/h")], START, END
        )
    assert f"does not match server_certificate_path {pki.server_cert}" in str(caught.value)
