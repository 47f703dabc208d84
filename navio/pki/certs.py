"""The cluster CA and the certificates signed by it.

`navio server` creates, on first start, a CA, a serving certificate for the API server and
client certificates for the admin and for each control-plane component, and reuses them on
later starts. Keys are ECDSA P-256; every key file is written 0600 and never logged. Identity
follows Kubernetes: the subject CN is the user name, each O a group.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPair", "CertificateAuthority", "ISSUED_LOG", "record_issued", "write_private",
           "load_or_create_ca"]

_CA_DAYS = 3650
_LEAF_DAYS = 365


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def subject_alt_names(names: tuple[str, ...] | list[str]) -> x509.SubjectAlternativeName:
    """IP addresses as IP SANs, everything else as DNS names; duplicates dropped."""
    sans: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(sans)


ISSUED_LOG = "issued.jsonl"


def record_issued(ca_dir: Path, cert: x509.Certificate) -> None:
    """Append the certificate's serial, subject and expiry to the CA's issuance record
    (`<ca dir>/issued.jsonl`), so `navio cert revoke --user` finds every certificate a user
    was ever given, including ones whose files were since replaced."""
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    line = json.dumps({"serial": format(cert.serial_number, "X"), "cn": cn[0] if cn else "",
                       "groups": orgs, "notAfter": cert.not_valid_after_utc.isoformat()})
    ca_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(ca_dir / ISSUED_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path

    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class CertificateAuthority:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                 pair: CertPair) -> None:
        self.cert = cert
        self.key = key
        self.pair = pair

    def issue(self, directory: Path, stem: str, *, cn: str, orgs: tuple[str, ...] = (),
              server_names: tuple[str, ...] = (), client: bool = True,
              days: int = _LEAF_DAYS) -> CertPair:
        """Sign a new leaf certificate and write `<stem>.crt` / `<stem>.key` (0600)."""
        key = _new_key()
        now = dt.datetime.now(dt.timezone.utc)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn, orgs))
                   .issuer_name(self.cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                                False, False), True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), False))
        if server_names:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(subject_alt_names(server_names), False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), False)
        cert = builder.sign(self.key, hashes.SHA256())
        pair = CertPair(directory / f"{stem}.crt", directory / f"{stem}.key")
        write_private(pair.key, _key_pem(key))
        write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
        record_issued(self.pair.cert.parent, cert)
        return pair


def load_or_create_ca(directory: Path, common_name: str = "navio-ca") -> CertificateAuthority:
    """The CA in `directory` (ca.crt, ca.key), created if absent."""
    pair = CertPair(directory / "ca.crt", directory / "ca.key")
    if pair.cert.exists() and pair.key.exists():
        cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        key = serialization.load_pem_private_key(pair.key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return CertificateAuthority(cert, key, pair)
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(common_name)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
    write_private(pair.key, _key_pem(key))
    write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert, key, pair)
