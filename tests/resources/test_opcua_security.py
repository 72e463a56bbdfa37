"""OpcUaResource against a secured asyncua server: Basic256Sha256 Sign and SignAndEncrypt, a user and
password, a server that trusts only our client certificate; certificates are generated for the test."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gl_demo_plant.threaded import ThreadedServer
from gl_pipelines.resources.opcua import OpcUaError, OpcUaResource, TagRef
from tests.conftest import free_port

PASSWORD = "pw-Sekr1t-9f3b"  # must never appear in any message
START = datetime(2026, 11, 1, 9, tzinfo=UTC)
END = START + timedelta(hours=1)
TAG = TagRef("Secure.Flow", "ns=2;s=Secure.Flow", "t/h")
SAMPLES = [(START + timedelta(minutes=m), 40.0 + m) for m in (0, 15, 30, 45)] + [(END, 99.0)]


@dataclass(frozen=True)
class Pki:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # a second application: another server's certificate, an untrusted client's
    other_key: Path


def make_pki(folder: Path) -> Pki:
    def pair(name: str, uri: str, use) -> tuple[Path, Path]:
        cert, key = folder / f"{name}.der", folder / f"{name}.pem"
        subject = {"organizationName": "gl-pipelines tests"}
        asyncio.run(setup_self_signed_certificate(key, cert, uri, "127.0.0.1", use, subject))
        return cert, key

    server = pair("server", "urn:gl-pipelines:test:server", [ExtendedKeyUsageOID.SERVER_AUTH])
    client = pair("client", "urn:gl-pipelines:test:client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    other = pair(
        "other", "urn:gl-pipelines:test:client", [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    )
    return Pki(*server, *client, *other)


class _Users(UserManager):
    def get_user(self, iserver, username=None, password=None, certificate=None):
        return User(role=UserRole.User) if (username, password) == ("operator", PASSWORD) else None


class SecureServer:
    """asyncua's own server: Basic256Sha256 only, user operator, trusts only the client certificate."""

    def __init__(self, pki: Pki, port: int) -> None:
        self.pki, self.endpoint = pki, f"opc.tcp://127.0.0.1:{port}/secure"
        self.server = Server(user_manager=_Users())

    async def start(self) -> None:
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy(
            [ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        )
        await server.load_certificate(str(self.pki.server_cert))
        await server.load_private_key(str(self.pki.server_key))
        trusted = self.pki.client_cert.read_bytes()

        async def trust_only_our_client(cert, app_description) -> None:
            if cert.public_bytes(Encoding.DER) != trusted:
                raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

        server.set_certificate_validator(trust_only_our_client)
        idx = await server.register_namespace("urn:gl-pipelines:test")
        assert idx == 2
        folder = await server.nodes.objects.add_folder(idx, "Secure")
        variable = await folder.add_variable(ua.NodeId("Secure.Flow", idx), "Flow", 0.0)
        await server.historize_node_data_change(variable, period=None, count=100)
        await server.start()
        for when, value in SAMPLES:
            await variable.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=when))

    async def stop(self) -> None:
        await self.server.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(pki):
    with ThreadedServer(SecureServer(pki, free_port()), name="secure-opcua") as server:
        yield server


def client(secure, pki, **overrides) -> OpcUaResource:
    settings = {
        "endpoint": secure.endpoint,
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_path": str(pki.client_cert),
        "private_key_path": str(pki.client_key),
        "server_certificate_path": str(pki.server_cert),
        "username": "operator",
        "password": PASSWORD,
        "retry_attempts": 1,
        "connect_timeout_s": 10.0,
    }
    return OpcUaResource(**(settings | overrides))


def read_error(resource: OpcUaResource) -> str:
    with pytest.raises(OpcUaError) as caught:
        resource.read_raw_history([TAG], START, END)
    message = str(caught.value)
    assert PASSWORD not in message and PASSWORD not in repr(caught.value.__cause__)
    return message


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
def test_reads_history_over_basic256sha256_with_user_and_password(secure, pki, mode):
    history = client(secure, pki, security_mode=mode).read_raw_history([TAG], START, END)
    assert history.frame["value"].tolist() == [40.0, 55.0, 70.0, 85.0]
    assert history.frame["ts"].tolist() == [when for when, _ in SAMPLES[:4]]
    assert history.dropped_outside_window == {"Secure.Flow": 1}  # asyncua's history includes EndTime too


def test_wrong_password_is_named_without_the_password(secure, pki):
    message = read_error(client(secure, pki, password=PASSWORD + "x"))
    assert message == (
        f"{secure.endpoint}: the server rejected user 'operator' (BadUserAccessDenied); "
        "check the user name and password"
    )


def test_untrusted_client_certificate_is_named(secure, pki):
    message = read_error(client(secure, pki, certificate_path=str(pki.other_cert), private_key_path=str(pki.other_key)))
    assert message.startswith(f"{secure.endpoint}: ")
    assert str(pki.other_cert) in message and "BadCertificateUntrusted" in message


def test_server_certificate_not_matching_the_pinned_one_is_named(secure, pki):
    message = read_error(client(secure, pki, server_certificate_path=str(pki.other_cert)))
    assert message.startswith(f"{secure.endpoint}: the server's certificate (SHA-1 ")
    assert f"does not match server_certificate_path {pki.other_cert} (SHA-1 " in message


def test_missing_key_file_is_named_before_connecting(secure, pki, tmp_path):
    missing = tmp_path / "client-key.pem"
    message = read_error(client(secure, pki, private_key_path=str(missing)))
    assert message == (
        f"{secure.endpoint}: security_policy Basic256Sha256: private_key_path {missing} does not exist or is not a file"
    )


def test_no_security_is_refused_by_a_secured_server(secure, pki):
    resource = OpcUaResource(endpoint=secure.endpoint, retry_attempts=1, connect_timeout_s=10.0)
    with pytest.raises(OpcUaError) as caught:
        resource.read_raw_history([TAG], START, END)
    assert str(caught.value) == (
        f"{secure.endpoint}: cannot connect with security_policy None, security_mode None: "
        "No matching endpoints: 1, http://opcfoundation.org/UA/SecurityPolicy#None"
    )
