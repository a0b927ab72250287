"""The HTTP clients' TLS: the CA bundle only where TLS can happen, and never unverified TLS.

A plain-HTTP ``API_BASE_URL`` (the sandbox) gets a client that skips loading the CA bundle;
every other URL gets the verifying client.  These tests talk to real servers on loopback: the
sandbox over plain HTTP, and a TLS server with a self-signed certificate made here.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinterest_capi import client
from tests.conftest import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN


@pytest.fixture
def no_ca_loaded_yet(monkeypatch) -> dict:
    """This process as if it had not loaded the CA bundle yet (it is loaded once per process)."""
    contexts: dict = {}
    monkeypatch.setattr(client, "_ssl_contexts", contexts)
    client.close_clients()
    yield contexts
    client.close_clients()


def test_a_plain_http_api_base_url_sends_without_loading_the_ca_bundle(
    capi_settings, no_ca_loaded_yet
):
    result = client.get_conversion_tags(SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN)
    assert result.status_code == 200, result
    assert no_ca_loaded_yet == {}
    assert list(client._clients)[0][2] == "http"


def test_an_https_url_gets_the_verifying_client_with_the_ca_bundle(no_ca_loaded_yet):
    secure = client.get_client("https://api.pinterest.com/v5")
    plain = client.get_client("http://127.0.0.1:9/v5")
    assert secure is not plain
    assert list(no_ca_loaded_yet.values())[0].cert_store_stats()["x509_ca"] > 100
    # The scheme decides, not its spelling; anything but plain HTTP is treated as TLS.
    assert client.get_client("HTTPS://api.pinterest.com/v5") is secure
    assert client.get_client("HTTP://127.0.0.1:9/v5") is plain


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no CA bundle trusts; its base URL."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    handled: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            handled.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    assert handled == []  # no request ever got through an unverified connection


def test_the_plain_http_client_refuses_tls_it_cannot_verify(no_ca_loaded_yet, tls_server):
    """Were the plain-HTTP client ever handed an https URL, it would fail, not go unverified."""
    plain = client.get_client("http://127.0.0.1:9/v5")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        plain.get(f"{tls_server}/v5/ad_accounts")
    # And an https API_BASE_URL goes through the verifying client, which refuses it too.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get_client(tls_server).get(f"{tls_server}/v5/ad_accounts")
