"""A private certificate authority for ``exoflow cluster start --tls``.

``make(directory, hosts)`` writes a CA (``ca.pem``) and one certificate and key per role
(``scheduler``, ``worker``, ``client``), each signed by the CA, valid for ``hosts`` and usable
as a TLS server and client (Dask's TLS is mutual: each side shows a certificate the other's CA
signed). Keys are files of mode 0600; the CA's own key is not kept, so no further certificate
can be signed with it.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from typing import NamedTuple

ROLES = ("scheduler", "worker", "client")
VALID_DAYS = 3650


class Files(NamedTuple):
    """Paths of one role's PEM files: the CA certificate, its certificate and its key."""

    ca: str
    cert: str
    key: str


def _name(common: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "exoflow cluster"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _alt_names(hosts: list[str]):
    from cryptography import x509
    names: list = []
    for h in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make(directory: str, hosts: list[str]) -> dict[str, Files]:
    """Write a new CA and a certificate per role under ``directory`` (created, mode 0700).
    ``hosts``: names and IP addresses the certificates are valid for. Returns role -> Files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    os.makedirs(directory, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(_name("exoflow CA")).issuer_name(_name("exoflow CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_path = os.path.join(directory, "ca.pem")
    _write(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    files = {}
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(f"exoflow {role}")).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(_alt_names(hosts), critical=False)
                .sign(ca_key, hashes.SHA256()))
        f = Files(ca_path, os.path.join(directory, f"{role}.pem"), os.path.join(directory, f"{role}-key.pem"))
        _write(f.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(f.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), 0o600)
        files[role] = f
    return files
