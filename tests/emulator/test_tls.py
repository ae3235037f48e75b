"""HTTPS with the emulator's own CA: trusted when the client is given ca.pem, refused otherwise."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from _org_support import make_org
from cryptography import x509

from sfsync.emulator.server import serve_in_background
from sfsync.emulator.tls import ensure_certificates


def test_certificates_are_created_once_and_reused(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    cert = x509.load_pem_x509_certificate(first.certfile.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    again = ensure_certificates(tmp_path)
    assert again.certfile.read_bytes() == first.certfile.read_bytes()
    # A new host renews the server certificate but keeps the CA users already trust.
    ca_before = first.ca_cert.read_bytes()
    extended = ensure_certificates(tmp_path, ["emulator.test"])
    assert extended.ca_cert.read_bytes() == ca_before
    renewed = x509.load_pem_x509_certificate(extended.certfile.read_bytes())
    names = renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "emulator.test" in names.get_values_for_type(x509.DNSName)


def test_https_with_the_ca_trusted(tmp_path: Path) -> None:
    org = make_org(tmp_path / "state", access_token="tls-token")
    try:
        with serve_in_background(org, tls=True, tls_dir=tmp_path / "tls") as server:
            assert server.url.startswith("https://127.0.0.1:")
            assert server.ca_cert is not None
            context = ssl.create_default_context(cafile=str(server.ca_cert))
            response = httpx.get(
                f"{server.url}/services/data/v59.0/limits/",
                headers={"Authorization": "Bearer tls-token"},
                verify=context,
            )
            assert response.status_code == 200
            assert response.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{server.url}/services/data/", verify=True)
    finally:
        org.close()


def test_advertised_host_is_in_the_generated_certificate(tmp_path: Path) -> None:
    org = make_org(tmp_path / "state", advertise_url="https://emulator.test:8443")
    try:
        with serve_in_background(org, tls=True, tls_dir=tmp_path / "tls"):
            cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "emulator.test" in san.get_values_for_type(x509.DNSName)
    finally:
        org.close()
