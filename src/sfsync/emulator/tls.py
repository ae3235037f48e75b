"""Certificates for serving the emulator over HTTPS.

Clients written for Salesforce assume ``https://`` (simple-salesforce builds every URL with
it), so the emulator can terminate TLS with a certificate of its own: :func:`ensure_certificates`
creates a local certificate authority and a server certificate signed by it for
``localhost``/``127.0.0.1``/``::1`` (plus any extra host names), and writes them to a
directory. Point a client at ``ca.pem`` (``requests``: ``verify=...``; httpx:
``verify=ssl.create_default_context(cafile=...)``) and verification passes as against a real
org. Files already in the directory are reused while they still cover the requested hosts and
are not about to expire, so a client's trust survives restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_VALID_DAYS = 825  # the longest server-certificate lifetime common clients still accept
_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the CA certificate, the server certificate (chain) and its private key."""

    ca_cert: Path
    certfile: Path
    keyfile: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sfsync emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _still_good(files: TlsFiles, hosts: tuple[str, ...]) -> bool:
    if not all(p.exists() for p in (files.ca_cert, files.certfile, files.keyfile)):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if cert.not_valid_after_utc - _RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    return set(_san(hosts)) <= set(san)


def ensure_certificates(directory: str | Path, hosts: Iterable[str] = ()) -> TlsFiles:
    """Create (or reuse) ``ca.pem``, ``server.pem`` and ``server-key.pem`` in ``directory``.

    The server certificate covers :data:`DEFAULT_HOSTS` plus ``hosts``. The CA is created once
    and kept; only the server certificate is renewed when hosts change or it nears expiry.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = tuple(dict.fromkeys((*DEFAULT_HOSTS, *hosts)))
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if _still_good(files, wanted):
        return files
    now = dt.datetime.now(dt.UTC)
    ca_key_path = folder / "ca-key.pem"
    if files.ca_cert.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not an EC private key")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("sfsync emulator local CA"))
            .issuer_name(_name("sfsync emulator local CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_path, ca_key)
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(wanted[0]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(wanted)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.keyfile, server_key)
    files.certfile.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    return files
