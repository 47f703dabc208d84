"""TLS bootstrap and client-certificate rotation: how a node gets and keeps its identity.

Why: a joining node holds only a bootstrap token (a file) and the cluster CA (public). As the
kubelet does (pkg/kubelet/certificate/bootstrap and the certificate manager), it presents the
token once to submit a CertificateSigningRequest for `CN=system:node:NAME, O=system:nodes`
(signer `kubernetes.io/kube-apiserver-client-kubelet`, usages digital signature + client auth),
waits until the controller manager approves and signs it, writes its key and certificate
(`<root>/pki/kubelet-client-current.pem`, 0600) and a kubeconfig pointing at them
(`<root>/kubelet.kubeconfig`, 0600), and from then on authenticates with that certificate.
A still-valid certificate found at start is reused: the token is not needed again.

Rotation: at a random point between 70% and 90% of the certificate's lifetime (kubelet's
jitter), a new key and CSR are sent with the node's current identity (the approver's
`selfnodeclient` case); the new pair replaces the file atomically and the running client
switches to it for new connections.

Neither the token nor a key is logged; a refused (Denied/Failed) request is an error naming
the CSR and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import random
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from navio.api import errors
from navio.pki.certs import subject_alt_names, write_private as _write_0600
from navio.client import Client, ClientConfig, KubeconfigError, ResourceRef, TransportError
from navio.client.kubeconfig import SERVERS_EXTENSION, split_servers

__all__ = ["CSRS", "BootstrapError", "ca_cert_hash", "bootstrap_client_certificate", "CertificateRotator", "rotation_deadline",
           "request_certificate", "pem_file_for", "serving_certificate"]

log = logging.getLogger(__name__)

CSRS = ResourceRef("certificates.k8s.io", "v1", "certificatesigningrequests", False,
                   "CertificateSigningRequest")
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
_PEM_NAME = "kubelet-client-current.pem"
_SERVING_PEM_NAME = "kubelet-server-current.pem"
_KUBECONFIG_NAME = "kubelet.kubeconfig"


def write_private(path: Path, data: bytes) -> None:
    """Write `data` readable by the owner only (0600), replacing `path` atomically; a `pki`
    directory holding it is made 0700 (the agent's root dir keeps its mode: pods' volumes
    live under it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == "pki":
        os.chmod(path.parent, 0o700)
    _write_0600(path, data)


def _new_request(node_name: str, names: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(CSR PEM, key PEM) for `CN=system:node:<node>, O=system:nodes` (with `names` as
    subjectAltNames), ECDSA P-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        builder = builder.add_extension(subject_alt_names(names), False)
    csr = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def _paths(root_dir: Path) -> tuple[Path, Path]:
    return root_dir / "pki" / _PEM_NAME, root_dir / _KUBECONFIG_NAME


def _certificate(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _still_valid(pem_file: Path, margin: float = 60.0) -> bool:
    try:
        cert = _certificate(pem_file.read_bytes())
    except OSError:
        return False
    now = dt.datetime.now(dt.timezone.utc)
    return cert is not None and cert.not_valid_after_utc > now + dt.timedelta(seconds=margin)


def write_kubeconfig(path: Path, *, server: str, ca_pem: bytes, pem_file: Path,
                     user: str) -> None:
    """`server` may list several API servers (`--server A,B`): the first is the cluster's
    `server`, all go in the `navio.dev/servers` extension the client fails over with."""
    servers = split_servers(server)
    cluster: dict[str, object] = {
        "server": servers[0], "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    if len(servers) > 1:
        cluster["extensions"] = [{"name": SERVERS_EXTENSION,
                                  "extension": {"servers": list(servers)}}]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "users": [{"name": "default-auth", "user": {
            "client-certificate": str(pem_file), "client-key": str(pem_file)}}],
        "contexts": [{"name": "default-context", "context": {
            "cluster": "default-cluster", "user": "default-auth"}}],
        "current-context": "default-context",
        "preferences": {},
    }
    write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    log.debug("kubeconfig written", extra={"user": user, "path": str(path)})


async def request_certificate(client: Client, node_name: str, *, timeout: float = 300.0,
                              poll: float = 0.5, serving_names: tuple[str, ...] = ()
                              ) -> tuple[bytes, bytes]:
    """Submit a kubelet client CSR for `node_name` (a serving one for `serving_names` if
    given) and wait for its certificate: (cert PEM, key PEM)."""
    request, key_pem = _new_request(node_name, serving_names)
    signer, usages = (KUBELET_SERVING_SIGNER, ["digital signature", "server auth"]) \
        if serving_names else (KUBELET_CLIENT_SIGNER, ["digital signature", "client auth"])
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "csr-" if serving_names else "node-csr-"},
            "spec": {"request": base64.b64encode(request).decode(),
                     "signerName": signer, "usages": usages}}
    created = await client.create(CSRS, body)
    name = created["metadata"]["name"]
    log.info("certificate signing request submitted", extra={"csr": name, "node": node_name})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        csr = await client.get(CSRS, name)
        status = csr.get("status") or {}
        for c in status.get("conditions") or ():
            if c.get("type") in ("Denied", "Failed"):
                raise RuntimeError(f"certificate signing request {name} was "
                                   f"{c['type'].lower()}: {c.get('reason', '')} "
                                   f"{c.get('message', '')}".rstrip())
        if status.get("certificate"):
            cert = base64.b64decode(status["certificate"])
            log.info("certificate issued", extra={"csr": name, "node": node_name})
            return cert, key_pem
        if loop.time() > deadline:
            raise TimeoutError(f"certificate signing request {name} was not approved and "
                               f"signed within {timeout:.0f}s")
        await asyncio.sleep(poll)


class BootstrapError(Exception):
    """Joining failed; the message says why (never with the token)."""


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's `--discovery-token-ca-cert-hash`: sha256 of the CA's SubjectPublicKeyInfo."""
    cert = _certificate(ca_pem)
    if cert is None:
        raise BootstrapError("the CA file holds no PEM certificate")
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


async def bootstrap_client_certificate(*, node_name: str, root_dir: Path, server: str,
                                       token_file: Path, ca_file: Path,
                                       kubeconfig: Path | None = None,
                                       ca_hash: str | None = None,
                                       timeout: float = 300.0) -> Path:
    """The node's kubeconfig, after a TLS bootstrap with the token if it has no valid
    certificate yet; BootstrapError if that fails. With `ca_hash`, the CA file must match
    it (a CA copied from the wrong place, or swapped, is refused before anything is sent)."""
    pem_file, default_kc = _paths(root_dir)
    kc = kubeconfig or default_kc
    try:
        ca_pem = ca_file.read_bytes()
        if ca_hash is not None and ca_cert_hash(ca_pem) != ca_hash.lower():
            raise BootstrapError(f"{ca_file}: the CA certificate does not match "
                                 f"--ca-cert-hash {ca_hash}")
        if _still_valid(pem_file) and kc.exists():
            return kc
        token = token_file.read_text().strip()
    except OSError as exc:
        raise BootstrapError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if not token:
        raise BootstrapError(f"{token_file}: the token file is empty")
    try:
        servers = split_servers(server)
        config = ClientConfig(server=servers[0], servers=servers, ca_data=ca_pem, token=token)
        async with Client(config, component="kubelet-bootstrap") as client:
            cert, key = await request_certificate(client, node_name, timeout=timeout)
    except errors.Unauthorized:
        raise BootstrapError("the API server refused the bootstrap token (Unauthorized): "
                             "it is wrong, expired or deleted") from None
    except (errors.ApiError, TransportError, KubeconfigError, RuntimeError,
            TimeoutError) as exc:
        raise BootstrapError(f"joining {server} failed: {exc}") from None
    write_private(pem_file, cert + key)
    write_kubeconfig(kc, server=server, ca_pem=ca_pem, pem_file=pem_file,
                     user=f"system:node:{node_name}")
    return kc


async def serving_certificate(client: Client, node_name: str, root_dir: Path,
                              names: tuple[str, ...], *, timeout: float = 60.0) -> Path | None:
    """A CA-signed serving certificate for the kubelet API (`<root>/pki/
    kubelet-server-current.pem`, cert and key, 0600), requested with signer
    kubernetes.io/kubelet-serving unless a valid one for the same names is there; None (the
    caller then serves a self-signed one) when it is not issued within `timeout`."""
    pem_file = root_dir / "pki" / _SERVING_PEM_NAME
    if _still_valid(pem_file, margin=24 * 3600.0) and _names_of(pem_file) == set(names):
        return pem_file
    try:
        cert, key = await request_certificate(client, node_name, timeout=timeout,
                                              serving_names=names)
    except (errors.ApiError, TransportError, RuntimeError, TimeoutError) as exc:
        log.warning("no CA-signed serving certificate; serving a self-signed one",
                    extra={"error": str(exc)[:200]})
        return None
    write_private(pem_file, cert + key)
    return pem_file


def _names_of(pem_file: Path) -> set[str]:
    cert = _certificate(pem_file.read_bytes())
    if cert is None:
        return set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | \
        {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def rotation_deadline(cert: x509.Certificate, rng: random.Random | None = None
                      ) -> dt.datetime:
    """When to rotate: 70-90% into the certificate's lifetime (kubelet's jitter)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    fraction = 0.7 + 0.2 * (rng or random).random()
    return start + (end - start) * fraction


class CertificateRotator:
    """Keeps the node's client certificate fresh while the agent runs."""

    def __init__(self, client: Client, node_name: str, pem_file: Path) -> None:
        self.client = client
        self.node_name = node_name
        self.pem_file = pem_file

    def _deadline(self) -> dt.datetime | None:
        cert = _certificate(self.pem_file.read_bytes())
        return rotation_deadline(cert) if cert is not None else None

    async def rotate(self) -> None:
        cert, key = await request_certificate(self.client, self.node_name)
        write_private(self.pem_file, cert + key)
        self.client.reload_client_certificate(cert, key)
        log.info("client certificate rotated", extra={"node": self.node_name})

    async def run(self) -> None:
        while True:
            deadline = await asyncio.to_thread(self._deadline)
            if deadline is None:
                return
            wait = (deadline - dt.datetime.now(dt.timezone.utc)).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, 3600.0))
                continue
            try:
                await self.rotate()
            except (errors.ApiError, TransportError, RuntimeError, TimeoutError, OSError) as exc:
                log.warning("client certificate rotation failed; retrying",
                            extra={"error": str(exc)[:200]})
                await asyncio.sleep(30.0)


def pem_file_for(root_dir: Path) -> Path:
    return _paths(root_dir)[0]
