"""The local org's certificate authority and server certificate.

Generated once per process with ``cryptography`` (ECDSA P-256, so it costs a few
milliseconds) and reused by every ``LocalOrg``: the server certificate has the SANs
``IP:127.0.0.1`` and ``DNS:localhost``. Each org writes the CA's PEM into its own temporary
directory (``LocalOrg.ca_file``), removed on ``stop()``.

Also here: one process-wide RSA-2048 key pair + self-signed certificate for Connected Apps
(``app_key_pair()``), since RSA key generation is the slow part of a test suite.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from typing import Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Authority", "authority", "server_ssl_context", "app_key_pair", "new_app_key_pair",
           "write_ca_file"]


@dataclass(frozen=True)
class Authority:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes


class _ProcessMaterial:
    """What every org of this process shares, made once on first use, under one lock: the CA
    with its server certificate, the server's SSLContext, the default app key pair."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.authority: Optional[Authority] = None
        self.context: Optional[ssl.SSLContext] = None
        self.app_pair: Optional[Tuple[rsa.RSAPrivateKey, x509.Certificate]] = None


_MATERIAL = _ProcessMaterial()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _make_authority() -> Authority:
    now = _now()
    start = now - datetime.timedelta(days=1)
    end = now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sfjwt-ext local org"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "sfjwt-ext local org CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Authority(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=server_key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()),
    )


def authority() -> Authority:
    """The process-wide CA and server certificate (made on first use)."""
    with _MATERIAL.lock:
        if _MATERIAL.authority is None:
            _MATERIAL.authority = _make_authority()
        return _MATERIAL.authority


def server_ssl_context() -> ssl.SSLContext:
    """A server-side ``SSLContext`` with the server certificate loaded (made once per process)."""
    auth = authority()
    with _MATERIAL.lock:
        if _MATERIAL.context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            folder = tempfile.mkdtemp(prefix="sfjwt-tls-")
            try:
                cert = os.path.join(folder, "server.crt")
                key = os.path.join(folder, "server.key")
                with open(cert, "wb") as fh:
                    fh.write(auth.server_cert_pem + auth.ca_pem)
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(auth.server_key_pem)
                ctx.load_cert_chain(cert, key)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            _MATERIAL.context = ctx
        return _MATERIAL.context


def write_ca_file(folder: str) -> str:
    """Write the CA certificate as ``ca.pem`` into ``folder``; returns its path."""
    path = os.path.join(folder, "ca.pem")
    with open(path, "wb") as fh:
        fh.write(authority().ca_pem)
    return path


def new_app_key_pair(common_name: str = "sfjwt local app") -> Tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA-2048 key and self-signed SHA-256 certificate (slow: ~50-200 ms)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def app_key_pair() -> Tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The process-wide RSA key pair used for Connected Apps unless a fresh one is asked for."""
    with _MATERIAL.lock:
        if _MATERIAL.app_pair is None:
            _MATERIAL.app_pair = new_app_key_pair()
        return _MATERIAL.app_pair
