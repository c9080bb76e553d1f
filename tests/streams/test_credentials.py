"""Settings -> the worker's Faust broker credentials, as aiokafka receives them."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from schemas.settings import Settings
from streams.app import create_app
from streams.credentials import broker_credentials


def auth(settings: Settings) -> dict:
    return credentials_to_aiokafka_auth(broker_credentials(settings))


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate and key (it serves as the CA bundle too)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate", pytrace=False)
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "client.key", folder / "client.crt"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        ["openssl", *request, "-subj", "/CN=t", "-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
    )
    return crt, key


def test_plaintext_needs_no_credentials():
    assert broker_credentials(Settings()) is None
    assert auth(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext_passes_user_password_and_mechanism():
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="app",
        kafka_sasl_password="s3cret",
    )
    got = auth(settings)
    assert got["security_protocol"] == "SASL_PLAINTEXT"
    assert got["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (got["sasl_plain_username"], got["sasl_plain_password"]) == ("app", "s3cret")
    assert got["ssl_context"] is None
    assert "s3cret" not in repr(broker_credentials(settings))


def test_sasl_ssl_verifies_the_broker_with_the_ca_file(cert):
    crt, _ = cert
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="app",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=crt,
    )
    got = auth(settings)
    assert (got["security_protocol"], got["sasl_mechanism"]) == ("SASL_SSL", "PLAIN")
    context: ssl.SSLContext = got["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    subjects = [rdn for c in context.get_ca_certs() for rdn in c["subject"]]
    assert (("commonName", "t"),) in subjects


def test_ssl_with_a_client_certificate(cert):
    crt, key = cert
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=crt,
        kafka_ssl_certfile=crt,
        kafka_ssl_keyfile=key,
    )
    got = auth(settings)
    assert got["security_protocol"] == "SSL"
    assert isinstance(got["ssl_context"], ssl.SSLContext)


def test_a_missing_key_file_is_a_clear_error(tmp_path, cert):
    crt, _ = cert
    settings = Settings(
        kafka_security_protocol="SSL", kafka_ssl_certfile=crt, kafka_ssl_keyfile=tmp_path / "no"
    )
    with pytest.raises(ValueError, match="PHASEGATE_KAFKA_SSL_KEYFILE: no file at"):
        broker_credentials(settings)


def test_the_worker_app_is_configured_with_them(tmp_path):
    settings = Settings(
        state_dir=tmp_path,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="app",
        kafka_sasl_password="s3cret",
    )
    app = create_app(settings)
    assert app.conf.broker_credentials.username == "app"
    assert app.conf.broker_credentials.password == "s3cret"
