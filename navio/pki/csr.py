"""Certificate signing requests: making them (the agent), reading and signing them (the
controller manager's signer).

Why: a joining node proves nothing but a bootstrap token; it sends a PKCS#10 request for the
identity `CN=system:node:NAME, O=system:nodes`, and the cluster CA signs it once approved, as
kube's csrsigning controller does (pkg/controller/certificates/signer). The checks a kubelet
client request must pass are kube's `IsKubeletClientCSR` (certificates/v1 helpers).

Guarantees: `sign` copies only the subject and public key from the request (never its
extensions), sets the usages the CSR object asked for, backdates by 5 minutes like kube, and
never outlives the CA. Keys are ECDSA P-256 and written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ParsedRequest", "new_key", "key_pem", "make_request", "parse_request",
           "kubelet_client_problem", "kubelet_serving_problem", "sign", "KUBELET_CLIENT_SIGNER", "KUBE_APISERVER_CLIENT",
           "KUBELET_SERVING", "SIGNERS"]

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
SIGNERS = (KUBELET_CLIENT_SIGNER, KUBE_APISERVER_CLIENT, KUBELET_SERVING)
_BACKDATE = dt.timedelta(minutes=5)

_EXT_USAGES = {"client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
               "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
               "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
               "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
               "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
               "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING}


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    request: x509.CertificateSigningRequest
    common_name: str
    organizations: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    other_sans: int


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def make_request(key: ec.EllipticCurvePrivateKey, cn: str, orgs: tuple[str, ...] = ()
                 ) -> bytes:
    """A PEM PKCS#10 request for `CN=cn, O=orgs`."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(
        key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def parse_request(pem: bytes) -> ParsedRequest:
    """The request in `pem`; ValueError if it does not parse or its signature is bad."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST") from None
    if not csr.is_signature_valid:
        raise ValueError("the request's signature is invalid")
    subject = csr.subject
    cns = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME))
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    other = 0
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
        other = len(san) - len(dns) - len(ips)
    except x509.ExtensionNotFound:
        pass
    return ParsedRequest(csr, cns[0] if cns else "", orgs, dns, ips, other)


def kubelet_client_problem(req: ParsedRequest, usages: list[str]) -> str | None:
    """Why `req` is not a kubelet client certificate request (IsKubeletClientCSR), or None."""
    if req.organizations != ("system:nodes",):
        return 'subject organization is not system:nodes'
    if req.dns_names or req.ip_addresses or req.other_sans:
        return "DNS, email, IP or URI subjectAltNames are not allowed"
    if not req.common_name.startswith("system:node:") or \
            len(req.common_name) == len("system:node:"):
        return 'subject common name does not begin with "system:node:"'
    allowed = {"digital signature", "client auth", "key encipherment"}
    if not {"digital signature", "client auth"} <= set(usages) or not set(usages) <= allowed:
        return "usages did not match [digital signature client auth] or " \
               "[digital signature key encipherment client auth]"
    return None


def kubelet_serving_problem(req: ParsedRequest, usages: list[str]) -> str | None:
    """Why `req` is not a kubelet serving certificate request (kube's
    IsKubeletServingCSR: node identity, DNS/IP SANs only, server usages), or None."""
    if req.organizations != ("system:nodes",):
        return "subject organization is not system:nodes"
    if not req.common_name.startswith("system:node:") or \
            len(req.common_name) == len("system:node:"):
        return 'subject common name does not begin with "system:node:"'
    if req.other_sans:
        return "email and URI subjectAltNames are not allowed"
    if not req.dns_names and not req.ip_addresses:
        return "DNS or IP subjectAltNames are required"
    allowed = {"digital signature", "key encipherment", "server auth"}
    if "server auth" not in usages or not set(usages) <= allowed:
        return "usages did not match [digital signature key encipherment server auth]"
    return None


def sign(req: ParsedRequest, usages: list[str], *, ca_cert: x509.Certificate,
         ca_key: ec.EllipticCurvePrivateKey, duration: float,
         now: dt.datetime | None = None) -> bytes:
    """A PEM certificate for `req`, valid `duration` seconds (capped at the CA's expiry)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    not_after = min(now + dt.timedelta(seconds=duration), ca_cert.not_valid_after_utc)
    key_usage = set(usages)
    builder = (x509.CertificateBuilder()
               .subject_name(req.request.subject)
               .issuer_name(ca_cert.subject)
               .public_key(req.request.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - _BACKDATE)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), False))
    bits = {"digital_signature": bool(key_usage & {"digital signature", "signing"}),
            "content_commitment": "content commitment" in key_usage,
            "key_encipherment": "key encipherment" in key_usage,
            "data_encipherment": "data encipherment" in key_usage,
            "key_agreement": "key agreement" in key_usage}
    if any(bits.values()):
        # (Go's x509 omits an all-zero KeyUsage; so does this)
        builder = builder.add_extension(x509.KeyUsage(
            **bits, key_cert_sign=False, crl_sign=False, encipher_only=False,
            decipher_only=False), True)
    ext = [_EXT_USAGES[u] for u in usages if u in _EXT_USAGES]
    if ext:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ext), False)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in req.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in req.ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)
